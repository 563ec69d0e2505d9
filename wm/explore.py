"""Iteration k's real rollouts: the agent of iteration k-1 (V, M_{k-1}, C_{k-1}) drives, plus smooth noise.

Stored like the random-policy rollouts (wm/collect.py), with their own meta: a file is reused only if it was made by
the same agent (the three weight files' digests), seed, iteration, env and iterate knobs.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from wm.agent import load_agent
from wm.collect import files_to_make, record_rollout
from wm.config import EnvConfig, IterateConfig
from wm.rollouts import rollout_path
from wm.seeds import EXPLORE, derive_seed


class SmoothNoise:
    """n_{t+1} = corr * n_t + sqrt(1 - corr^2) * std * N(0, I): stationary std `std`, correlated over steps."""

    def __init__(self, rng: np.random.Generator, std: float, corr: float, dim: int = 3) -> None:
        self.rng, self.std, self.corr = rng, std, corr
        self.value = std * rng.standard_normal(dim)

    def __call__(self) -> np.ndarray:
        """The next noise vector."""
        scale = np.sqrt(1 - self.corr**2) * self.std  # this order keeps the noise bit for bit
        self.value = self.corr * self.value + scale * self.rng.standard_normal(len(self.value))
        return self.value.astype(np.float32)


def file_digest(path: str | Path) -> str:
    """md5 of a file's bytes: identifies the agent that made a rollout."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def agent_digests(weights: dict[str, str]) -> dict[str, str]:
    """Digests of the agent's weight files, by role (vae, mdrnn, controller)."""
    return {role: file_digest(path) for role, path in sorted(weights.items())}


def explore_settings(env_cfg: EnvConfig, cfg: IterateConfig, seed: int, iteration: int, index: int,
                     agent: dict[str, str]) -> dict[str, Any]:
    """Everything that decides an exploration rollout's bytes."""
    explore = {"max_steps": cfg.max_steps, "noise": cfg.noise_at(iteration), "noise_corr": cfg.noise_corr}
    return {"seed": seed, "iteration": iteration, "index": index, "agent": agent,
            "env": env_cfg.model_dump(exclude={"fast_render"}), "explore": explore}


def explore_todo(out_dir: str | Path, env_cfg: EnvConfig, cfg: IterateConfig, seed: int, iteration: int,
                 weights: dict[str, str]) -> tuple[list[int], list[int], dict[int, str]]:
    """(missing, stale, corrupt) exploration rollouts of this iteration."""
    agent = agent_digests(weights)
    return files_to_make(out_dir, cfg.rollouts, lambda i: explore_settings(env_cfg, cfg, seed, iteration, i, agent))


def explore_rollout(env_cfg: EnvConfig, cfg: IterateConfig, seed: int, iteration: int, index: int,
                    weights: dict[str, str], out_dir: str | Path) -> dict:
    """Play one rollout with the agent plus smooth noise and write it atomically; return a small summary."""
    import torch

    torch.set_num_threads(1)  # one rollout per worker process
    rseed = derive_seed(seed, EXPLORE, iteration, index)
    agent = load_agent(weights["vae"], weights["mdrnn"], weights["controller"])
    std = cfg.noise_at(iteration)
    noise = SmoothNoise(np.random.default_rng(rseed), std, cfg.noise_corr, agent.controller.actions.dim)
    agent.reset(rseed)
    settings = explore_settings(env_cfg, cfg, seed, iteration, index, agent_digests(weights))
    summary = record_rollout(env_cfg, lambda frame: agent.act(frame, noise()), rseed, cfg.max_steps,
                             rollout_path(out_dir, index), settings)
    return summary | {"index": index}
