"""VizDoom's Take Cover (vizdoom's own gymnasium env) as World Models sees it: the whole screen resized to 64x64,
C's one action in [-1, 1] snapped to move left / stay / move right, +1 reward per tic alive (the scenario's
living reward), and an episode that ends when the agent dies (or at the caller's step cap: the paper used 2,100)."""
from __future__ import annotations

import atexit
import multiprocessing.util
import os
import threading
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image

from wm.config import TakeCoverConfig


def preprocess_screen(screen: np.ndarray, size: int = 64) -> np.ndarray:
    """A uint8 (H, W, 3) screen buffer to a size x size x 3 uint8 frame."""
    if screen.ndim != 3 or screen.shape[-1] != 3 or screen.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 Doom screen, got {screen.shape} {screen.dtype}")
    return np.asarray(Image.fromarray(screen).resize((size, size), Image.BILINEAR), dtype=np.uint8)


class TakeCover(gym.Wrapper):
    """Frames in, one continuous action out: observations are 64x64x3 frames, actions (1,) floats."""

    def __init__(self, env: gym.Env, size: int = 64) -> None:
        super().__init__(env)
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        # vizdoom's Discrete(3) lists button combinations ([0, 0], [0, 1], [1, 0]) in the order of its buttons
        buttons = [str(b).split(".")[-1].split(":")[0] for b in env.unwrapped.game.get_available_buttons()]
        combos = [tuple(int(x) for x in c) for c in env.unwrapped.button_map]
        press = {name: tuple(int(i == j) for j in range(len(buttons))) for i, name in enumerate(buttons)}
        self._index = {-1: combos.index(press["MOVE_LEFT"]), 0: combos.index((0, 0)),
                       1: combos.index(press["MOVE_RIGHT"])}

    def _frame(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return preprocess_screen(obs["screen"], self.size)

    def discrete(self, action: Any) -> int:
        """vizdoom's action index for a value in [-1, 1]: left below -1/3, right above 1/3, else stay."""
        a = float(np.asarray(action, dtype=np.float32).reshape(-1)[0])
        return self._index[1 if a > 1 / 3 else -1 if a < -1 / 3 else 0]

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        """New episode; the seed fixes the fireballs."""
        obs, info = self.env.reset(**kwargs)
        return self._frame(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One tic with the snapped action. A finished episode has no screen: a black frame stands in."""
        obs, reward, terminated, truncated, info = self.env.step(self.discrete(action))
        frame = self._frame(obs) if "screen" in obs else np.zeros((self.size, self.size, 3), np.uint8)
        return frame, float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        """Leave the game running for the thread's next episode (see make_env)."""


# Starting the game costs about 0.6 s, more than a random episode (about 300 tics at 0.5 ms). Each thread keeps
# one game per screen size and starts every episode with reset(seed=...), which replays it exactly: a reused game
# gives the same bytes as a fresh one (tests/test_doom.py). Games are keyed by process too: a forked worker
# inherits its parent's dict, but must neither drive nor stop the parent's games.
_GAMES: dict[tuple[str, int, int], gym.Env] = {}  # (screen, pid, thread) -> game
_STOPS_GAMES: set[int] = set()  # the processes whose exit stops their games


@atexit.register
def _close_games() -> None:
    """Stop this process's kept games (their vizdoom processes) when it ends."""
    for key in [k for k in _GAMES if k[1] == os.getpid()]:
        _GAMES.pop(key).close()


def _stop_games_at_exit() -> None:
    """A forked worker (a fork-context process pool) ends with os._exit, which skips atexit, and its vizdoom
    processes outlived it. multiprocessing runs a Finalize when such a worker ends, so each process registers one."""
    if os.getpid() not in _STOPS_GAMES:
        _STOPS_GAMES.add(os.getpid())
        multiprocessing.util.Finalize(None, _close_games, exitpriority=0)


def make_env(cfg: TakeCoverConfig) -> gym.Env:
    """Take Cover returning 64x64x3 uint8 frames, rendered at cfg.screen (the game itself is the same at any size)."""
    import vizdoom.gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* envs)

    key = (cfg.screen, os.getpid(), threading.get_ident())
    if key not in _GAMES:
        _stop_games_at_exit()
        _GAMES[key] = gym.make("VizdoomTakeCover-v1", screen_resolution=f"RES_{cfg.screen.upper()}")
    return TakeCover(_GAMES[key], cfg.frame_size)
