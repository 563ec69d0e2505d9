"""How far ahead does M's dream keep the real ranking of action sequences?

For every rollout in a latents file, pick a random start frame, give M the real frames and actions up to it
(burn-in), then let M dream H steps open loop with the real actions taken next (z sampled at tau, a few noise draws
averaged). Prints, per horizon H, the mean real and dreamed return of those H steps and their Spearman rank
correlation over rollouts, separately for the random-policy rollouts (the first --random of the file) and the rest
(the iterations' policy rollouts). A high correlation means the dream ranks what C might do as the real env would.

Usage: python bench/dream_fidelity.py --mdrnn models/iter4/mdrnn.safetensors --latents data/iter4/latents.npz
       [--random 100] [--horizons 25,50,100,200,400] [--draws 4] [--tau 1.0]
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

from wm.io import load_npz  # noqa: E402
from wm.mdrnn import load_mdrnn  # noqa: E402
from dream_ranking import spearman  # noqa: E402


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mdrnn", required=True)
    ap.add_argument("--latents", required=True)
    ap.add_argument("--random", type=int, default=100, help="how many leading rollouts are random-policy ones")
    ap.add_argument("--horizons", default="25,50,100,200,400")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    m, lat = load_mdrnn(a.mdrnn), load_npz(a.latents)
    lengths = lat["lengths"]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n, steps = len(lengths), int(lengths.min())
    mu = torch.stack([torch.from_numpy(np.asarray(lat["mu"][offsets[i]:offsets[i] + steps], np.float32)) for i in range(n)])
    act = torch.stack([torch.from_numpy(np.asarray(lat["actions"][offsets[i]:offsets[i] + steps], np.float32))
                       for i in range(n)])
    rew = np.stack([lat["rewards"][offsets[i]:offsets[i] + steps] for i in range(n)])
    rng = np.random.default_rng(a.seed)
    print(f"{n} rollouts ({a.random} random), {steps} steps each used; tau {a.tau}, {a.draws} draws")
    print("| horizon | rollouts | real return | dreamed return | Spearman rho |")
    print("|---|---|---|---|---|")
    for horizon in [int(h) for h in a.horizons.split(",")]:
        if horizon > steps:
            continue
        t0 = rng.integers(0, steps - horizon + 1, n)
        h, c = torch.zeros(1, n, m.hidden), torch.zeros(1, n, m.hidden)
        for i in range(n):  # burn-in: M reads the real frames and actions before the start
            if t0[i] > 0:
                _, (hi, ci) = m.lstm(m.inputs(mu[i:i + 1, :t0[i]], act[i:i + 1, :t0[i]], torch.arange(t0[i])))
                h[:, i], c[:, i] = hi[:, 0], ci[:, 0]
        state = (h.repeat(1, a.draws, 1), c.repeat(1, a.draws, 1))
        z = mu[torch.arange(n), torch.from_numpy(t0)].repeat(a.draws, 1)
        gen = torch.Generator().manual_seed(a.seed + 1)
        total = torch.zeros(n * a.draws)
        for s in range(horizon):
            action = act[torch.arange(n), torch.from_numpy(t0 + s)].repeat(a.draws, 1)
            z, heads, state = m.step(z, action, state, a.tau, torch.rand(n * a.draws, 1, generator=gen),
                                     torch.randn(n * a.draws, m.z_dim, generator=gen),
                                     age=torch.from_numpy(t0 + s).repeat(a.draws))
            total += m.expected_reward(heads)
        dreamed = total.view(a.draws, n).mean(0).numpy()
        real = np.array([rew[i, t0[i]:t0[i] + horizon].sum() for i in range(n)])
        for name, part in (("random", slice(0, a.random)), ("policy", slice(a.random, None))):
            if len(real[part]) >= 3:
                print(f"| {horizon} | {len(real[part])} {name} | {real[part].mean():.1f} | {dreamed[part].mean():.1f} | "
                      f"{spearman(real[part], dreamed[part]):.2f} |", flush=True)


if __name__ == "__main__":
    main()
