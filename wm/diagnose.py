"""The dream's verdict on a trained C: its mean dream return on the fixed check seeds, and one dream as frames."""
from __future__ import annotations

import numpy as np
import torch

from wm.controller import BatchedController, Controller
from wm.dream_fitness import DreamFitness
from wm.seeds import check_seeds
from wm.vae import ConvVAE
from wm.video import decode_latents


def dream_score(fitness: DreamFitness, controller: Controller, seed: int, episodes: int) -> float:
    """Mean dream return of `controller` on the check seeds (the ones CMA-ES checks its mean on)."""
    return float(np.mean(fitness.population([controller.get_flat()], check_seeds(seed, episodes))))


def dream_frames(fitness: DreamFitness, controller: Controller, vae: ConvVAE, seed: int
                 ) -> tuple[np.ndarray, float, int]:
    """One full-length dream of `controller` (no patience cut) decoded through V: (frames, return, steps)."""
    dream = fitness.world(patience=False)
    flat = torch.as_tensor(controller.get_flat(), dtype=torch.float32).unsqueeze(0)
    policy = BatchedController(controller.arch, flat, dream.z_dim, dream.hidden, controller.hidden_units)
    result = dream.rollout(policy, check_seeds(seed, 1), record=True)
    steps = int(result.steps[0, 0])
    return decode_latents(vae, result.latents[: steps + 1, 0, 0]), float(result.returns[0, 0]), steps
