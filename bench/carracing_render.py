"""Steps/s of stock CarRacing-v3 vs wm's FastCarRacing (single process).

Usage: python bench/carracing_render.py [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Headless pygame; must be set before pygame creates any surface.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

# Allow `python bench/carracing_render.py` from the repo root without installing.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

from wm.envs.carracing_fast import make_carracing  # noqa: E402


def _actions(n: int, seed: int) -> np.ndarray:
    """Gas with alternating hard-steer bursts, so both road and grass are in view."""
    rng = np.random.default_rng(seed)
    acts = np.zeros((n, 3), dtype=np.float32)
    acts[:, 1] = 1.0
    for start in range(0, n, 30):
        acts[start : start + 10, 0] = rng.choice([-1.0, 1.0])
    return acts


def steps_per_second(fast: bool, n_steps: int, seed: int) -> float:
    """Time n_steps env.step calls (reset excluded), restarting episodes if they end."""
    env = make_carracing(fast=fast)
    actions = _actions(n_steps, seed)
    env.reset(seed=seed)
    env.step(actions[0])  # first step runs gymnasium's env checker; keep it out
    t0 = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset(seed=seed)
    elapsed = time.perf_counter() - t0
    env.close()
    return n_steps / elapsed


def main() -> None:
    """Run both envs on the same action script and print steps/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    stock = steps_per_second(False, args.steps, args.seed)
    fast = steps_per_second(True, args.steps, args.seed)
    print(f"speedup: {fast / stock:.2f}x")
    print(f"stock_steps_per_s: {stock:.1f}")
    print(f"fast_steps_per_s: {fast:.1f}")


if __name__ == "__main__":
    main()
