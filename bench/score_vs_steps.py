"""Several runs of the iterative procedure (e.g. one per seed) in one figure: real score against real-env steps.

Each run is a `plots/iter<k>/progress.json` (written by `evaluate_iter@k`: one row per iteration 0..k). The script
prints every run's real score per iteration and, with --out, draws them beside real-env CMA-ES
(`reference/real_mode.json`).

Usage: python bench/score_vs_steps.py seed0=/path/a/plots/iter4/progress.json seed1=/path/b/plots/iter4/progress.json
       [--reference reference/real_mode.json] [--out docs/score-vs-steps-seeds.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from wm.progress import plot_score_vs_steps  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="LABEL=progress.json")
    ap.add_argument("--reference", default=str(_ROOT / "reference" / "real_mode.json"))
    ap.add_argument("--out", default=None, help="a PNG of all runs")
    ap.add_argument("--title", default="CarRacing-v3: trained only in the dream, real score against real-env steps")
    args = ap.parse_args()
    series = {}
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            ap.error(f"expected LABEL=progress.json, got {spec!r}")
        series[label] = json.loads(Path(path).read_text())
    print(f"{'run':<10} {'iteration':>9} {'real steps':>11} {'dream score':>11} {'real score':>18}")
    for label, rows in series.items():
        for r in rows:
            dream = "–" if r.get("dream_return") is None else f"{r['dream_return']:.1f}"
            print(f"{label:<10} {r['iteration']:>9} {r['real_steps']:>11,} {dream:>11} "
                  f"{r['eval_mean']:>8.1f} ± {r['eval_std']:<7.1f}")
    if args.out:
        reference = json.loads(Path(args.reference).read_text()) if args.reference else None
        print("wrote", plot_score_vs_steps(args.out, series, reference, title=args.title))


if __name__ == "__main__":
    main()
