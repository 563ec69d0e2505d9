"""Do an ensemble's Ms disagree where a controller exploits their dream? Disagreement about z, step by step.

An ensemble of Ms (`mdrnn.members` > 1) is meant to flag where its data is thin: there the members' predictions
part. This plays policies in the ensemble's dream as wm.dream does (C reads member 0's state, each step's z_{t+1}
comes from a member drawn anew, deaths from the members' highest P(done) and never stopping a dream; each step is
weighted by the chance that the dream is still alive) and measures u, the members' disagreement about the next z:
the standard deviation across members of each one's expected z_{t+1} (its mixture's mean), averaged over z's
dimensions. It prints u per live step by age, and the dream return a penalty of `lambda * u` per step would leave.

If a controller that the game pays less than the dream does (one that found a hole) meets no more disagreement than
one that transfers, a disagreement penalty cannot tell them apart.

Usage: python bench/dream_disagreement.py --mdrnn models/iter0/mdrnn.safetensors --latents data/iter0/latents.npz
       [--controller NAME=PATH ...] [--temperature 1.3] [--dreams 256]
       (without --controller: the collection policy only; with it, the collection policy and each C)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from doom_survival import dream_steps  # noqa: E402
from wm.controller import Controller, load_controller  # noqa: E402
from wm.dream import initial_latents, pool_deaths  # noqa: E402
from wm.io import load_npz  # noqa: E402
from wm.mdrnn import MDRNN, Heads, load_ensemble  # noqa: E402

AGES = ((0, 100), (100, 300), (300, 500), (500, 1000), (1000, 2100))


def expected_z(heads: Heads) -> torch.Tensor:
    """The mean of M's per-dimension mixture over z_{t+1}: (B, z)."""
    return (torch.softmax(heads.logit_pi, dim=-2) * heads.mus).sum(-2)


@torch.no_grad()
def disagreement(models: list[MDRNN], starts: torch.Tensor, policy: Controller | None, temperature: float,
                 dreams: int, max_steps: int, repeat_max: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per step: the alive-weighted sum of u over dreams, and the expected number of dreams alive (each (max_steps,))."""
    alive = torch.ones(dreams)
    u_sum, alive_sum = np.zeros(max_steps), np.zeros(max_steps)
    for t, outs in enumerate(dream_steps(models, starts, policy, temperature, dreams, max_steps, repeat_max, seed)):
        u = torch.stack([expected_z(heads) for _, heads, _ in outs]).std(0, correction=0).mean(-1)
        u_sum[t], alive_sum[t] = float((u * alive).sum()), float(alive.sum())
        alive = alive * (1.0 - pool_deaths([m.done_prob(heads) for m, (_, heads, _) in zip(models, outs)], "max"))
    return u_sum, alive_sum


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mdrnn", required=True, help="an M file holding an ensemble (mdrnn.members > 1)")
    ap.add_argument("--latents", required=True, help="the encoded random rollouts: the dreams' first frames")
    ap.add_argument("--controller", action="append", default=[], help="NAME=PATH of a trained C (repeatable)")
    ap.add_argument("--temperature", type=float, default=1.3)
    ap.add_argument("--dreams", type=int, default=256)
    ap.add_argument("--max-steps", type=int, default=2100)
    ap.add_argument("--repeat-max", type=int, default=10, help="the collection policy's longest hold")
    ap.add_argument("--lambdas", default="10,20", help="penalties per unit of u to report the dream return under")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    models = load_ensemble(a.mdrnn)
    if len(models) < 2:
        raise SystemExit(f"{a.mdrnn} holds one M: disagreement needs an ensemble (mdrnn.members > 1)")
    starts = initial_latents(load_npz(a.latents))
    policies: list[tuple[str, Controller | None]] = [("collection policy", None)]
    for item in a.controller:
        name, _, path = item.partition("=")
        policies.append((name, load_controller(path or name)))
    lambdas = [float(x) for x in a.lambdas.split(",") if x]
    print(f"{len(models)} Ms, tau {a.temperature}, {a.dreams} dreams of up to {a.max_steps} steps, seed {a.seed}")
    print("| policy | mean lifetime | u per live step | " + " | ".join(f"u, ages {lo}-{hi}" for lo, hi in AGES) + " | "
          + " | ".join(f"return - {lam:g} u" for lam in lambdas) + " |")
    print("|---|---|---|" + "---|" * (len(AGES) + len(lambdas)))
    for name, policy in policies:
        u_sum, alive = disagreement(models, starts, policy, a.temperature, a.dreams, a.max_steps, a.repeat_max, a.seed)
        by_age = [u_sum[lo:hi].sum() / max(alive[lo:hi].sum(), 1e-9) for lo, hi in AGES]
        penalised = [(alive - lam * u_sum).sum() / a.dreams for lam in lambdas]
        print(f"| {name} | {alive.sum() / a.dreams:.1f} | {u_sum.sum() / alive.sum():.4f} | "
              + " | ".join(f"{x:.4f}" for x in by_age) + " | " + " | ".join(f"{x:.1f}" for x in penalised) + " |",
              flush=True)


if __name__ == "__main__":
    main()
