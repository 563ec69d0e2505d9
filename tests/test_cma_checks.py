"""bench/cma_checks.py: which checked CMA means it scores, what it averages, and its bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from cma_checks import controller_config, plan  # noqa: E402
from wm.config import load_params  # noqa: E402


def test_plan_checks_every_k_generations_and_the_last() -> None:
    checked, scored, spans = plan(10, 4, None, [])
    assert checked == [4, 8, 10] and scored == {4, 8, 10} and spans == []


def test_plan_scores_only_the_named_generations_and_keeps_the_spans() -> None:
    checked, scored, spans = plan(120, 1, "60,120", ["61-120", "91-120"])
    assert len(checked) == 120 and scored == {60, 120} and spans == [(61, 120), (91, 120)]


@pytest.mark.parametrize("real_at, averages, message", [
    ("7", [], "not checked generations"),
    ("sixty", [], "expected comma-separated"),
    (None, ["61:120"], "expected A-B"),
    (None, ["1-3"], "no checked generation in it"),
])
def test_plan_names_bad_input(real_at: str | None, averages: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(120, 20, real_at, averages)


def test_overrides_go_through_the_params_schema() -> None:
    base = load_params(ROOT / "params" / "doom.yaml").controller
    cfg = controller_config(base, 180, 60, ["population=64", "trials=4", "sigma0=0.05"])
    assert (cfg.mode, cfg.generations, cfg.eval_every, cfg.population, cfg.trials, cfg.sigma0) == \
        ("dream", 180, 60, 64, 4, 0.05)
    with pytest.raises(ValueError, match="populaton"):
        controller_config(base, None, None, ["populaton=64"])
    with pytest.raises(ValueError, match="population"):
        controller_config(base, None, None, ["population=1"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        controller_config(base, None, None, ["population"])


def test_bad_flags_fail_before_any_file_is_read(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "cma_checks.py"), "--params",
                          str(ROOT / "params" / "doom.yaml"), "--vae", missing, "--latents", missing, "--mdrnn",
                          missing, "--average", "5-4"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--average 5-4: no checked generation in it" in out.stderr
