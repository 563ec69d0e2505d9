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
