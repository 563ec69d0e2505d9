"""One adapter per environment, behind `make_env`: an env that returns 64x64x3 uint8 frames and takes the actions of
its wm.actions map. V, M, C, the dream and CMA-ES know nothing else about it."""
from __future__ import annotations

import gymnasium as gym

from wm.actions import CARRACING, TAKECOVER
from wm.config import EnvConfig


def make_env(cfg: EnvConfig) -> gym.Env:
    """The preprocessed env that `cfg.id` names (CarRacing-v3 or VizdoomTakeCover-v1)."""
    if cfg.id == CARRACING:
        from wm.envs.carracing import make_env as make_carracing
        return make_carracing(cfg)
    if cfg.id == TAKECOVER:
        from wm.envs.doom import make_env as make_takecover
        return make_takecover(cfg)
    raise ValueError(f"unknown env id {cfg.id!r}")
