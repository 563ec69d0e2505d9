"""The score-against-real-steps rows and figure: steps add up across iterations; one run or several draw."""
from __future__ import annotations

import numpy as np

from wm.progress import plot_score_vs_steps, progress_row

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(fitness: list[int]) -> list[dict]:
    rows: list[dict] = []
    for k, f in enumerate(fitness):
        lengths = np.full(10 + 5 * k, 100)
        rows.append(progress_row(k, lengths, f, {"mean": 10.0 * k, "std": 1.0, "episodes": 2}, "dream", 1.0, rows))
    return rows


def test_real_steps_count_every_collected_step_and_every_fitness_step_so_far() -> None:
    rows = _rows([0, 300, 200])
    assert [r["collected_steps"] for r in rows] == [1000, 1500, 2000]
    assert [r["fitness_steps"] for r in rows] == [0, 300, 500]
    assert [r["real_steps"] for r in rows] == [1000, 1800, 2500]


def test_the_figure_draws_one_run_or_several_beside_the_reference(tmp_path) -> None:
    reference = {"runs": [{"real_steps": 5000, "eval_mean": 600.0, "eval_std": 100.0,
                           "checks": [{"real_steps": 2000, "check_mean_return": 100.0}]}]}
    one = plot_score_vs_steps(tmp_path / "one.png", _rows([0, 0]), reference)
    several = plot_score_vs_steps(tmp_path / "several.png", {"seed 0": _rows([0, 0]), "seed 1": _rows([0, 0, 0])})
    for path in (one, several):
        assert path.read_bytes().startswith(PNG)
    assert not list(tmp_path.glob("*.tmp*"))
