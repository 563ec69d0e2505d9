#!/usr/bin/env bash
# The tau sweep of the README: one DVC experiment per dream temperature, plus a real-env run given about the
# same controller wall-clock time. Each experiment reruns only `controller`, `dream` and `evaluate` (V and M are shared).
# Usage: bash bench/tau_sweep.sh   (then: dvc exp show --only-changed)
set -euo pipefail
DREAM="-S controller.mode=dream -S controller.population=64 -S controller.trials=16 -S controller.generations=${GENS:-60}
       -S controller.eval_every=5 -S controller.eval_episodes=64 -S dream.patience=50"
for tau in 0.5 1.0 1.15 1.3; do
  dvc exp run -n "dream-tau-${tau}" $DREAM -S dream.temperature=$tau
done
# Real-env CMA-ES with population 16 (the default before 2026-11-25), stopped at about the dream runs' controller time.
dvc exp run -n real-equal-time -S controller.mode=real -S controller.population=16 -S controller.trials=1 \
  -S controller.generations=${REAL_GENS:-12} -S controller.eval_every=4 -S controller.eval_episodes=4
dvc exp show --only-changed --md
