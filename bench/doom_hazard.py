"""Does the age-calibrated dream kill as the game does? Hazard by age band: game, M's dream, calibrated dream.

Fits the dream's age offsets exactly as the controller stage does with `dream.hazard: calibrated` (random play
replayed in the dream until it dies band by band as the random rollouts did), then plays a trained C in the dream with
and without them and prints C's hazard per band (deaths per 1,000 steps lived) beside its real one, from the
episodes of its `evaluate.json`. C's real returns are only compared here, never fitted to.

Usage: python bench/doom_hazard.py --params params/doom.yaml --mdrnn models/iter0/mdrnn.safetensors
       --latents data/iter0/latents.npz --controller models/iter0/controller.safetensors --evaluate metrics/evaluate.json
       [--dreams 512] [--band 100]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wm.config import load_params  # noqa: E402
from wm.controller import BatchedController, load_controller  # noqa: E402
from wm.dream_fitness import DreamFitness, real_lifetimes  # noqa: E402
from wm.dream_hazard import band_counts, fit_age_offsets, hazard  # noqa: E402
from wm.io import load_npz  # noqa: E402

BANDS = ((0, 200), (200, 500), (500, 1000), (1000, 2100))


def per_range(lifetimes: np.ndarray, died: np.ndarray) -> list[float]:
    """Deaths per 1,000 steps lived in each of BANDS."""
    out = []
    for lo, hi in BANDS:
        d, e = band_counts(np.clip(lifetimes - lo, 0, None), died & (lifetimes > lo) & (lifetimes <= hi), hi - lo, 2)
        out.append(1000.0 * float(hazard(d, e)[0]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", required=True, help="the profile the workspace ran (its dream and controller keys)")
    ap.add_argument("--mdrnn", required=True)
    ap.add_argument("--latents", required=True, help="the encoded random rollouts")
    ap.add_argument("--controller", required=True)
    ap.add_argument("--evaluate", required=True, help="C's evaluate.json: its real lifetimes")
    ap.add_argument("--dreams", type=int, default=512, help="dreams of C, each way")
    ap.add_argument("--band", type=int, help="steps per age band (default: the profile's dream.hazard_band)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    p = load_params(a.params)
    band = a.band or p.dream.hazard_band
    dream_cfg = p.dream.model_copy(update={"hazard": "model", "patience": None})
    world = DreamFitness(a.mdrnn, a.latents, p.controller, dream_cfg, p.env.id, p.device).world()
    latents = load_npz(a.latents)
    c = load_controller(a.controller)
    policy = BatchedController(c.arch, torch.as_tensor(c.get_flat()).unsqueeze(0), world.z_dim, world.hidden,
                               c.hidden_units, p.env.id)
    seeds = list(range(a.dreams))
    plain = world.rollout(policy, seeds).steps.view(-1).numpy()
    fit = fit_age_offsets(world, *real_lifetimes(latents), p.env.id, p.collect.repeat_max, band)
    calibrated = world.rollout(policy, seeds).steps.view(-1).numpy()
    scores = np.asarray(json.loads(Path(a.evaluate).read_text())["scores"], dtype=np.float64).round().astype(np.int64)
    cap = p.controller.max_steps
    print(f"offsets per band of {band} steps: {' '.join(f'{o:.2f}' for o in fit.offsets)}")
    print("random play, deaths per 1,000 steps by band: " + "; ".join(
        f"{r['age']}: {r['real']:.2f}/{r['dream']:.2f}/{r['calibrated']:.2f}" for r in fit.rows()) +
        " (rollouts/dream/calibrated)")
    print(f"C, deaths per 1,000 steps lived, age bands {', '.join(f'{lo}-{hi}' for lo, hi in BANDS)}; mean lifetime")
    for name, life in (("game", scores), ("dream", plain), ("calibrated dream", calibrated)):
        rates = per_range(life, life < cap)
        print(f"{name:>17}: " + " / ".join(f"{x:.2f}" for x in rates) + f"; {life.mean():.1f} "
              f"({len(life)} episodes)")


if __name__ == "__main__":
    main()
