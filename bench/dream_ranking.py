"""Does the dream rank the candidates CMA-ES compares as the real env does? Local ranking around a trained C.

CMA-ES only ever uses the order of a generation's candidates: it moves its mean towards the better half. So what a
dream must get right is not its returns but that order, among controllers close to the current one. This draws
`--candidates` controllers around a trained C (C's flat parameters plus `--sigma` times a standard normal, as a
generation of `iterate.sigma0` would), plays each for `--episodes` real episodes of `controller.max_steps` steps on
common track seeds, and scores the same candidates in one or more dreams (`--row`), all on `--dreams` common
dream seeds that no stage uses. Per row it prints:

- rho: Spearman's rank correlation of dream and real scores over the candidates;
- top-half gain: the real score of the half the dream ranks best, minus the candidates' mean real score (what one
  CMA-ES step led by this dream would gain in the real env, before the step size);
- the dream's own split-half rho (odd against even dreams): how far its order is its noise;
- and, once, the real scores' own split-half rho (odd against even episodes), the most any dream could show with
  this many episodes.

Real returns here are a diagnostic of the dream, never a fitness. Rows override `dream` keys and may swap M:
`--row "tau 1.3|temperature=1.3"`, `--row "M_3|mdrnn=models/iter3/mdrnn.safetensors"`,
`--row "two Ms|members=models/iter3/mdrnn.safetensors,disagreement=0.5"`. The first row is the params file's dream.

Usage: python bench/dream_ranking.py --params params.yaml --vae models/vae.safetensors
       --latents data/iter4/latents.npz --mdrnn models/iter4/mdrnn.safetensors
       --controller models/iter4/controller.safetensors [--candidates 32] [--sigma 0.1] [--episodes 4]
       [--dreams 64] [--row "LABEL|key=value,..."] [--out ranking.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from dream_ablation import play  # noqa: E402
from wm.config import DreamConfig, load_params  # noqa: E402
from wm.controller import load_controller, save_controller  # noqa: E402
from wm.dream_fitness import DreamFitness  # noqa: E402
from wm.io import atomic_path  # noqa: E402
from wm.seeds import check_seeds  # noqa: E402

DREAM_KEY = 2_000  # dream seeds: check_seeds(seed + DREAM_KEY, n), a key no stage derives a seed from
TRACK_KEY = 3_000  # real track seeds: check_seeds(seed + TRACK_KEY, n), disjoint from the evaluation seeds


def ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), 0-based."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tied = x == v
        r[tied] = r[tied].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (NaN when either side is constant)."""
    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_half_gain(dream: np.ndarray, real: np.ndarray) -> float:
    """Mean real score of the half the dream ranks best, minus the mean real score of all candidates."""
    best = np.argsort(-np.asarray(dream), kind="stable")[: len(dream) // 2]
    return float(real[best].mean() - real.mean())


def parse_row(spec: str, base: DreamConfig, mdrnn: str) -> tuple[str, DreamConfig, str, tuple[str, ...]]:
    """'LABEL|key=value,...' as (label, dream config, M's path, more members): `dream` keys, mdrnn, members."""
    label, _, body = spec.partition("|")
    update: dict[str, object] = {}
    members: tuple[str, ...] = ()
    for kv in filter(None, body.split(",")):
        key, sep, value = kv.partition("=")
        if not sep:
            raise ValueError(f"--row {spec!r}: {kv!r} is not key=value")
        if key == "mdrnn":
            mdrnn = value
        elif key == "members":
            members = tuple(value.split("+"))
        else:
            update[key] = yaml.safe_load(value)
    try:
        cfg = DreamConfig.model_validate({**base.model_dump(), **update})
    except ValidationError as e:
        raise ValueError(f"--row {spec!r}: {e}") from None
    return label.strip() or body, cfg, mdrnn, members


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--vae", required=True)
    ap.add_argument("--latents", required=True, help="the dream's start frames (and the calibrated hazard's data)")
    ap.add_argument("--mdrnn", required=True, help="M whose h C reads, in the real env and in every row's dream")
    ap.add_argument("--controller", required=True, help="the C the candidates are drawn around")
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--sigma", type=float, default=0.1, help="standard deviation of each parameter's perturbation")
    ap.add_argument("--episodes", type=int, default=4, help="real episodes per candidate, on common track seeds")
    ap.add_argument("--dreams", type=int, default=64, help="dreams per candidate, on common dream seeds")
    ap.add_argument("--row", action="append", default=[], help="'LABEL|key=value,...' (repeatable)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="write every score as JSON here")
    a = ap.parse_args()
    if a.candidates < 4 or a.episodes < 2:
        ap.error("--candidates needs at least 4 and --episodes at least 2 (for the split-half rho)")
    p = load_params(a.params)
    try:
        rows = [("params", p.dream, a.mdrnn, ())] + [parse_row(r, p.dream, a.mdrnn) for r in a.row]
    except ValueError as e:
        ap.error(str(e))
    center = load_controller(a.controller)
    rng = np.random.default_rng(p.seed)
    flat = center.get_flat()
    candidates = [flat + a.sigma * rng.standard_normal(flat.shape).astype(flat.dtype) for _ in range(a.candidates)]
    cfg = p.controller.model_copy(update={"mode": "dream"})
    tracks = check_seeds(p.seed + TRACK_KEY, a.episodes)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(a.workers) as pool:
        jobs = []
        for i, x in enumerate(candidates):
            path = str(Path(tmp) / f"c{i}.safetensors")
            save_controller(path, center.set_flat(x))
            jobs += [(a.vae, a.mdrnn, path, p.env.model_dump(), s, cfg.max_steps) for s in tracks]
        real_eps = np.asarray(list(pool.map(play, jobs))).reshape(a.candidates, a.episodes)
    real = real_eps.mean(axis=1)
    split = spearman(real_eps[:, 0::2].mean(axis=1), real_eps[:, 1::2].mean(axis=1))
    print(f"real: {a.candidates} candidates x {a.episodes} episodes of {cfg.max_steps} steps, sigma {a.sigma}, "
          f"{time.perf_counter() - t0:.0f} s; mean {real.mean():.1f} (candidates from {real.min():.1f} to "
          f"{real.max():.1f}); split-half rho {split:.2f}; C itself is not among them")
    dream_seeds = check_seeds(p.seed + DREAM_KEY, a.dreams)
    out = {"seed": p.seed, "sigma": a.sigma, "tracks": tracks, "real": real_eps.tolist(), "split_half_rho": split,
           "rows": []}
    print("| dream | mean dream score | rho (dream, real) | top-half gain (real) | the dream's split-half rho | time |")
    print("|---|---|---|---|---|---|")
    for label, dream_cfg, mdrnn, members in rows:
        t0 = time.perf_counter()
        fitness = DreamFitness(mdrnn, a.latents, cfg, dream_cfg, p.env.id, p.device, members, p.collect.repeat_max)
        per_dream = fitness.world().rollout(fitness.policy(candidates), dream_seeds).returns.cpu().numpy()
        dream = per_dream.mean(axis=1)
        rho, gain = spearman(dream, real), top_half_gain(dream, real)
        own = spearman(per_dream[:, 0::2].mean(axis=1), per_dream[:, 1::2].mean(axis=1))
        print(f"| {label} | {dream.mean():.1f} | {rho:.2f} | {gain:+.1f} | {own:.2f} | "
              f"{time.perf_counter() - t0:.0f} s |", flush=True)
        out["rows"].append({"label": label, "dream": per_dream.tolist(), "rho": rho, "top_half_gain": gain,
                            "split_half_rho": own})
    if a.out:
        with atomic_path(a.out) as tmp_out:
            Path(tmp_out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
