"""Summaries of evaluation episodes."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def summarize(scores: Sequence[float], seeds: Sequence[int]) -> dict:
    """The evaluate metrics: mean, std, min, max, episodes and one score per episode."""
    s = np.asarray(scores, dtype=np.float64)
    return {"mean": float(s.mean()), "std": float(s.std()), "min": float(s.min()), "max": float(s.max()),
            "episodes": int(len(s)), "scores": [float(x) for x in s], "seeds": [int(x) for x in seeds]}
