"""Seed derivation: every rollout and episode gets a seed from its (stream, index) key.

Training seeds live in [0, 1e9); evaluation seeds in [1e9, 1e9 + n), so the two never overlap.
"""
from __future__ import annotations

import numpy as np

COLLECT = 1
CONTROLLER_TRAIN = 2
CONTROLLER_CHECK = 3
EVAL_BASE = 1_000_000_000


def derive_seed(*key: int) -> int:
    """A training seed in [0, 1e9) that depends only on `key`."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0]) % EVAL_BASE


def eval_seeds(n: int) -> list[int]:
    """The fixed evaluation seeds, disjoint from every training seed."""
    return [EVAL_BASE + i for i in range(n)]
