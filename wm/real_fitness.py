"""Real-env fitness for CMA-ES: a candidate's return in the real env, one episode per call.

Built once per flow from paths and config; small and picklable, so a flow maps `episode` over (candidate, seed)
pairs as parallel tasks. V and M are loaded once per worker process and reused.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from wm.agent import Agent, run_episode
from wm.config import ControllerConfig, EnvConfig
from wm.controller import Controller
from wm.mdrnn import load_mdrnn
from wm.vae import load_vae


def _stamp(*paths: str | Path) -> tuple[float, ...]:
    return tuple(Path(p).stat().st_mtime for p in paths)  # a rewritten file is loaded again


@lru_cache(maxsize=4)
def _world_model(vae_path: str, mdrnn_path: str, stamp: tuple[float, ...]):
    torch.set_num_threads(1)  # each worker process plays one episode at a time; threads only contend
    return load_vae(vae_path), load_mdrnn(mdrnn_path)


@dataclass(frozen=True)
class RealFitness:
    """A candidate's return in the real env: one episode per call."""

    vae: str
    mdrnn: str
    env: EnvConfig
    controller: ControllerConfig
    patience: int | None

    def episode(self, params: np.ndarray, seed: int) -> dict[str, float]:
        """Return and steps of the controller with flat parameters `params` on one episode seed."""
        vae, mdrnn = _world_model(self.vae, self.mdrnn, _stamp(self.vae, self.mdrnn))
        c = self.controller
        controller = Controller(c.arch, vae.z_dim, mdrnn.hidden, c.hidden_units, self.env.id,
                                c.z_input, c.action_repeat).set_flat(params).eval()
        return run_episode(Agent(vae, mdrnn, controller), self.env, seed, c.max_steps, self.patience)
