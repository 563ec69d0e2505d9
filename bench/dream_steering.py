"""Does M's dream respond to steering? The same dreams steered hard left, straight and hard right, side by side.

Each dream starts from a rollout's first frame and drives straight (gas 0.3) for --warmup steps; then the same dream
(the same noise, no dropout) goes on for --turn steps three ways: steer -1, 0 and +1. In the real env, 40 steps of
full lock turn the car far off its line. The script prints how far apart the left and right latents end, next to
how far apart different dreams are, and with --out draws the decoded frames: one row per dream, groups of
(left, straight, right) at the end of the warm-up and 10, 20 and 40 steps into the turn.

Usage: python bench/dream_steering.py --params params.yaml --vae models/vae.safetensors
       --mdrnn models/iter0/mdrnn.safetensors --latents data/iter0/latents.npz [--out steering.png]
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

from wm.config import load_params  # noqa: E402
from wm.dream import seeded_generator  # noqa: E402
from wm.dream_fitness import DreamFitness  # noqa: E402
from wm.vae import load_vae  # noqa: E402

TURNS = torch.tensor([[-1.0, 0.3, 0.0], [0.0, 0.3, 0.0], [1.0, 0.3, 0.0]])  # left, straight, right


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--vae", required=True)
    ap.add_argument("--mdrnn", required=True)
    ap.add_argument("--latents", required=True)
    ap.add_argument("--dreams", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--turn", type=int, default=40)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default=None, help="a PNG of the decoded frames")
    a = ap.parse_args()
    p = load_params(a.params)
    cfg = p.controller.model_copy(update={"arch": "v_only", "max_steps": a.warmup + a.turn})
    dream = DreamFitness(a.mdrnn, a.latents, cfg, p.dream.model_copy(update={"patience": None, "dropout": 0.0})).world()
    gen = seeded_generator([a.seed])
    z0, h0, c0 = dream.start(gen, a.dreams)
    ways = len(TURNS)
    z = z0.unsqueeze(0).expand(ways, a.dreams, dream.z_dim).contiguous()
    state = dream.initial_state(h0, c0, ways)
    marks = {a.warmup, a.warmup + min(10, a.turn), a.warmup + min(20, a.turn), a.warmup + a.turn}
    snaps = []
    for t in range(a.warmup + a.turn):
        uniform, normal = dream.draw_noise(gen, a.dreams)
        action = TURNS[1].expand(ways, a.dreams, 3) if t < a.warmup else TURNS[:, None, :].expand(ways, a.dreams, 3)
        z, _, _, state = dream.step(z, action.contiguous(), state, uniform, normal)
        if t + 1 in marks:
            snaps.append(z.clone())
    left_right = (snaps[-1][0] - snaps[-1][2]).norm(dim=-1).mean().item()
    between = torch.cdist(snaps[-1][1], snaps[-1][1]).sum().item() / max(1, a.dreams * (a.dreams - 1))
    print(f"after {a.turn} steps of full lock: mean |z_left - z_right| = {left_right:.2f}; "
          f"mean distance between different dreams = {between:.2f}")
    if a.out:
        from PIL import Image

        vae = load_vae(a.vae)
        rows = []
        for i in range(a.dreams):
            cells = []
            for snap in snaps:
                frames = (vae.decode(snap[:, i]).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
                cells += [*frames, np.zeros((frames.shape[1], 6, 3), np.uint8)]
            rows.append(np.concatenate(cells[:-1], axis=1))
        Image.fromarray(np.concatenate(rows, axis=0)).save(a.out)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
