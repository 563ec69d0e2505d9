"""Dream throughput: imagined env-steps/s for a whole CMA-ES population x trials stepped as one batch.

Uses the trained M and the encoded rollouts when they exist (models/mdrnn.safetensors, data/latents.npz),
otherwise a randomly initialised M of the paper's size (LSTM 256, 5 mixtures, z 32): the cost is the same.
Episodes never end early here (patience off, done head ignored only if it never fires), so every step is timed.

Usage: python bench/dream.py [--population 64] [--trials 16] [--steps 300] [--threads 2]
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


def load_world(root: Path) -> tuple[MDRNN, torch.Tensor, str]:
    """The pipeline's M and start pool if present, else a fresh M and random starts."""
    m_path, l_path = root / "models/mdrnn.safetensors", root / "data/latents.npz"
    if m_path.exists() and l_path.exists():
        from wm.dream import initial_latents
        from wm.io import load_npz
        from wm.models import load_mdrnn

        return load_mdrnn(m_path), initial_latents(load_npz(l_path)), "trained M (models/mdrnn.safetensors)"
    torch.manual_seed(0)
    return MDRNN().eval(), torch.randn(16, 32), "random-init M (no trained model found)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mdrnn, pool, source = load_world(_ROOT)
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
        rate = int(result.steps.sum()) / seconds
        best = max(best, rate)
        print(f"repeat {r}: {int(result.steps.sum())} steps in {seconds:.2f} s = {rate:,.0f} steps/s")
    print(f"dream_steps_per_s: {best:.0f}")


if __name__ == "__main__":
    main()
