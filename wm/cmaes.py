"""CMA-ES over the controller's parameters: a plain ask-score-tell loop.

The caller supplies `score_population` (wm/real_fitness.py or wm/dream_fitness.py), so this module does not know where
a candidate is scored. Every `eval_every` generations the CMA mean is scored on fixed check seeds, and the mean
that scored best is the result. The per-generation log and the checks are two lists, each with the same keys in
every row, so a plot of any column renders.

Resume: pycma's state is a deterministic function of its seed and of the fitness values it was told, so a checkpoint
records those (plus the history, the checks and the best mean so far) and a resumed run replays the ask/tell
sequence without scoring anything; the replayed CMA mean and step size must match the saved ones bit for bit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import cma
import numpy as np
import torch

from wm.checkpoint import Checkpoint
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
    real_steps: int = 0  # real-env steps the scorer used, over every run this result resumed


def _replay(es: cma.CMAEvolutionStrategy, saved: tuple[dict, dict], path: object) -> None:
    """Tell `es` the saved fitness of every finished generation; raise unless it lands on the saved state."""
    tensors, state = saved
    for fitness in state["fitness"]:
        candidates = es.ask()
        es.tell(candidates, [-f for f in fitness])
    mean = torch.from_numpy(np.asarray(es.mean, dtype=np.float64))
    if not torch.equal(mean, tensors["mean"]) or float(es.sigma) != state["sigma"]:
        raise RuntimeError(f"{path}: replaying CMA-ES did not reproduce the saved state (another CPU model?); "
                           "delete the checkpoint to start afresh")


def train_cmaes(num_params: int, cfg: ControllerConfig, score_population: ScorePopulation, seed: int = 0,
                on_generation: Callable[[dict[str, float]], None] | None = None, x0: np.ndarray | None = None,
                real_steps: Callable[[], int] = lambda: 0, checkpoint: Checkpoint | None = None) -> CmaResult:
    """Maximise mean return with pycma from x0 (zeros unless warm-started), sigma0 and population from cfg.

    `real_steps` reports the real-env steps the scorer has used so far (0 in the dream); each row logs it.
    With `checkpoint`, each generation is saved, and a run that finds a checkpoint resumes after its generation.
    """
    start = np.zeros(num_params) if x0 is None else np.asarray(x0, dtype=np.float64)
    if start.shape != (num_params,):
        raise ValueError(f"x0 has shape {start.shape}, expected ({num_params},)")
    es = cma.CMAEvolutionStrategy(start, cfg.sigma0, {"popsize": cfg.population, "seed": seed + 1, "verbose": -9})
    best_params, best_score = start.copy(), -np.inf
    history: list[dict[str, float]] = []
    check_on = check_seeds(seed, cfg.eval_episodes)
    checks: list[dict[str, float]] = []
    told: list[list[float]] = []  # every generation's fitness, in candidate order: what a resume replays
    steps0 = 0  # real-env steps of the runs this one resumes
    saved = checkpoint.load() if checkpoint else None
    if saved is not None:
        _replay(es, saved, checkpoint.path)
        tensors, state = saved
        told, history, checks = state["fitness"], state["history"], state["checks"]
        best_params = tensors["best_params"].numpy().copy()
        best_score, steps0 = state["best_score"], state["real_steps"]
        print(f"cma-es: resuming after generation {len(told)} of {cfg.generations} from {checkpoint.path}")
        for row in history:
            if on_generation:
                on_generation(row)
    for gen in range(len(told) + 1, cfg.generations + 1):
        t0 = time.perf_counter()
        candidates = es.ask()
        fitness = score_population(candidates, trial_seeds(seed, gen, cfg.trials))
        es.tell(candidates, [-f for f in fitness])
        told.append([float(f) for f in fitness])
        row = {"generation": float(gen), "best": float(np.max(fitness)), "mean": float(np.mean(fitness)),
               "worst": float(np.min(fitness)), "sigma": float(es.sigma)}
        if gen % cfg.eval_every == 0 or gen == cfg.generations:
            mean_params = np.asarray(es.mean).copy()
            check = float(np.mean(score_population([mean_params], check_on)))
            checks.append({"generation": float(gen), "check_mean_return": check,
                           "real_steps": float(steps0 + real_steps())})
            if check >= best_score:
                best_params, best_score = mean_params, check
        row["real_steps"] = float(steps0 + real_steps())
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if checkpoint and gen < cfg.generations:
            checkpoint.save({"mean": torch.from_numpy(np.asarray(es.mean, dtype=np.float64)),
                             "best_params": torch.from_numpy(np.asarray(best_params, dtype=np.float64))},
                            {"fitness": told, "history": history, "checks": checks, "best_score": best_score,
                             "sigma": float(es.sigma), "real_steps": steps0 + real_steps()})
        if on_generation:
            on_generation(row)
    return CmaResult(best_params, best_score, history, checks, steps0 + real_steps())
