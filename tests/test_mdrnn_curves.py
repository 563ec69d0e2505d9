"""bench/mdrnn_curves.py: first, best and last epochs picked by hand, and the M histories found in iteration order."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from mdrnn_curves import histories, summarize  # noqa: E402


def _row(epoch: int, nll: float, val_reward: float, train_reward: float) -> dict[str, float]:
    return {"epoch": float(epoch), "val_nll_per_dim": nll, "val_reward_loss": val_reward,
            "train_reward_loss": train_reward}


def test_summarize_by_hand() -> None:
    rows = [_row(1, 0.90, 0.20, 0.11), _row(2, 0.88, 0.25, 0.08), _row(3, 0.89, 0.30, 0.05)]
    s = summarize(rows)
    assert s["epochs"] == 3
    assert (s["val_nll_per_dim_best"], s["val_nll_per_dim_best_epoch"]) == (0.88, 2)
    assert (s["val_reward_loss_first"], s["val_reward_loss_best_epoch"], s["val_reward_loss_last"]) == (0.20, 1, 0.30)
    assert (s["train_reward_loss_first"], s["train_reward_loss_last"]) == (0.11, 0.05)
    with pytest.raises(ValueError, match="no epoch"):
        summarize([])


def test_histories_in_iteration_order(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="plots/mdrnn.json"):
        histories(tmp_path)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "mdrnn.json").write_text(json.dumps([_row(1, 1.0, 0.1, 0.1)]))
    for k in (10, 2, 1):
        (tmp_path / "plots" / f"iter{k}").mkdir()
        (tmp_path / "plots" / f"iter{k}" / "mdrnn.json").write_text(json.dumps([_row(1, 1.0, 0.1, 0.1)] * k))
    found = histories(tmp_path)
    assert [label for label, _ in found] == ["M_0", "M_1", "M_2", "M_10"]
    assert [len(rows) for _, rows in found] == [1, 1, 2, 10]
