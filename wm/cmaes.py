"""CMA-ES over the controller's parameters: a plain ask-score-tell loop.

The caller supplies `score_population` (wm/real_fitness.py or wm/dream_fitness.py), so this module does not know where
a candidate is scored. Every `eval_every` generations the CMA mean is scored on fixed check seeds, and the mean
that scored best is the result.
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


def train_cmaes(num_params: int, cfg: ControllerConfig, score_population: ScorePopulation, seed: int = 0,
                on_generation: Callable[[dict[str, float]], None] | None = None) -> CmaResult:
    """Maximise mean return with pycma: x0 = 0, sigma0 and population from cfg."""
    es = cma.CMAEvolutionStrategy(np.zeros(num_params), cfg.sigma0,
                                  {"popsize": cfg.population, "seed": seed + 1, "verbose": -9})
    best_params, best_score = np.zeros(num_params), -np.inf
    history: list[dict[str, float]] = []
    checks = check_seeds(seed, cfg.eval_episodes)
    for gen in range(1, cfg.generations + 1):
        t0 = time.perf_counter()
        candidates = es.ask()
        fitness = score_population(candidates, trial_seeds(seed, gen, cfg.trials))
        es.tell(candidates, [-f for f in fitness])
        row = {"generation": float(gen), "best": float(np.max(fitness)), "mean": float(np.mean(fitness)),
               "worst": float(np.min(fitness)), "sigma": float(es.sigma)}
        if gen % cfg.eval_every == 0 or gen == cfg.generations:
            mean_params = np.asarray(es.mean).copy()
            check = float(np.mean(score_population([mean_params], checks)))
            row["check_mean_return"] = check
            if check >= best_score:
                best_params, best_score = mean_params, check
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if on_generation:
            on_generation(row)
    return CmaResult(best_params, best_score, history)
