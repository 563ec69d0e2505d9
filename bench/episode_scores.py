"""Real-episode scores of several evaluated agents side by side: one row of dots per run, its mean marked.

Each run is a `metrics/evaluate.json` (or `metrics/iter<k>/evaluate.json`), whose `scores` hold one return per
evaluation episode. The script prints each run's mean, spread, median and extremes and, with --out, draws every
episode as a dot, so a mean pulled up by a few long episodes shows as such. Reference policies (measured on the
same evaluation seeds) are drawn as vertical lines.

Usage: python bench/episode_scores.py "seed 0=/path/a/metrics/evaluate.json" "seed 1=/path/b/metrics/evaluate.json"
       [--reference "random movement=315.6"] [--out docs/doom-episode-scores.png] [--title TITLE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from wm.io import atomic_path  # noqa: E402


def _pairs(specs: list[str], what: str, ap: argparse.ArgumentParser) -> list[tuple[str, str]]:
    pairs = []
    for spec in specs:
        label, sep, value = spec.rpartition("=")
        if not sep or not label:
            ap.error(f"expected LABEL={what}, got {spec!r}")
        pairs.append((label, value))
    return pairs


def plot(out: str, runs: dict[str, list[float]], references: dict[str, float], title: str) -> str:
    """Draw one row of jittered dots per run (top to bottom in the given order) and write the PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(0)  # the jitter only spreads the dots; it is the same on every call
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(runs) + 1.6))
    for row, (label, scores) in enumerate(runs.items()):
        y = -row + rng.uniform(-0.18, 0.18, len(scores))
        ax.scatter(scores, y, s=10, alpha=0.45, color="tab:blue", linewidths=0)
        mean = statistics.fmean(scores)
        ax.plot([mean, mean], [-row - 0.3, -row + 0.3], color="black", lw=2)
        ax.annotate(f"{mean:.0f}", (mean, -row + 0.3), ha="center", va="bottom", fontsize=8)
    for i, (label, value) in enumerate(references.items()):
        ax.axvline(value, color=f"C{i + 1}", ls="--", lw=1, label=f"{label}: {value:g}")
    ax.set_yticks([-row for row in range(len(runs))], list(runs))
    ax.set_ylim(-len(runs) + 0.5, 0.65)
    ax.set_xlabel("real return of one episode (black bar: the mean)")
    ax.set_title(title, fontsize=10)
    if references:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:  # a stopped run leaves no half-written PNG
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="LABEL=evaluate.json")
    ap.add_argument("--reference", action="append", default=[], help="LABEL=VALUE, a vertical line (repeatable)")
    ap.add_argument("--out", default=None, help="a PNG of all runs")
    ap.add_argument("--title", default="Take Cover: real episodes of the dream-trained C")
    args = ap.parse_args()
    runs = {}
    for label, path in _pairs(args.runs, "evaluate.json", ap):
        scores = json.loads(Path(path).read_text()).get("scores")
        if not scores:
            ap.error(f"{path} has no per-episode `scores`")
        runs[label] = [float(s) for s in scores]
    try:
        references = {label: float(v) for label, v in _pairs(args.reference, "VALUE", ap)}
    except ValueError as err:
        ap.error(f"--reference needs a number after '=': {err}")
    width = max(len(label) for label in runs)
    print(f"{'run':<{width}} {'episodes':>8} {'mean':>7} {'std':>7} {'median':>7} {'min':>6} {'max':>6}")
    for label, s in runs.items():
        print(f"{label:<{width}} {len(s):>8} {statistics.fmean(s):>7.1f} {statistics.pstdev(s):>7.1f} "
              f"{statistics.median(s):>7.1f} {min(s):>6.0f} {max(s):>6.0f}")
    if args.out:
        print("wrote", plot(args.out, runs, references, args.title))


if __name__ == "__main__":
    main()
