"""Where a CarRacing-v3 step goes: physics, drawing, downscaling, our preprocessing, and the wrappers.

Times the same scripted drive (gas with steering bursts) through `wm.envs.carracing.make_env`, the env every stage
uses, with timers around the renderer's parts on the env instance. Prints ms per step and the share of each phase
for the fast and the stock renderer. "physics and the rest of step" is the step minus the render: Box2D, the car
model, the tile contact listener and the reward. Timers cost about a microsecond each; the totals include them.

The last lines give the fast renderer's floor: the time its step spends inside pygame's C drawing and scaling calls
(gfxdraw's polygons, pygame.draw's polygons, the background fill, smoothscale) plus physics. A renderer that draws
the same pixels with the same pygame calls cannot beat it, whatever its Python costs; stock's time over the floor is
the most such a renderer could gain.

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
import pygame  # noqa: E402
from pygame import gfxdraw  # noqa: E402

from wm.config import CarRacingConfig  # noqa: E402
from wm.envs import carracing  # noqa: E402

PHASES = ("physics and the rest of step", "draw road and grass", "draw car", "HUD, flip, array copy",
          "downscale (smoothscale)", "preprocess (crop, 64x64)", "gymnasium wrappers")
# pygame's C calls the renderers spend their pixels in (module attributes, looked up at each call).
C_CALLS = ((gfxdraw, "aapolygon"), (gfxdraw, "filled_polygon"), (pygame.draw, "polygon"),
           (pygame.transform, "smoothscale"))


def _timed(fn: Callable[..., Any], key: str, spent: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0
    return wrapper


def _fill_timed(fn: Callable[..., Any], spent: dict[str, float]) -> Callable[..., Any]:
    """Time fn as "C: background fill", less what its own gfxdraw calls already count."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        inner = spent["C: aapolygon"] + spent["C: filled_polygon"]
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent["C: background fill"] += time.perf_counter() - t0 - (
                spent["C: aapolygon"] + spent["C: filled_polygon"] - inner)
    return wrapper


def _instrument(env: Any, spent: dict[str, float]) -> None:
    """Put timers on the renderer's parts of this env instance (the car is new after each reset)."""
    u = env.unwrapped
    u._render = _timed(u._render, "render", spent)
    u._render_road = _timed(u._render_road, "draw road and grass", spent)
    u._render_indicators = _timed(u._render_indicators, "indicators", spent)
    if hasattr(u, "_render_background"):  # the fast renderer's flat fill of the canvas
        u._render_background = _fill_timed(u._render_background, spent)
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
    originals = [(mod, name, getattr(mod, name)) for mod, name in C_CALLS]
    for mod, name, fn in originals:
        setattr(mod, name, _timed(fn, f"C: {name}", spent))
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
        for mod, name, fn in originals:
            setattr(mod, name, fn)
        env.close()
    physics = spent["unwrapped step"] - spent["render"]
    floor = physics + sum(v for k, v in spent.items() if k.startswith("C: "))
    spent["floor"] = floor
    ms = {
        "physics and the rest of step": physics,
        "draw road and grass": spent["draw road and grass"],
        "draw car": spent["draw car"],
        "HUD, flip, array copy": spent["render"] - spent["draw road and grass"] - spent["draw car"]
        - spent["C: smoothscale"],
        "downscale (smoothscale)": spent["C: smoothscale"],
        "preprocess (crop, 64x64)": spent["preprocess (crop, 64x64)"],
        "gymnasium wrappers": total - spent["unwrapped step"] - spent["preprocess (crop, 64x64)"],
        "floor": floor,
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
            row += f"{ms[phase]:16.3f}{ms[phase] / sum(ms[p] for p in PHASES):8.1%}"
        print(row)
    print(f"{'total':32s}" + "".join(f"{sum(ms[p] for p in PHASES):16.3f}{'':8s}" for ms, _ in results.values()))
    print("steps/s: " + ", ".join(f"{name} {rate:.0f}" for name, (_, rate) in results.items()))
    fast, stock = results["fast"][0], results["stock"][0]
    total = {name: sum(ms[p] for p in PHASES) for name, (ms, _) in results.items()}
    print(f"fast renderer's floor (physics + pygame's C drawing and scaling calls): {fast['floor']:.3f} ms/step; "
          f"stock / fast {total['stock'] / total['fast']:.2f}x, stock / floor {total['stock'] / fast['floor']:.2f}x")


if __name__ == "__main__":
    main()
