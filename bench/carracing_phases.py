"""Where a CarRacing-v3 step goes: physics, drawing, downscaling, our preprocessing, and the wrappers.

Times the same scripted drive (gas with steering bursts) through `wm.envs.carracing.make_env`, the env every stage
uses, with timers around the renderer's parts on the env instance. Prints ms per step and the share of each phase
for the fast and the stock renderer. "physics and the rest of step" is the step minus the render: Box2D, the car
model, the tile contact listener and the reward. Timers cost about a microsecond each; the totals include them.

Usage: python bench/carracing_phases.py [--steps 400] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

from wm.config import CarRacingConfig  # noqa: E402
from wm.envs import carracing  # noqa: E402

PHASES = ("physics and the rest of step", "draw road and grass", "draw car", "flip, indicators, HUD",
          "downscale to 96x96 array", "preprocess (crop, 64x64)", "gymnasium wrappers")


def _timed(fn: Callable[..., Any], key: str, spent: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0
    return wrapper


def _instrument(env: Any, spent: dict[str, float]) -> None:
    """Put timers on the renderer's parts of this env instance (the car is new after each reset)."""
    u = env.unwrapped
    u._render = _timed(u._render, "render", spent)
    u._render_road = _timed(u._render_road, "draw road and grass", spent)
    u._render_indicators = _timed(u._render_indicators, "indicators", spent)
    u._create_image_array = _timed(u._create_image_array, "downscale to 96x96 array", spent)
    u.car.draw = _timed(u.car.draw, "draw car", spent)


def profile(fast: bool, steps: int, seed: int) -> tuple[dict[str, float], float]:
    """ms per step of each phase, and steps/s, over `steps` steps of the scripted drive."""
    cfg = CarRacingConfig(id="CarRacing-v3", fast_render=fast, crop_rows=84, frame_size=64)
    env = carracing.make_env(cfg)
    rng = np.random.default_rng(seed)
    spent: dict[str, float] = defaultdict(float)
    env.reset(seed=seed)
    env.step(np.array([0.0, 1.0, 0.0], dtype=np.float32))  # gymnasium's env checker runs on the first step
    _instrument(env, spent)
    preprocess = carracing.preprocess_frame
    carracing.preprocess_frame = _timed(preprocess, "preprocess (crop, 64x64)", spent)
    inner_step = env.unwrapped.step
    env.unwrapped.step = _timed(inner_step, "unwrapped step", spent)
    total = 0.0
    try:
        for i in range(steps):
            action = np.array([rng.choice([-1.0, 1.0]) if i % 30 < 10 else 0.0, 1.0, 0.0], dtype=np.float32)
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            total += time.perf_counter() - t0
            if terminated or truncated:
                env.reset(seed=seed)
                env.unwrapped.car.draw = _timed(env.unwrapped.car.draw, "draw car", spent)
    finally:
        carracing.preprocess_frame = preprocess
        env.close()
    ms = {
        "physics and the rest of step": spent["unwrapped step"] - spent["render"],
        "draw road and grass": spent["draw road and grass"],
        "draw car": spent["draw car"],
        "flip, indicators, HUD": spent["render"] - spent["draw road and grass"] - spent["draw car"]
        - spent["downscale to 96x96 array"],
        "downscale to 96x96 array": spent["downscale to 96x96 array"],
        "preprocess (crop, 64x64)": spent["preprocess (crop, 64x64)"],
        "gymnasium wrappers": total - spent["unwrapped step"] - spent["preprocess (crop, 64x64)"],
    }
    return {k: 1000 * v / steps for k, v in ms.items()}, steps / total


def main() -> None:
    """Profile both renderers on the same drive and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {name: profile(fast, args.steps, args.seed) for name, fast in (("fast", True), ("stock", False))}
    print(f"{'phase':32s}" + "".join(f"{name + ' ms/step':>16s}{'share':>8s}" for name in results))
    for phase in PHASES:
        row = f"{phase:32s}"
        for ms, _ in results.values():
            row += f"{ms[phase]:16.3f}{ms[phase] / sum(ms.values()):8.1%}"
        print(row)
    print(f"{'total':32s}" + "".join(f"{sum(ms.values()):16.3f}{'':8s}" for ms, _ in results.values()))
    print("steps/s: " + ", ".join(f"{name} {rate:.0f}" for name, (_, rate) in results.items()))


if __name__ == "__main__":
    main()
