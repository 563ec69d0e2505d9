"""CMA-ES over the controller's parameters, with the fitness function supplied by the caller.

The caller decides how a population is scored (in this process, in Prefect tasks, on Ray), so this module
stays a plain loop: ask, score, tell, and every k generations score the CMA mean on fixed seeds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import cma
import numpy as np
import torch

from wm.agent import Agent, run_episode
from wm.config import ControllerConfig, EnvConfig
from wm.controller import BatchedController, Controller
from wm.dream import Dream, initial_latents
from wm.io import load_npz
from wm.models import load_mdrnn, load_vae
from wm.seeds import CONTROLLER_CHECK, CONTROLLER_TRAIN, derive_seed

ScorePopulation = Callable[[list[np.ndarray], list[int]], list[float]]


@dataclass
class CmaResult:
    """Best parameters found (by the periodic mean check) and the per-generation log."""

    best_params: np.ndarray
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)


def trial_seeds(seed: int, generation: int, trials: int) -> list[int]:
    """Env seeds shared by every candidate of a generation (common random numbers cut fitness noise)."""
    return [derive_seed(seed, CONTROLLER_TRAIN, generation, t) for t in range(trials)]


def check_seeds(seed: int, episodes: int) -> list[int]:
    """Fixed seeds on which the CMA mean is scored throughout training."""
    return [derive_seed(seed, CONTROLLER_CHECK, i) for i in range(episodes)]


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


@lru_cache(maxsize=4)
def _cached_world_model(vae_path: str, mdrnn_path: str, stamp: tuple[float, float]):
    torch.set_num_threads(1)  # each worker process plays one episode at a time; threads only contend
    return load_vae(vae_path), load_mdrnn(mdrnn_path)


def score_candidate(vae_path: str, mdrnn_path: str, env_cfg: EnvConfig, cfg: ControllerConfig,
                    params: np.ndarray, seeds: Sequence[int], max_steps: int | None = None,
                    patience: int | None = -1) -> list[dict[str, float]]:
    """Play one episode per seed with controller parameters `params`; V and M are cached per process."""
    stamp = (Path(vae_path).stat().st_mtime, Path(mdrnn_path).stat().st_mtime)
    vae, mdrnn = _cached_world_model(str(vae_path), str(mdrnn_path), stamp)
    controller = Controller(cfg.arch, vae.z_dim, mdrnn.hidden, cfg.hidden_units).set_flat(params).eval()
    agent = Agent(vae, mdrnn, controller)
    steps = cfg.max_steps if max_steps is None else max_steps
    wait = cfg.patience if patience == -1 else patience
    return [run_episode(agent, env_cfg, s, steps, wait) for s in seeds]


@lru_cache(maxsize=4)
def _cached_dream(mdrnn_path: str, latents_path: str, temperature: float, max_steps: int, patience: int | None,
                  stamp: tuple[float, float]) -> Dream:
    return Dream(load_mdrnn(mdrnn_path), initial_latents(load_npz(latents_path)), temperature, max_steps, patience)


def load_dream(mdrnn_path: str | Path, latents_path: str | Path, cfg: ControllerConfig) -> Dream:
    """The dream C trains in: M at cfg.temperature, starting from the encoded first frames; cached per process."""
    stamp = (Path(mdrnn_path).stat().st_mtime, Path(latents_path).stat().st_mtime)
    return _cached_dream(str(mdrnn_path), str(latents_path), cfg.temperature, cfg.max_steps, cfg.patience, stamp)


def score_dream(dream: Dream, cfg: ControllerConfig, candidates: Sequence[np.ndarray], seeds: Sequence[int]
                ) -> list[float]:
    """Mean dream return per candidate: the whole population x all seeds in one batched rollout."""
    flat = torch.as_tensor(np.stack([np.asarray(c) for c in candidates]), dtype=torch.float32)
    policy = BatchedController(cfg.arch, flat, dream.z_dim, dream.hidden, cfg.hidden_units)
    return dream.rollout(policy, seeds).fitness()
