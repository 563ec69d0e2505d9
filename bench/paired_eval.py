"""Several agents on the same real evaluation episodes: each one's mean ± its standard error, and the paired
difference of each to the first.

An agent is `LABEL=WORKSPACE:K`: iteration K's C and M in a built workspace (`models/iter<K>/`) with the workspace's
V. Every agent plays the same `--episodes` evaluation episodes (the seeds the `evaluate` stage uses, `max_steps`
from --params), so the difference to the first agent is taken track by track and the tracks' own difficulty drops
out of it: two Cs that differ by 40 on average are told apart by 100 paired episodes where two unpaired means of 20
episodes (the stage's) are not. This only compares finished agents; nothing here trains.

Usage: python bench/paired_eval.py --params params/dream.yaml "sigma 0.05=/tmp/a:4" "sigma 0.2=/tmp/b:4"
       [--episodes 100] [--out paired.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from dream_ablation import play  # noqa: E402
from wm.config import load_params  # noqa: E402
from wm.io import atomic_path  # noqa: E402
from wm.seeds import eval_seeds  # noqa: E402


def agent_files(spec: str) -> tuple[str, tuple[str, str, str]]:
    """`LABEL=WORKSPACE:K` -> (label, (V, M, C) paths), checked to exist."""
    label, sep, where = spec.rpartition("=")
    workspace, colon, k = where.rpartition(":")
    if not sep or not label or not colon or not k.isdigit():
        raise ValueError(f"expected LABEL=WORKSPACE:K (K an iteration number), got {spec!r}")
    root = Path(workspace)
    files = (root / "models" / "vae.safetensors", root / "models" / f"iter{k}" / "mdrnn.safetensors",
             root / "models" / f"iter{k}" / "controller.safetensors")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{label}: missing {', '.join(missing)}")
    return label, tuple(str(f) for f in files)


def mean_se(xs: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation over sqrt(n); 0 for one value)."""
    n = len(xs)
    if n == 0:
        raise ValueError("no values")
    mean = sum(xs) / n
    if n == 1:
        return mean, 0.0
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, math.sqrt(var / n)


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and standard error of b - a, episode by episode."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    return mean_se([y - x for x, y in zip(a, b)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("agents", nargs="+", help="LABEL=WORKSPACE:K; the first is the reference of the differences")
    ap.add_argument("--params", default="params.yaml", help="the env and evaluate.max_steps")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="write every episode's return as JSON here")
    a = ap.parse_args()
    try:
        agents = [agent_files(s) for s in a.agents]
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(str(e)) from None
    p = load_params(a.params)
    seeds = eval_seeds(a.episodes)
    scores: dict[str, list[float]] = {}
    print(f"{p.env.id}: {a.episodes} evaluation episodes of up to {p.evaluate.max_steps} steps per agent")
    print(f"| agent | real score ± SE | median | paired against {agents[0][0]} ± SE |")
    print("|---|---|---|---|")
    with ProcessPoolExecutor(a.workers) as pool:
        for label, (vae, mdrnn, c) in agents:
            jobs = [(vae, mdrnn, c, p.env.model_dump(), s, p.evaluate.max_steps) for s in seeds]
            scores[label] = [float(x) for x in pool.map(play, jobs)]
            m, se = mean_se(scores[label])
            median = statistics.median(scores[label])
            d = "–" if label == agents[0][0] else "{:+.1f} ± {:.1f}".format(*paired(scores[agents[0][0]],
                                                                                   scores[label]))
            print(f"| {label} | {m:.1f} ± {se:.1f} | {median:.1f} | {d} |", flush=True)
    if a.out:
        with atomic_path(a.out) as tmp:
            Path(tmp).write_text(json.dumps({"seeds": seeds, "scores": scores}, indent=1))


if __name__ == "__main__":
    main()
