"""Real-env steps against real-env score: one row per iteration, and the figure that compares ways of training C.

A row counts every real-env step spent to make that iteration's C: all collected rollouts so far (random and
exploration) plus every real episode CMA-ES played (zero in the dream). Evaluation episodes are the measurement,
not training, and are not counted.
"""
from __future__ import annotations

from itertools import cycle
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from wm.io import atomic_path


def progress_row(iteration: int, lengths: np.ndarray, fitness_steps: int, evaluation: dict[str, Any],
                 mode: str, dream_return: float | None, previous: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """One iteration's row; fitness steps add up over iterations, collected steps are the latents' total."""
    fitness = int(fitness_steps) + (int(previous[-1]["fitness_steps"]) if previous else 0)
    collected = int(np.sum(lengths))
    return {"iteration": iteration, "mode": mode, "collected_steps": collected, "fitness_steps": fitness,
            "real_steps": collected + fitness, "eval_mean": float(evaluation["mean"]),
            "eval_std": float(evaluation["std"]), "episodes": int(evaluation["episodes"]),
            "dream_return": None if dream_return is None else float(dream_return)}


def plot_score_vs_steps(path: str | Path, rows: Sequence[dict[str, Any]] | Mapping[str, Sequence[dict[str, Any]]],
                        reference: dict[str, Any] | None = None, title: str = "") -> Path:
    """PNG: real-env score (mean +- std over the evaluation episodes) against real-env steps used, for these
    iterations (or several runs of them, as {label: rows}) and, when given, a reference run of CMA-ES in the real
    env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if reference:
        for i, run in enumerate(reference.get("runs", [])):
            curve = run.get("checks", [])
            if curve:
                ax.plot([c["real_steps"] for c in curve], [c["check_mean_return"] for c in curve], color="tab:gray",
                        alpha=0.5, lw=1, label="real-env CMA-ES: check score while training" if i == 0 else None)
            bound = " (steps: upper bound)" if run.get("real_steps_is_upper_bound") else ""
            ax.errorbar([run["real_steps"]], [run["eval_mean"]], yerr=[run["eval_std"]], fmt="s", color="tab:gray",
                        capsize=3, alpha=0.8, label=f"real-env CMA-ES, default profile, one per seed{bound}"
                        if i == 0 else None)
    series = rows if isinstance(rows, Mapping) else {"": rows}
    colors = cycle(["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink"])
    for (label, run), color in zip(series.items(), colors):
        name = f"trained only in the dream, {label}" if label else "trained only in the dream (iterations 0..k)"
        ax.errorbar([r["real_steps"] for r in run], [r["eval_mean"] for r in run],
                    yerr=[r["eval_std"] for r in run], fmt="o-", color=color, capsize=3, alpha=0.85, label=name)
        for r in run:
            ax.annotate(str(r["iteration"]), (r["real_steps"], r["eval_mean"]), textcoords="offset points",
                        xytext=(4, 6), fontsize=8, color=color)
    ax.axhline(-13.5, color="tab:red", lw=0.8, ls=":", label="random policy (about -13.5)")
    ax.set_xlabel("real-env steps used for training (collection + real-env fitness)")
    ax.set_ylabel("real CarRacing score")
    ax.set_title(title or "Real-env score against real-env steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
