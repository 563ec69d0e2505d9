"""CarRacing-v3 with the paper's preprocessing: crop the status bar, resize to 64x64."""
from __future__ import annotations

import os
import threading
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

from wm.config import CarRacingConfig

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless pygame

# pygame's drawing is not thread-safe: two envs rendering in threads of one process (runner.kind: thread) corrupt
# each other's frames. Envs of one process take turns; processes (and Ray workers) are unaffected.
_ENV_LOCK = threading.Lock()


def preprocess_frame(obs: np.ndarray, crop_rows: int = 84, size: int = 64) -> np.ndarray:
    """Map a raw 96x96x3 uint8 observation to a size x size x 3 uint8 frame."""
    if obs.shape != (96, 96, 3) or obs.dtype != np.uint8:
        raise ValueError(f"expected a 96x96x3 uint8 CarRacing observation, got {obs.shape} {obs.dtype}")
    img = Image.fromarray(obs[:crop_rows])
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


class PreprocessFrame(gym.ObservationWrapper):
    """Observation wrapper applying preprocess_frame."""

    def __init__(self, env: gym.Env, crop_rows: int = 84, size: int = 64) -> None:
        super().__init__(env)
        self.crop_rows, self.size = crop_rows, size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Crop and resize one observation."""
        return preprocess_frame(observation, self.crop_rows, self.size)

    def step(self, action: Any) -> tuple[Any, ...]:
        """One env step, holding the lock that keeps pygame to one thread at a time."""
        with _ENV_LOCK:
            return super().step(action)

    def reset(self, **kwargs: Any) -> tuple[Any, ...]:
        """Reset, under the same lock (reset renders the first frame)."""
        with _ENV_LOCK:
            return super().reset(**kwargs)


def make_raw_env(cfg: CarRacingConfig) -> gym.Env:
    """The unwrapped-observation CarRacing env (96x96x3), fast renderer if configured."""
    from wm.envs.carracing_fast import make_carracing

    return make_carracing(fast=cfg.fast_render)


def make_env(cfg: CarRacingConfig) -> gym.Env:
    """CarRacing-v3 returning preprocessed 64x64x3 uint8 frames."""
    return PreprocessFrame(make_raw_env(cfg), cfg.crop_rows, cfg.frame_size)
