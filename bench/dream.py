"""Dream throughput: imagined env-steps/s for a whole CMA-ES population x trials stepped as one batch.

Times a trained M when given one (--mdrnn and --latents, e.g. the paths dvc.yaml names; an M file that holds an
ensemble dreams all its members, as the pipeline does), otherwise a randomly initialised M of the paper's size (LSTM
256, 5 mixtures, z 32; --members N of them): the cost per step is the same. Every dream runs the
full --steps: patience is off and M's done head is silenced here (an untrained done head would end every dream
after about one step, and the benchmark would time one-step dreams). It checks that every dream ran full length.

Usage: python bench/dream.py [--mdrnn PATH --latents PATH | --members N] [--population 64] [--trials 16] [--steps 300]
Last line: dream_steps_per_s: N
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import torch  # noqa: E402

from wm.actions import CARRACING, TAKECOVER  # noqa: E402
from wm.controller import BatchedController, Controller  # noqa: E402
from wm.dream import Dream  # noqa: E402
from wm.mdrnn import MDRNN  # noqa: E402


def load_world(mdrnn_path: str | None, latents_path: str | None, members: int = 1
               ) -> tuple[list[MDRNN], torch.Tensor, str]:
    """The given M (every member of an ensemble) and start pool, else fresh Ms and random starts; no done fires."""
    if mdrnn_path and latents_path:
        from wm.dream import initial_latents
        from wm.io import load_npz
        from wm.mdrnn import load_ensemble

        ms, pool = load_ensemble(mdrnn_path), initial_latents(load_npz(latents_path))
        source = f"M from {mdrnn_path}" + (f" ({len(ms)} members)" if len(ms) > 1 else "")
    else:
        torch.manual_seed(0)
        ms, pool = [MDRNN().eval() for _ in range(members)], torch.randn(16, 32)
        source = "random-init M (no --mdrnn given)" + (f", {members} members" if members > 1 else "")
    with torch.no_grad():
        for m in ms:
            m.head.bias[-1] = -1e4  # the done logit: full-length dreams, so every timed step is a real step
    return ms, pool, source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mdrnn", help="a trained M (safetensors); without it, a random M")
    ap.add_argument("--latents", help="encoded rollouts (the start pool); needed with --mdrnn")
    ap.add_argument("--members", type=int, default=1, help="without --mdrnn: an ensemble of this many random Ms")
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if bool(args.mdrnn) != bool(args.latents):
        ap.error("--mdrnn and --latents go together")
    torch.set_num_threads(args.threads)
    ms, pool, source = load_world(args.mdrnn, args.latents, args.members)
    env = TAKECOVER if ms[0].action_dim == 1 else CARRACING
    n = Controller("linear", ms[0].z_dim, ms[0].hidden, env=env).num_params()
    policy = BatchedController("linear", torch.randn(args.population, n) * 0.1, ms[0].z_dim, ms[0].hidden, env=env)
    dream = Dream(ms[0], pool, temperature=1.0, max_steps=args.steps, members=ms[1:], ensemble_done="max")
    dream.rollout(policy, list(range(args.trials)))  # warm-up: allocator, MKL thread pool
    print(f"{source}; population {args.population} x {args.trials} trials = {args.population * args.trials} "
          f"dreams, {args.steps} steps, {args.threads} threads")
    best = 0.0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        result = dream.rollout(policy, [r * 1000 + t for t in range(args.trials)])
        seconds = time.perf_counter() - t0
        full = args.population * args.trials * args.steps
        if int(result.steps.sum()) != full:
            raise SystemExit(f"error: dreams ended early ({int(result.steps.sum())} of {full} steps): "
                             "not a full-length timing")
        rate = int(result.steps.sum()) / seconds
        best = max(best, rate)
        print(f"repeat {r}: {int(result.steps.sum())} steps in {seconds:.2f} s = {rate:,.0f} steps/s")
    print(f"dream_steps_per_s: {best:.0f}")


if __name__ == "__main__":
    main()
