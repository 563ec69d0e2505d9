"""Collection throughput (env steps/s) with 1 and 2 worker processes, plain library calls.

Env and policy settings come from a params file (default params.yaml); --steps overrides collect.max_steps.
Usage: python bench/collect_throughput.py [--params params.yaml] [--rollouts 8] [--steps 300] [--stock]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from wm.collect import collect_rollout  # noqa: E402
from wm.config import Params, load_params  # noqa: E402


def measure(p: Params, workers: int, rollouts: int, steps: int, fast: bool) -> float:
    """Env steps per second collecting `rollouts` rollouts on `workers` processes."""
    env_cfg = p.env.model_copy(update={"fast_render": fast})
    cfg = p.collect.model_copy(update={"rollouts": rollouts, "max_steps": steps})
    with tempfile.TemporaryDirectory() as out, ProcessPoolExecutor(workers) as pool:
        list(pool.map(collect_rollout, [env_cfg] * workers, [cfg] * workers, [99] * workers,
                      range(workers), [out] * workers))  # warm up imports in every worker
        t0 = time.perf_counter()
        done = list(pool.map(collect_rollout, [env_cfg] * rollouts, [cfg] * rollouts, [0] * rollouts,
                             range(rollouts), [out] * rollouts))
        seconds = time.perf_counter() - t0
    return sum(d["steps"] for d in done) / seconds


def main() -> None:
    """Print steps/s for 1 and 2 workers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--stock", action="store_true", help="use gymnasium's stock renderer")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}  renderer: {'stock' if args.stock else 'fast'}  "
          f"rollouts: {args.rollouts} x {args.steps} steps")
    for workers in (1, 2):
        rate = measure(load_params(args.params), workers, args.rollouts, args.steps, not args.stock)
        print(f"collect_steps_per_s_workers_{workers}: {rate:.0f}")


if __name__ == "__main__":
    main()
