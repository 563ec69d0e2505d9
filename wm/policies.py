"""Exploration policies for data collection: brownian motion and random linear weights (CarRacing), and random
actions held for a random number of steps (the paper's Doom policy; it plays any env)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from wm.actions import ActionMap, action_map
from wm.config import CollectConfig

LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)
HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)


class BrownianPolicy:
    """a_{t+1} = clip(a_t + sqrt(dt) * N(0, 1)): smooth actions that explore more than white noise."""

    def __init__(self, rng: np.random.Generator, dt: float = 0.02, gas_bias: float = 0.3) -> None:
        self.rng, self.dt = rng, dt
        self.action = np.array([0.0, gas_bias, 0.0], dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Next action; the frame is ignored."""
        step = np.sqrt(self.dt) * self.rng.standard_normal(3).astype(np.float32)
        self.action = np.clip(self.action + step, LOW, HIGH)
        return self.action.copy()


class RandomWeightsPolicy:
    """A fixed random linear map from an 8x8 grayscale thumbnail to an action (the paper's random controller)."""

    def __init__(self, rng: np.random.Generator, gas_bias: float = 0.3) -> None:
        self.w = rng.standard_normal((3, 64)).astype(np.float32) / 8.0
        self.b = rng.standard_normal(3).astype(np.float32) * 0.1 + np.array([0.0, gas_bias, -1.0], np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Action for one 64x64x3 frame."""
        gray = frame.mean(axis=2, dtype=np.float32).reshape(8, 8, 8, 8).mean(axis=(1, 3)) / 255.0
        a = np.tanh(self.w @ gray.ravel() + self.b)
        return np.array([a[0], (a[1] + 1) / 2, max(0.0, a[2])], dtype=np.float32)


class RepeatPolicy:
    """A uniform random action in the env's box, snapped to what the env executes, held for 1..repeat_max steps."""

    def __init__(self, rng: np.random.Generator, actions: ActionMap, repeat_max: int) -> None:
        self.rng, self.actions, self.repeat_max = rng, actions, repeat_max
        self.left = 0
        self.action = np.zeros(actions.dim, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Next action; the frame is ignored."""
        if self.left == 0:
            raw = self.rng.uniform(self.actions.low, self.actions.high).astype(np.float32)
            self.action = self.actions.snap(torch.from_numpy(raw)).numpy()
            self.left = int(self.rng.integers(1, self.repeat_max + 1))
        self.left -= 1
        return self.action.copy()


def make_policy(cfg: CollectConfig, env: str, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """The collection policy that `collect.policy` names, for env id `env`."""
    if cfg.policy == "brownian":
        return BrownianPolicy(rng, cfg.brownian_dt, cfg.gas_bias)
    if cfg.policy == "random_weights":
        return RandomWeightsPolicy(rng, cfg.gas_bias)
    return RepeatPolicy(rng, action_map(env), cfg.repeat_max)
