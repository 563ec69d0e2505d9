"""Exploration policies for data collection: brownian motion and random linear weights."""
from __future__ import annotations

import numpy as np

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
