"""Calibrating when the dream kills, by the episode's age.

Take Cover's real hazard rises with age (the game sends more monsters), while M's dream kills at a nearly flat rate:
too often early, too rarely late (README, "Where the profile's dream kills C0"). The random rollouts say how often
the collection policy dies at each age. `fit_age_offsets` replays that policy in the dream and shifts the dream's
done logit by one offset per band of `band` steps until the dream's deaths, band by band, match the rollouts': a
discrete-time proportional-hazards correction. A controller's dream is then shifted the same way at the same age.

Only the random rollouts and the dream are used: no controller's real return goes in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from wm.actions import action_map
from wm.dream import Dream

ROUNDS = 4  # fit rounds: each replays the policy and moves every band's offset by the logit gap
MIN_ALIVE = 20  # a band fits its own offset when the real rollouts lived at least 20 episodes' worth of its steps
MAX_OFFSET = 6.0  # offsets stay in [-6, 6] on the logit scale
SEED = 1_000_003  # the calibration dreams' first trial seed (CMA-ES's trials use small seeds)


def band_counts(lifetimes: np.ndarray, died: np.ndarray, band: int, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Deaths and steps lived (exposure) per age band of `band` steps, `bands` bands (the last takes any later step).

    An episode of n steps lived steps 0..n-1; if it died, it died at step n-1."""
    lifetimes = np.asarray(lifetimes, dtype=np.int64)
    starts = np.arange(bands) * band
    ends = np.append(starts[1:], np.iinfo(np.int64).max)
    exposure = np.clip(lifetimes[None, :], starts[:, None], ends[:, None]) - starts[:, None]
    death_band = np.minimum((lifetimes[np.asarray(died, dtype=bool)] - 1) // band, bands - 1)
    return np.bincount(death_band, minlength=bands).astype(np.float64), exposure.sum(axis=1).astype(np.float64)


def hazard(deaths: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Deaths per step lived, shrunk slightly so that an empty band has a small finite hazard."""
    return (deaths + 0.5) / (exposure + 1.0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)


class RepeatPlay:
    """The collection policy `repeat` as a batched dream policy: per trial, a uniform random action in the env's box,
    held for 1..repeat_max steps (the dream snaps it as the env does). One candidate (population 1)."""

    population = 1
    action_repeat = 1  # asked every step: it holds its own actions

    def __init__(self, env: str, trials: int, repeat_max: int, seed: int) -> None:
        self.actions = action_map(env)
        self.rng, self.repeat_max = np.random.default_rng(seed), repeat_max
        self.held = np.zeros((trials, self.actions.dim), dtype=np.float32)
        self.left = np.zeros(trials, dtype=np.int64)
        self.low, self.high = np.asarray(self.actions.low), np.asarray(self.actions.high)

    def __call__(self, z: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        fresh = self.left == 0
        self.held[fresh] = self.rng.uniform(self.low, self.high, (int(fresh.sum()), len(self.low)))
        self.left[fresh] = self.rng.integers(1, self.repeat_max + 1, int(fresh.sum()))
        self.left -= 1
        return torch.from_numpy(self.held.copy()).unsqueeze(0).to(z.device)


@dataclass
class AgeFit:
    """The fitted offsets and the hazards they came from, per band (deaths per 1,000 steps; NaN where no episode
    lived a step of the band)."""

    band: int
    offsets: list[float]
    real: list[float]
    dream_before: list[float]
    dream_after: list[float]
    real_deaths: list[int]
    fitted: int  # bands 0..fitted-1 have their own offset; later ones share the last of those
    rounds: list[float] = field(default_factory=list)  # the largest offset change of each round

    def rows(self) -> list[dict[str, float]]:
        """One row per band, for a plot or a table."""
        return [{"age": i * self.band, "real": r, "dream": b, "calibrated": a, "offset": o}
                for i, (r, b, a, o) in enumerate(zip(self.real, self.dream_before, self.dream_after, self.offsets))]


def fit_age_offsets(dream: Dream, lifetimes: np.ndarray, died: np.ndarray, env: str, repeat_max: int, band: int,
                    dreams: int = 1024, rounds: int = ROUNDS,
                    progress: Callable[[int], None] | None = None) -> AgeFit:
    """Fit `dream`'s age offsets (set on it, and returned with the hazards) so that the collection policy dies in the
    dream at the real rollouts' hazard in every age band. `lifetimes` and `died` describe the real rollouts.

    A band the real rollouts rarely reached (fewer than MIN_ALIVE episodes' worth of steps lived in it) takes the
    offset of the last band before it that they did reach."""
    bands = math.ceil(dream.max_steps / band)
    real_d, real_e = band_counts(lifetimes, died, band, bands)
    real = hazard(real_d, real_e)
    reached = np.flatnonzero(real_e >= MIN_ALIVE * band)
    if not len(reached):
        raise ValueError(f"the real rollouts lived fewer than {MIN_ALIVE * band} steps in every band of {band} "
                         f"steps: too few to calibrate the dream's hazard (collect more, or lower dream.hazard_band)")
    src = np.minimum(np.arange(bands), int(reached[-1]))  # the band whose hazards set each band's offset
    offsets = np.zeros(bands)
    patience, dream.patience = dream.patience, None  # every calibration dream lives until it dies
    seeds = list(range(SEED, SEED + dreams))
    measured, changes = [], []
    try:
        for r in range(rounds + 1):
            dream.age_band, dream.age_offsets = band, torch.tensor(offsets, dtype=torch.float32, device=dream.device)
            result = dream.rollout(RepeatPlay(env, dreams, repeat_max, SEED), seeds)  # the same dreams each round
            steps = result.steps.view(-1).numpy()
            measured.append(band_counts(steps, steps < dream.max_steps, band, bands))
            if progress is not None:
                progress(r)
            if r == rounds:
                break
            new = np.clip(offsets + _logit(real[src]) - _logit(hazard(*measured[-1])[src]), -MAX_OFFSET, MAX_OFFSET)
            changes.append(float(np.abs(new - offsets).max()))
            offsets = new
    finally:
        dream.patience = patience
    def per_1000(deaths: np.ndarray, exposure: np.ndarray) -> list[float]:
        return [float(x) for x in np.where(exposure > 0, 1000.0 * hazard(deaths, exposure), np.nan)]

    return AgeFit(band, [float(o) for o in offsets], per_1000(real_d, real_e), per_1000(*measured[0]),
                  per_1000(*measured[-1]), [int(d) for d in real_d], int(reached[-1]) + 1, changes)
