"""Dream throughput: imagined env-steps/s for a whole CMA-ES population x trials stepped as one batch.

Times a trained M when given one (--mdrnn and --latents, e.g. the paths dvc.yaml names), otherwise a randomly
initialised M of the paper's size (LSTM 256, 5 mixtures, z 32): the cost per step is the same. Every dream runs the
full --steps: patience is off and M's done head is silenced here (an untrained done head would end every dream
after about one step, and the benchmark would time one-step dreams). It checks that every dream ran full length.

Usage: python bench/dream.py [--mdrnn PATH --latents PATH] [--population 64] [--trials 16] [--steps 300]
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

from wm.controller import BatchedController, Controller  # noqa: E402
from wm.dream import Dream  # noqa: E402
from wm.mdrnn import MDRNN  # noqa: E402


def load_world(mdrnn_path: str | None, latents_path: str | None) -> tuple[MDRNN, torch.Tensor, str]:
    """The given M and start pool, else a fresh M and random starts; M's done head never fires."""
    if mdrnn_path and latents_path:
        from wm.dream import initial_latents
        from wm.io import load_npz
        from wm.mdrnn import load_mdrnn

        mdrnn, pool, source = load_mdrnn(mdrnn_path), initial_latents(load_npz(latents_path)), f"M from {mdrnn_path}"
    else:
        torch.manual_seed(0)
        mdrnn, pool, source = MDRNN().eval(), torch.randn(16, 32), "random-init M (no --mdrnn given)"
    with torch.no_grad():
        mdrnn.head.bias[-1] = -1e4  # the done logit: full-length dreams, so every timed step is a real step
    return mdrnn, pool, source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mdrnn", help="a trained M (safetensors); without it, a random M")
    ap.add_argument("--latents", help="encoded rollouts (the start pool); needed with --mdrnn")
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if bool(args.mdrnn) != bool(args.latents):
        ap.error("--mdrnn and --latents go together")
    torch.set_num_threads(args.threads)
    mdrnn, pool, source = load_world(args.mdrnn, args.latents)
    n = Controller("linear").num_params()
    policy = BatchedController("linear", torch.randn(args.population, n) * 0.1)
    dream = Dream(mdrnn, pool, temperature=1.0, max_steps=args.steps)
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
