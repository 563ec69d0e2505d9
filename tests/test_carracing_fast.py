"""FastCarRacing must produce exactly the stock CarRacing-v3 observations."""

from __future__ import annotations

import numpy as np
import pytest

from wm.envs.carracing_fast import FAST_ENV_ID, make_carracing, register_fast_env

N_STEPS = 150


def _actions(seed: int, n: int) -> np.ndarray:
    """Fixed action script: hard steering bursts (to leave the road) plus gas/brake."""
    rng = np.random.default_rng(seed)
    acts = np.zeros((n, 3), dtype=np.float32)
    steer = 0.0
    for i in range(n):
        if i % 15 == 0:
            # Mostly full lock so the car spins onto the grass and the view
            # rotates through many angles; sometimes a gentler correction.
            steer = float(rng.choice([-1.0, 1.0, rng.uniform(-0.5, 0.5)]))
        acts[i, 0] = steer
        acts[i, 1] = 1.0 if rng.random() < 0.8 else 0.0
        acts[i, 2] = 0.6 if rng.random() < 0.1 else 0.0
    return acts


def _rollout(fast: bool, seed: int, actions: np.ndarray, **kwargs):
    env = make_carracing(fast=fast, **kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        frames = [obs]
        rewards, terms = [], []
        for a in actions:
            obs, r, term, trunc, _ = env.step(a)
            frames.append(obs)
            rewards.append(r)
            terms.append(term)
            if term or trunc:
                break
        return frames, rewards, terms
    finally:
        env.close()


def _assert_same(seed: int, actions: np.ndarray, **kwargs) -> None:
    stock = _rollout(False, seed, actions, **kwargs)
    fast = _rollout(True, seed, actions, **kwargs)
    s_frames, s_rew, s_term = stock
    f_frames, f_rew, f_term = fast
    assert len(s_frames) == len(f_frames)
    for i, (a, b) in enumerate(zip(s_frames, f_frames)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), f"observation {i} differs (seed={seed})"
    assert s_rew == f_rew
    assert s_term == f_term


@pytest.mark.parametrize("seed", [0, 7])
def test_fast_matches_stock(seed: int) -> None:
    _assert_same(seed, _actions(seed, N_STEPS))


def test_fast_matches_stock_domain_randomize() -> None:
    # Float-valued random colours exercise the background fill colour path.
    _assert_same(3, _actions(3, 60), domain_randomize=True)


def test_registration_idempotent() -> None:
    import gymnasium as gym

    assert register_fast_env() == FAST_ENV_ID
    assert register_fast_env() == FAST_ENV_ID
    spec, stock = gym.spec(FAST_ENV_ID), gym.spec("CarRacing-v3")
    assert spec.max_episode_steps == stock.max_episode_steps == 1000
    assert spec.kwargs == stock.kwargs


def _hud_bar_frames(fast: bool, force_apart: bool = False) -> list[np.ndarray]:
    """Three observations right after the speed and one wheel are pushed past the HUD strip's bars."""
    env = make_carracing(fast=fast)
    try:
        env.reset(seed=5)
        for _ in range(60):
            env.step(np.array([0.0, 1.0, 0.0], dtype=np.float32))
        car = env.unwrapped.car
        car.hull.linearVelocity = (260.0, 40.0)
        car.wheels[2].omega = 450.0
        if fast:
            assert not env.unwrapped._hud_stays_in_strip()
            if force_apart:
                env.unwrapped._hud_stays_in_strip = lambda: True
        return [env.step(np.array([0.3, 1.0, 0.0], dtype=np.float32))[0] for _ in range(3)]
    finally:
        env.close()


def test_fast_matches_stock_when_hud_bars_leave_their_strip() -> None:
    # A speed over 200 (or a wheel over 400 rad/s) draws a HUD bar above the black strip, over the road: the fast
    # renderer then flips the whole canvas as stock does instead of drawing the HUD apart.
    stock = _hud_bar_frames(fast=False)
    for a, b in zip(stock, _hud_bar_frames(fast=True)):
        assert np.array_equal(a, b)
    # Drawing the HUD apart anyway would lose the bars' tops: the fallback is needed.
    forced = _hud_bar_frames(fast=True, force_apart=True)
    assert any(not np.array_equal(a, b) for a, b in zip(stock, forced))


def test_world_space_first_pass_keeps_every_quad_the_exact_tests_keep() -> None:
    # The renderer tests only the quads near the camera; over random camera poses (every zoom from the start of an
    # episode's zoom-in to the full zoom) it must pick exactly what testing every quad of the track would pick.
    from gymnasium.envs.box2d import car_racing as cr

    from wm.envs import carracing_fast as cf

    env = make_carracing(fast=True)
    try:
        env.reset(seed=11)
        u = env.unwrapped
        quads = u._world_quads()
        rng = np.random.default_rng(0)
        drawn = 0
        for _ in range(300):
            angle = rng.uniform(-np.pi, np.pi)
            zoom = rng.uniform(0.1 * cr.SCALE, cr.ZOOM * cr.SCALE)
            tx, ty = rng.uniform(-4000, 4000, size=2)
            c, s = cf._rotation(angle)
            px = (c * quads[..., 0] - s * quads[..., 1]) * zoom + tx
            py = (s * quads[..., 0] + c * quads[..., 1]) * zoom + ty
            pad, cull = cf._STOCK_PAD, cf._CULL_PAD
            near = ((px >= -pad) & (px <= cf._W + pad) & (py >= -pad) & (py <= cf._H + pad)).any(axis=1)
            overlaps = ((px.max(1) >= -cull) & (px.min(1) <= cf._W + cull)
                        & (py.max(1) >= -cull) & (py.min(1) <= cf._H + cull))
            expected = np.flatnonzero(near & overlaps)
            visible, pts = u._visible_quads(c, s, zoom, tx, ty)
            assert np.array_equal(visible, expected)
            assert pts == np.stack([px[expected], py[expected]], axis=-1).tolist()
            drawn += len(expected)
        assert drawn > 1000  # the poses do show grass and road
    finally:
        env.close()
