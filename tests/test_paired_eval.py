"""bench/paired_eval.py: its statistics by hand, and how it finds an agent's files."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from paired_eval import agent_files, mean_se, paired  # noqa: E402


def test_mean_se_by_hand() -> None:
    assert mean_se([2.0, 4.0, 6.0]) == pytest.approx((4.0, 2.0 / math.sqrt(3)))
    assert mean_se([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError):
        mean_se([])


def test_paired_removes_what_the_episodes_share() -> None:
    hard_and_easy = [10.0, 500.0, 20.0, 800.0]
    better_by_30 = [x + 30.0 for x in hard_and_easy]
    assert paired(hard_and_easy, better_by_30) == pytest.approx((30.0, 0.0))
    assert paired([1.0, 2.0], [3.0, 2.0])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal lengths"):
        paired([1.0], [1.0, 2.0])


def test_agent_files_name_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "models" / "iter3").mkdir(parents=True)
    for f in ("vae.safetensors", "iter3/mdrnn.safetensors", "iter3/controller.safetensors"):
        (tmp_path / "models" / f).write_bytes(b"x")
    label, files = agent_files(f"sigma 0.2={tmp_path}:3")
    assert label == "sigma 0.2" and files[2].endswith("models/iter3/controller.safetensors")
    with pytest.raises(FileNotFoundError, match="iter4/mdrnn"):
        agent_files(f"a={tmp_path}:4")
    with pytest.raises(ValueError, match="LABEL=WORKSPACE:K"):
        agent_files(f"a={tmp_path}")
