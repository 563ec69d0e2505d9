"""CMA-ES over the controller's parameters: a plain ask-score-tell loop.

The caller supplies `score_population` (wm/real_fitness.py or wm/dream_fitness.py), so this module does not know where
a candidate is scored. Every `eval_every` generations the CMA mean is scored on fixed check seeds, and the mean
that scored best is the result. The per-generation log and the checks are two lists, each with the same keys in
every row, so a plot of any column renders.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import cma
import numpy as np

from wm.config import ControllerConfig
from wm.seeds import check_seeds, trial_seeds

ScorePopulation = Callable[[list[np.ndarray], list[int]], list[float]]


@dataclass
class CmaResult:
    """Best parameters found (by the periodic mean check) and the per-generation log."""

    best_params: np.ndarray
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    checks: list[dict[str, float]] = field(default_factory=list)


def train_cmaes(num_params: int, cfg: ControllerConfig, score_population: ScorePopulation, seed: int = 0,
                on_generation: Callable[[dict[str, float]], None] | None = None, x0: np.ndarray | None = None,
                real_steps: Callable[[], int] = lambda: 0) -> CmaResult:
    """Maximise mean return with pycma from x0 (zeros unless warm-started), sigma0 and population from cfg.

    `real_steps` reports the real-env steps the scorer has used so far (0 in the dream); each row logs it.
    """
    start = np.zeros(num_params) if x0 is None else np.asarray(x0, dtype=np.float64)
    if start.shape != (num_params,):
        raise ValueError(f"x0 has shape {start.shape}, expected ({num_params},)")
    es = cma.CMAEvolutionStrategy(start, cfg.sigma0, {"popsize": cfg.population, "seed": seed + 1, "verbose": -9})
    best_params, best_score = start.copy(), -np.inf
    history: list[dict[str, float]] = []
    check_on = check_seeds(seed, cfg.eval_episodes)
    checks: list[dict[str, float]] = []
    for gen in range(1, cfg.generations + 1):
        t0 = time.perf_counter()
        candidates = es.ask()
        fitness = score_population(candidates, trial_seeds(seed, gen, cfg.trials))
        es.tell(candidates, [-f for f in fitness])
        row = {"generation": float(gen), "best": float(np.max(fitness)), "mean": float(np.mean(fitness)),
               "worst": float(np.min(fitness)), "sigma": float(es.sigma)}
        if gen % cfg.eval_every == 0 or gen == cfg.generations:
            mean_params = np.asarray(es.mean).copy()
            check = float(np.mean(score_population([mean_params], check_on)))
            checks.append({"generation": float(gen), "check_mean_return": check, "real_steps": float(real_steps())})
            if check >= best_score:
                best_params, best_score = mean_params, check
        row["real_steps"] = float(real_steps())
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if on_generation:
            on_generation(row)
    return CmaResult(best_params, best_score, history, checks)
