#!/usr/bin/env bash
# The paper's tau table for Take Cover: one DVC experiment per dream temperature on top of a built Doom project
# (cp params/doom.yaml params.yaml && dvc repro). Each experiment reruns only `controller`, `dream` and `evaluate`:
# V and M are shared, C is trained again in M's dream at that tau and played for evaluate.episodes real episodes.
# Usage: bash bench/doom_tau_sweep.sh   (then: dvc exp show --only-changed --md)
#        TAUS="0.5 1.0" GENS=20 bash bench/doom_tau_sweep.sh   (some temperatures, a shorter CMA-ES for every row)
set -euo pipefail
for tau in ${TAUS:-0.1 0.5 1.0 1.15 1.3}; do
  # shellcheck disable=SC2086
  dvc exp run -n "doom-tau-${tau}${GENS:+-g$GENS}" -S dream.temperature=$tau ${GENS:+-S controller.generations=$GENS}
done
dvc exp show --only-changed --md
