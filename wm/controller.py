"""C: the tiny controller, with the paper's architecture and its two ablations, for any env's action map."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wm.actions import CARRACING, action_map
from wm.io import load_weights, save_weights


class Controller(nn.Module):
    """Maps (z, h) to `env`'s raw actions in [-1, 1] (wm.actions turns them into env actions).

    arch: "linear" a = tanh(W[z, h] + b); "linear_hc" a = tanh(W[z, h, c] + b), reading M's LSTM cell state c too,
    as the authors' Doom code does; "hidden" z -> 40 tanh units -> action; "v_only" a = tanh(W z + b).
    z_input: what C reads of a real frame, V's mean (`mean`) or a draw from V's posterior (`sample`, as the authors'
    real env did: in the dream C reads z sampled from M, never a mean). It is saved with the weights, so every agent
    built from the file reads frames the same way.
    action_repeat: C picks an action every this many steps and the env (real or dream) plays it until the next pick,
    while M reads every frame; saved with the weights too (1, every step, is not written: files as before).
    """

    def __init__(self, arch: str = "linear", z_dim: int = 32, h_dim: int = 256, hidden_units: int = 40,
                 env: str = CARRACING, z_input: str = "mean", action_repeat: int = 1) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown controller arch {arch!r}")
        if z_input not in ("mean", "sample"):
            raise ValueError(f"z_input must be 'mean' or 'sample', got {z_input!r}")
        self.arch, self.z_dim, self.h_dim, self.hidden_units = arch, z_dim, h_dim, hidden_units
        self.z_input, self.action_repeat = z_input, checked_repeat(action_repeat)
        self.env, self.actions = env, action_map(env)
        action_dim = self.action_dim = self.actions.dim
        if arch in MEMORY_ARCHS:
            self.net = nn.Linear(z_dim + h_dim * (2 if arch == "linear_hc" else 1), action_dim)
        elif arch == "v_only":
            self.net = nn.Linear(z_dim, action_dim)
        else:
            self.net = nn.Sequential(nn.Linear(z_dim, hidden_units), nn.Tanh(), nn.Linear(hidden_units, action_dim))

    @property
    def uses_memory(self) -> bool:
        """Whether C reads M's state (the linear archs do)."""
        return self.arch in MEMORY_ARCHS

    def config(self) -> dict[str, Any]:
        """Constructor arguments, stored beside the weights."""
        cfg = {"arch": self.arch, "z_dim": self.z_dim, "h_dim": self.h_dim,
               "hidden_units": self.hidden_units, "env": self.env}
        if self.z_input != "mean":  # the defaults are not written: files as before
            cfg["z_input"] = self.z_input
        if self.action_repeat != 1:
            cfg["action_repeat"] = self.action_repeat
        return cfg

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

    def forward(self, z: torch.Tensor, h: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """Raw tanh outputs in [-1, 1], shape (B, action_dim), from z and M's state (h, c) as the arch reads it."""
        return torch.tanh(self.net(inputs(self.arch, z, h, c)))


ARCHS = ("linear", "linear_hc", "hidden", "v_only")
MEMORY_ARCHS = ("linear", "linear_hc")  # the archs that read M's state


def checked_repeat(action_repeat: int) -> int:
    """`action_repeat` as an int >= 1, or a ValueError that names it."""
    if isinstance(action_repeat, bool) or not isinstance(action_repeat, int) or action_repeat < 1:
        raise ValueError(f"action_repeat must be an integer >= 1, got {action_repeat!r}")
    return int(action_repeat)


def inputs(arch: str, z: torch.Tensor, h: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
    """What C of `arch` reads: z alone, [z, h], or [z, h, c]."""
    if arch == "linear":
        return torch.cat([z, h], dim=-1)
    if arch == "linear_hc":
        return torch.cat([z, h, c], dim=-1)
    return z


def to_env_action(raw: torch.Tensor) -> torch.Tensor:
    """Map tanh outputs (..., 3) to CarRacing's box: steer in [-1, 1], gas and brake in [0, 1]."""
    return action_map(CARRACING).to_env(raw)


class BatchedController:
    """P controllers of one arch evaluated together: one weight set per candidate, applied with batched matmuls.

    `flat` (P, n) holds CMA-ES candidates in the same layout as Controller.get_flat(), so
    BatchedController(flat)(z, h)[p] equals Controller.set_flat(flat[p])(z[p], h[p]). `action_repeat` is read by
    the dream (wm.dream.Dream.rollout), which asks for actions only every that many steps.
    """

    def __init__(self, arch: str, flat: torch.Tensor, z_dim: int = 32, h_dim: int = 256,
                 hidden_units: int = 40, env: str = CARRACING, action_repeat: int = 1) -> None:
        template = Controller(arch, z_dim, h_dim, hidden_units, env, action_repeat=action_repeat)
        self.arch, self.uses_memory = arch, template.uses_memory
        self.action_repeat = template.action_repeat
        self.actions = template.actions
        flat = torch.as_tensor(flat, dtype=torch.float32)
        if flat.ndim != 2 or flat.shape[1] != template.num_params():
            raise ValueError(f"expected candidates of shape (P, {template.num_params()}) for arch {arch!r}, "
                             f"got {tuple(flat.shape)}")
        self.population = flat.shape[0]
        # Split the flat vectors in parameters() order; weights become (P, in, out) for torch.baddbmm.
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        offset = 0
        for module in [m for m in template.modules() if isinstance(m, nn.Linear)]:
            out_f, in_f = module.weight.shape
            w = flat[:, offset:offset + out_f * in_f].reshape(-1, out_f, in_f).transpose(1, 2).contiguous()
            offset += out_f * in_f
            b = flat[:, offset:offset + out_f].unsqueeze(1).contiguous()
            offset += out_f
            self.layers.append((w, b))

    def __call__(self, z: torch.Tensor, h: torch.Tensor | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """Raw tanh actions (P, T, action_dim) for inputs z (P, T, z) and M's h and c (P, T, hidden)."""
        x = inputs(self.arch, z, h, c)
        for w, b in self.layers:
            x = torch.tanh(torch.baddbmm(b, x, w))
        return x


def save_controller(path: str | Path, model: Controller) -> None:
    """Save C as safetensors with its config."""
    save_weights(path, model, model.config())


def load_controller(path: str | Path) -> Controller:
    """Load C in eval mode."""
    state, cfg = load_weights(path)
    if "env" not in cfg:  # saved before C knew its env: a CarRacing controller
        cfg = {k: v for k, v in cfg.items() if k != "action_dim"} | {"env": CARRACING}
    model = Controller(**cfg)
    model.load_state_dict(state)
    return model.eval()
