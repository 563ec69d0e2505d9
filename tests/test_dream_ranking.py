"""bench/dream_ranking.py: its rank statistics by hand, and how it reads a row."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from dream_ranking import parse_row, ranks, spearman, top_half_gain  # noqa: E402
from wm.config import load_params  # noqa: E402


def test_ranks_share_ties() -> None:
    assert ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]


def test_spearman_is_order_only() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x ** 3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    assert spearman(x, np.array([2.0, 1.0, 4.0, 3.0, 5.0])) == pytest.approx(0.8)
    assert np.isnan(spearman(x, np.ones(5)))


def test_top_half_gain_follows_the_dreams_order() -> None:
    real = np.array([10.0, 20.0, 30.0, 40.0])
    assert top_half_gain(np.array([1.0, 2.0, 3.0, 4.0]), real) == pytest.approx(35.0 - 25.0)
    assert top_half_gain(np.array([4.0, 3.0, 2.0, 1.0]), real) == pytest.approx(15.0 - 25.0)


def test_a_row_overrides_dream_keys_and_may_swap_m() -> None:
    base = load_params(ROOT / "params" / "dream.yaml").dream
    label, cfg, mdrnn, members = parse_row("hot|temperature=1.3,mdrnn=m3.safetensors,members=a+b", base, "m4")
    assert (label, cfg.temperature, cfg.dropout, mdrnn, members) == ("hot", 1.3, base.dropout, "m3.safetensors",
                                                                     ("a", "b"))
    with pytest.raises(ValueError, match="temperature"):
        parse_row("bad|temperature=-1", base, "m4")
    with pytest.raises(ValueError, match="not key=value"):
        parse_row("bad|temperature", base, "m4")
    with pytest.raises(ValueError, match="tempreature"):
        parse_row("typo|tempreature=1.0", base, "m4")
