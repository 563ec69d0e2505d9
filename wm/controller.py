"""C: the tiny controller, with the paper's architecture and its two ablations."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class Controller(nn.Module):
    """Maps (z, h) to a CarRacing action.

    arch: "linear" a = tanh(W[z, h] + b); "hidden" z -> 40 tanh units -> action; "v_only" a = tanh(W z + b).
    """

    def __init__(self, arch: str = "linear", z_dim: int = 32, h_dim: int = 256, hidden_units: int = 40,
                 action_dim: int = 3) -> None:
        super().__init__()
        if arch not in ("linear", "hidden", "v_only"):
            raise ValueError(f"unknown controller arch {arch!r}")
        self.arch, self.z_dim, self.h_dim, self.hidden_units = arch, z_dim, h_dim, hidden_units
        self.action_dim = action_dim
        if arch == "linear":
            self.net = nn.Linear(z_dim + h_dim, action_dim)
        elif arch == "v_only":
            self.net = nn.Linear(z_dim, action_dim)
        else:
            self.net = nn.Sequential(nn.Linear(z_dim, hidden_units), nn.Tanh(), nn.Linear(hidden_units, action_dim))

    @property
    def uses_memory(self) -> bool:
        """Whether C reads M's hidden state (only the linear arch does)."""
        return self.arch == "linear"

    def config(self) -> dict[str, Any]:
        """Constructor arguments, stored beside the weights."""
        return {"arch": self.arch, "z_dim": self.z_dim, "h_dim": self.h_dim,
                "hidden_units": self.hidden_units, "action_dim": self.action_dim}

    def num_params(self) -> int:
        """Number of parameters CMA-ES searches over."""
        return sum(p.numel() for p in self.parameters())

    def set_flat(self, flat: np.ndarray) -> "Controller":
        """Load a flat parameter vector (as CMA-ES proposes it)."""
        torch.nn.utils.vector_to_parameters(torch.as_tensor(np.asarray(flat), dtype=torch.float32),
                                            self.parameters())
        return self

    def get_flat(self) -> np.ndarray:
        """The parameters as one flat float64 vector."""
        return torch.nn.utils.parameters_to_vector(self.parameters()).detach().double().numpy()

    def forward(self, z: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """Raw tanh outputs in [-1, 1], shape (B, 3)."""
        x = torch.cat([z, h], dim=-1) if self.uses_memory else z
        return torch.tanh(self.net(x))


def to_env_action(raw: np.ndarray) -> np.ndarray:
    """Map tanh outputs to CarRacing's box: steer in [-1, 1], gas and brake in [0, 1]."""
    return np.array([raw[0], (raw[1] + 1.0) / 2.0, (raw[2] + 1.0) / 2.0], dtype=np.float32)
