"""How C's tanh outputs become an environment's actions: one ActionMap per environment id.

C always outputs `dim` values in [-1, 1]. `to_env` maps them onto the env's action box, exploration noise is
added there and clipped to the box, and `snap` makes the action the env really executes (identity for CarRacing's
continuous controls; left / stay / right for Take Cover). M is trained on snapped actions, and the dream feeds it
snapped actions too, so the dream and the real env read the same action.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

CARRACING, TAKECOVER = "CarRacing-v3", "VizdoomTakeCover-v1"


@dataclass(frozen=True)
class ActionMap:
    """An env's action box and the maps from C's raw outputs into it."""

    env: str
    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def dim(self) -> int:
        """Number of action components (and of C's outputs)."""
        return len(self.low)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The box as tensors (low, high), each (dim,)."""
        return torch.tensor(self.low), torch.tensor(self.high)

    def to_env(self, raw: torch.Tensor) -> torch.Tensor:
        """tanh outputs (..., dim) to the box: CarRacing's gas and brake from [-1, 1] to [0, 1]; Doom unchanged."""
        if self.env == CARRACING:
            return torch.cat([raw[..., :1], (raw[..., 1:] + 1.0) * 0.5], dim=-1)
        return raw

    def snap(self, action: torch.Tensor) -> torch.Tensor:
        """The action the env executes: CarRacing's as is; Take Cover's -1 (left), 0 (stay) or +1 (right), split at
        +-1/3 as in the paper."""
        if self.env == TAKECOVER:
            return (action > 1 / 3).to(action.dtype) - (action < -1 / 3).to(action.dtype)
        return action


ACTION_MAPS = {
    CARRACING: ActionMap(CARRACING, (-1.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # steer, gas, brake
    TAKECOVER: ActionMap(TAKECOVER, (-1.0,), (1.0,)),  # left < -1/3 < stay < 1/3 < right
}


def action_map(env: str) -> ActionMap:
    """The ActionMap of an env id (ValueError naming the known ones otherwise)."""
    try:
        return ACTION_MAPS[env]
    except KeyError:
        raise ValueError(f"unknown env {env!r}; known: {', '.join(ACTION_MAPS)}") from None
