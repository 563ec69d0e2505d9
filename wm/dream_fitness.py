"""Dream fitness for CMA-ES: candidates' returns in M's dream at temperature tau, a whole population per call.

Built once per flow from paths and config. An M file holding an ensemble (mdrnn.members > 1) dreams as that
ensemble: its deaths by dream.ensemble_done, its reward by dream.disagreement. Dreams start from real states of the
encoded rollouts (first frames, or any frame with M burned in, or an on-road one, by `dream.start`). With
`dream.hazard: calibrated` its deaths are shifted by age so that the collection policy dies in it as in the rollouts
(wm/dream_hazard.py). The dream is built (and calibrated) once per process and reused.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from wm.actions import CARRACING
from wm.config import ControllerConfig, DreamConfig
from wm.controller import BatchedController
from wm.device import resolve_device
from wm.dream import Dream, StartPool, burned_in_starts, first_frame_starts, mixed_pool
from wm.dream_hazard import ROUNDS, AgeFit, fit_age_offsets
from wm.io import load_npz
from wm.mdrnn import MDRNN, load_ensemble, load_mdrnn


def _stamp(*paths: str | Path) -> tuple[float, ...]:
    return tuple(Path(p).stat().st_mtime for p in paths)  # a rewritten file is loaded again


def start_pool(mdrnn: MDRNN, latents: dict[str, np.ndarray], start: str, first_frame_share: float = 0.0) -> StartPool:
    """The real states dreams start from, by `dream.start` and `dream.first_frame_share`."""
    first = first_frame_starts(mdrnn, latents)
    if start == "first_frame":
        return first
    burned = burned_in_starts(mdrnn, latents, on_road=start == "on_road")
    return mixed_pool(first, burned, first_frame_share) if first_frame_share > 0 else burned


def real_lifetimes(latents: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each rollout's length and whether it ended in a death (its last step terminated) rather than at the cap."""
    lengths = np.asarray(latents["lengths"], dtype=np.int64)
    return lengths, np.asarray(latents["dones"], dtype=bool)[np.cumsum(lengths) - 1]


@lru_cache(maxsize=4)
def _dream(mdrnn_path: str, latents_path: str, temperature: float, max_steps: int, patience: int | None,
           dropout: float, start: str, first_frame_share: float, device: str, done: str, members: tuple[str, ...],
           disagreement: float, ensemble_done: str, hazard: tuple[str, int, str, int], action_noise: float,
           member_pick: str, stamp: tuple[float, ...]) -> tuple[Dream, AgeFit | None]:
    (mdrnn, *ensemble), latents = load_ensemble(mdrnn_path), load_npz(latents_path)
    pool = start_pool(mdrnn, latents, start, first_frame_share)
    ensemble += [load_mdrnn(m) for m in members]  # M's own members, then any others
    dream = Dream(mdrnn, pool, temperature, max_steps, patience, dropout, resolve_device(device), done, ensemble,
                  disagreement, ensemble_done, action_noise=action_noise,
                  member_pick=member_pick)
    kind, band, env, repeat_max = hazard
    if kind == "model":
        return dream, None
    bar = tqdm(total=ROUNDS + 1, desc="calibrating the dream's hazard by age", unit="round")
    fit = fit_age_offsets(dream, *real_lifetimes(latents), env, repeat_max, band, progress=lambda _: bar.update(1))
    bar.close()
    return dream, fit


@dataclass(frozen=True)
class DreamFitness:
    """Candidates' returns in M's dream at temperature tau, starting from real states (`dream.start`)."""

    mdrnn: str
    latents: str
    controller: ControllerConfig
    dream: DreamConfig
    env: str = CARRACING  # whose actions C outputs (wm.actions)
    device: str = "cpu"  # where the dream runs: a `device` setting (auto, cpu, cuda)
    members: tuple[str, ...] = ()  # more Ms beside those saved in M's file (wm.dream.Dream), C reading the first's h
    repeat_max: int = 10  # the collection policy's longest hold (collect.repeat_max), for dream.hazard: calibrated

    def _world(self, patience: bool) -> tuple[Dream, AgeFit | None]:
        return _dream(self.mdrnn, self.latents, self.dream.temperature, self.controller.max_steps,
                      self.dream.patience if patience else None, self.dream.dropout, self.dream.start,
                      self.dream.first_frame_share, self.device, self.dream.done, tuple(self.members),
                      self.dream.disagreement, self.dream.ensemble_done,
                      (self.dream.hazard, self.dream.hazard_band, self.env, self.repeat_max),
                      self.dream.action_noise, self.dream.member_pick, _stamp(self.mdrnn, self.latents, *self.members))

    def world(self, patience: bool = True) -> Dream:
        """The dream, cached per process; `patience=False` lets every dream run to max_steps (for videos)."""
        return self._world(patience)[0]

    def age_fit(self) -> AgeFit | None:
        """With dream.hazard: calibrated, the fitted offsets per age band and the hazards they came from."""
        return self._world(True)[1]

    def policy(self, candidates: Sequence[np.ndarray]) -> BatchedController:
        """The candidates as one batched controller."""
        dream, c = self.world(), self.controller
        flat = torch.as_tensor(np.stack([np.asarray(x) for x in candidates]), dtype=torch.float32).to(dream.device)
        return BatchedController(c.arch, flat, dream.z_dim, dream.hidden, c.hidden_units, self.env, c.action_repeat)

    def population(self, candidates: Sequence[np.ndarray], seeds: Sequence[int]) -> list[float]:
        """Mean dream return per candidate: the whole population x all seeds in one batched rollout."""
        return self.world().rollout(self.policy(candidates), seeds).fitness()
