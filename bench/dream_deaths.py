"""Dream time when dreams end at different ages: one CMA-ES generation of the Take Cover profile's shape.

Random Ms of `params/doom.yaml`'s shape (z 64, LSTM 256, 5 Gaussians per dimension of z, survival reward), one M or
an ensemble (--members), and every step of every dream dies with the same calibrated P(done) (--hazard), so
lifetimes are geometric with mean 1 / hazard, capped at --steps, as a population's dreams end at many ages. A
rollout runs until its last dream ends; `Dream.rollout` steps M only for the dreams still alive (topped up with
ended ones to `wm.dream.MIN_ROWS` rows). Run it on two commits to compare them: the dreams are the same.

Usage: python bench/dream_deaths.py [--population 32] [--trials 8] [--steps 2100] [--hazard 0.0016] [--members 3]
Last line: live_dream_steps_per_s: N
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import torch  # noqa: E402

from wm.actions import TAKECOVER  # noqa: E402
from wm.controller import BatchedController, Controller  # noqa: E402
from wm.dream import Dream  # noqa: E402
from wm.mdrnn import MDRNN  # noqa: E402


def constant_hazard_m(seed: int, hazard: float, done_weight: float = 10.0) -> MDRNN:
    """A random M of the Take Cover profile's shape whose calibrated P(done) is `hazard` at every step."""
    torch.manual_seed(seed)
    m = MDRNN(z_dim=64, action_dim=1, hidden=256, gaussians=5, reward_kind="survival", done_weight=done_weight,
              mixture="per_dim").eval()
    with torch.no_grad():  # the done logit is the head's last output; training weighted deaths by done_weight
        m.head.weight[-1].zero_()
        m.head.bias[-1] = math.log(hazard / (1 - hazard)) + math.log(done_weight)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2100)
    ap.add_argument("--hazard", type=float, default=1 / 625)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not 0 < args.hazard < 1:
        ap.error("--hazard must be in (0, 1)")
    torch.set_num_threads(args.threads)
    ms = [constant_hazard_m(k, args.hazard) for k in range(args.members)]
    dream = Dream(ms[0], torch.randn(64, 64, generator=torch.Generator().manual_seed(0)), temperature=1.3,
                  max_steps=args.steps, done="sample", members=ms[1:], ensemble_done="max")
    n = Controller("linear", 64, 256, env=TAKECOVER).num_params()
    flat = torch.randn(args.population, n, generator=torch.Generator().manual_seed(1)) * 0.1
    policy = BatchedController("linear", flat, 64, 256, env=TAKECOVER)
    print(f"{args.members} M(s) of Take Cover's shape; population {args.population} x {args.trials} trials, "
          f"up to {args.steps} steps, P(done) {args.hazard:.5f} per step, {args.threads} threads")
    best = 0.0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        result = dream.rollout(policy, [r * 1000 + t for t in range(args.trials)])
        seconds = time.perf_counter() - t0
        live, longest = int(result.steps.sum()), int(result.steps.max())
        rate = live / seconds
        best = max(best, rate)
        print(f"repeat {r}: {seconds:.2f} s; live dream-steps {live:,} (mean lifetime "
              f"{live / result.steps.numel():.0f}, longest {longest}); {rate:,.0f} live steps/s")
    print(f"live_dream_steps_per_s: {best:.0f}")


if __name__ == "__main__":
    main()
