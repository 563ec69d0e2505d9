"""bench/episode_scores.py: prints each run's figures from its evaluate.json, draws them, names bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "episode_scores.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_prints_each_runs_figures_and_draws_them(tmp_path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"scores": [100.0, 200.0, 600.0]}))
    b.write_text(json.dumps({"scores": [150.0, 150.0]}))
    out = tmp_path / "fig.png"
    done = _run(f"seed 0=a={a}", f"b={b}", "--reference", "random=315.6", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()}
    assert "seed" in rows and rows["b"][1:4] == ["2", "150.0", "0.0"]
    assert "300.0" in done.stdout and "200.0" in done.stdout  # seed 0=a: mean 300, median 200
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_file_without_scores_or_a_bad_reference_is_named(tmp_path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"mean": 1.0}))
    done = _run(f"x={empty}")
    assert done.returncode != 0 and "has no per-episode `scores`" in done.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"scores": [1.0]}))
    done = _run(f"x={good}", "--reference", "random=lots")
    assert done.returncode != 0 and "--reference needs a number" in done.stderr
