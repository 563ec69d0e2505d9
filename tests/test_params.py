"""Bad params are rejected with one line naming the key, a non-zero exit, and nothing written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, subprocess_env
from wm.config import ParamsError, load_params

SMOKE = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())


def _with(path: list[str], value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(SMOKE))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


BAD = [
    (["controller", "population"], 1, "controller.population"),
    (["controller", "arch"], "transformer", "controller.arch"),
    (["collect", "rollouts"], "many", "collect.rollouts"),
    (["vae", "learning_rate"], 0.1, "vae.learning_rate: unknown key"),
    (["runner", "kind"], "slurm", "runner.kind"),
    (["controller", "mode"], "imagined", "controller.mode"),
    (["controller", "temperature"], 0, "controller.temperature"),
    (["evaluate", "max_steps"], 5000, "evaluate.max_steps"),
]


@pytest.mark.parametrize(("path", "value", "key"), BAD)
def test_schema_names_the_bad_key(tmp_path: Path, path: list[str], value: object, key: str) -> None:
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(_with(path, value)))
    with pytest.raises(ParamsError) as err:
        load_params(f)
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_cross_field_check(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    data = _with(["mdrnn", "seq_len"], 500)
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match="mdrnn.seq_len"):
        load_params(f)


def test_profiles_are_valid() -> None:
    for name in ("params.yaml", "params/smoke.yaml", "params/paper.yaml"):
        load_params(REPO / name)


@pytest.mark.parametrize("stage", ["collect", "vae", "controller", "evaluate"])
def test_stage_cli_rejects_bad_params_and_writes_nothing(tmp_path: Path, stage: str) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with(["controller", "sigma0"], -1.0)))
    proc = subprocess.run([sys.executable, "-m", "flows", stage], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "controller.sigma0" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
