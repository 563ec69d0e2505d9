"""Seed derivation: every rollout and episode gets a seed from its (stream, index) key.

Training seeds live in [0, 1e9); evaluation seeds in [1e9, 1e9 + n), so the two never overlap.
"""
from __future__ import annotations

import numpy as np

COLLECT = 1
CONTROLLER_TRAIN = 2
CONTROLLER_CHECK = 3
EXPLORE = 4
ITERATION = 5
EVAL_BASE = 1_000_000_000


def derive_seed(*key: int) -> int:
    """A training seed in [0, 1e9) that depends only on `key`."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0]) % EVAL_BASE


def eval_seeds(n: int) -> list[int]:
    """The fixed evaluation seeds, disjoint from every training seed."""
    return [EVAL_BASE + i for i in range(n)]


def trial_seeds(seed: int, generation: int, trials: int) -> list[int]:
    """Episode seeds shared by every candidate of a CMA-ES generation (common random numbers cut fitness noise)."""
    return [derive_seed(seed, CONTROLLER_TRAIN, generation, t) for t in range(trials)]


def iteration_seed(seed: int, iteration: int) -> int:
    """The training seed of iteration k of the iterative procedure (iteration 0 uses `seed` itself)."""
    return seed if iteration == 0 else derive_seed(seed, ITERATION, iteration)


def check_seeds(seed: int, episodes: int) -> list[int]:
    """Fixed seeds on which the CMA mean is scored throughout training (and the dream stage scores C)."""
    return [derive_seed(seed, CONTROLLER_CHECK, i) for i in range(episodes)]
