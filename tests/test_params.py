"""Bad, missing or partial params are rejected with one line naming the key, a non-zero exit, and nothing written;
every profile is complete."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, stage_args, subprocess_env
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
    (["dream", "temperature"], 0, "dream.temperature"),
    (["controller", "temperature"], 1.0, "controller.temperature: unknown key"),
    (["evaluate", "max_steps"], 20000, "evaluate.max_steps"),
    (["iterations"], {1: 0}, "iterations: must map each iteration k to k-1"),  # DVC's foreach drops int keys
    (["iterations"], {"1": "0", "3": "2"}, "iterations"),
    (["iterations"], ["1"], "iterations: must be a mapping"),
    (["mdrnn", "reward"], "huber", "mdrnn.reward"),
    (["dream", "dropout"], 1.0, "dream.dropout"),
    (["iterate", "noise"], -0.1, "iterate.noise"),
    (["iterate", "noise_decay"], 0.0, "iterate.noise_decay"),
    (["mdrnn", "holdout_from"], "first", "mdrnn.holdout_from"),
    (["dream", "start"], "anywhere", "dream.start"),
    (["mdrnn", "members"], 0, "mdrnn.members"),
    (["dream", "ensemble_done"], "min", "dream.ensemble_done"),
    (["dream", "disagreement"], -1.0, "dream.disagreement"),
    (["dream", "disagreement"], 1.0, "dream.disagreement penalises the members' disagreement"),  # smoke: one M
    (["dream", "first_frame_share"], 1.0, "dream.first_frame_share"),
    (["dream", "first_frame_share"], 0.5, "dream.first_frame_share mixes first frames"),  # smoke: first_frame
    (["dream", "hazard"], "age", "dream.hazard"),
    (["dream", "hazard_band"], 0, "dream.hazard_band"),
    (["dream", "action_noise"], 1.0, "dream.action_noise"),
    (["controller", "action_repeat"], 0, "controller.action_repeat"),
    (["dream", "member_pick"], "trial", "dream.member_pick"),
    (["dream", "member_pick"], "dream", "dream.member_pick: dream picks one of the members"),  # smoke: one M
    (["dream", "hazard"], "calibrated", "dream.hazard: calibrated replays the collection policy"),  # smoke: brownian
    (["mdrnn", "holdout"], 0.0, "mdrnn.patience needs held-out rollouts"),  # smoke keeps M's best epoch
    # strict types: no booleans, fractions or text where a number belongs, and only finite numbers
    (["evaluate", "episodes"], True, "evaluate.episodes: Input should be a valid integer, got true"),
    (["collect", "rollouts"], 2.5, "collect.rollouts: Input should be a valid integer, got 2.5"),
    (["collect", "rollouts"], 4.0, "collect.rollouts: Input should be a valid integer, got 4.0"),
    (["vae", "lr"], float("nan"), "vae.lr: Input should be a finite number"),
    (["controller", "sigma0"], float("inf"), "controller.sigma0: Input should be a finite number"),
    (["vae", "lr"], "1e-3", "write 1.0e-3"),
    (["env", "fast_render"], 1, "env.fast_render: Input should be a valid boolean"),
    (["seed"], "0", "seed: Input should be a valid integer, got the text '0'"),
]


def test_yaml_yes_is_not_an_integer(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(SMOKE).replace("episodes: 2", "episodes: yes"))
    with pytest.raises(ParamsError, match="evaluate.episodes: Input should be a valid integer, got true"):
        load_params(f)


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


def test_iterations_need_the_dream(tmp_path: Path) -> None:
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(_with(["iterations"], {"1": "0"})))  # smoke trains C in the real env
    with pytest.raises(ParamsError, match="iterations need controller.mode: dream"):
        load_params(f)
    data = _with(["iterations"], {"1": "0", "2": "1"})
    data["controller"]["mode"] = "dream"
    f.write_text(yaml.safe_dump(data))
    assert load_params(f).iterations == {"1": "0", "2": "1"}


PROFILES = ["params.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "params").glob("*.yaml"))]


def _keys(tree: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out |= _keys(value, f"{name}.") if isinstance(value, dict) else {name}
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_is_complete_and_valid(profile: str) -> None:
    raw = yaml.safe_load((REPO / profile).read_text())
    params = load_params(REPO / profile)
    # every key of the schema is written in the file, so DVC sees every value a stage uses
    assert _keys(raw) == _keys(params.model_dump())


@pytest.mark.parametrize("missing", ["seed", "controller.sigma0", "vae.lr", "env.crop_rows", "runner.ray_address"])
def test_a_partial_profile_names_the_missing_key(tmp_path: Path, missing: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(SMOKE))
    *parents, last = missing.split(".")
    node = data
    for key in parents:
        node = node[key]
    del node[last]
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=f"{missing}: missing key"):
        load_params(f)


@pytest.mark.parametrize("text", ["", "# nothing here\n", "{}\n"])
def test_an_empty_params_file_is_an_error(tmp_path: Path, text: str) -> None:
    f = tmp_path / "params.yaml"
    f.write_text(text)
    with pytest.raises(ParamsError, match="empty; every key is required"):
        load_params(f)


STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("stage", STAGES)
def test_stage_cli_rejects_bad_params_and_writes_nothing(tmp_path: Path, stage: str) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with(["controller", "sigma0"], -1.0)))
    proc = subprocess.run([sys.executable, *stage_args(stage)], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "controller.sigma0" in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_cli_names_a_missing_path_and_writes_nothing(tmp_path: Path, stage: str) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(SMOKE))
    args = stage_args(stage)
    i = args.index("--metrics")
    proc = subprocess.run([sys.executable, *args[:i], *args[i + 2:]], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 2
    flow = args[2]  # foreach groups run an existing flow: encode_iter runs `encode`
    assert proc.stderr.startswith(f"error: {flow}: missing --metrics; usage: python -m flows {flow}"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_exploration_noise_decays_per_iteration() -> None:
    it = load_params(REPO / "params" / "dream.yaml").iterate
    assert it.noise_at(1) == it.noise and it.noise_at(3) == pytest.approx(it.noise * it.noise_decay**2)


def test_on_road_starts_are_carracing_only(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "params" / "doom_smoke.yaml").read_text())
    data["mdrnn"]["members"] = 1  # an ensemble dreams from first frames only
    data["dream"]["start"] = "on_road"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match="on_road reads CarRacing's new-tile reward"):
        load_params(path)
    data["dream"]["start"] = "burned_in"
    path.write_text(yaml.safe_dump(data))
    assert load_params(path).dream.start == "burned_in"


@pytest.mark.parametrize("key, value, error", [
    ("members", 2, "mdrnn.members > 1 dreams from first frames only"),
    ("age_scale", 1000.0, "mdrnn.age_scale: a dream's steps are aged from its start"),  # a burned-in start is older
    ("age_scale", -1.0, "mdrnn.age_scale: Input should be greater than 0"),
])
def test_ensembles_and_age_input_dream_from_first_frames_only(tmp_path: Path, key: str, value: float,
                                                              error: str) -> None:
    data = yaml.safe_load((REPO / "params" / "doom_smoke.yaml").read_text())
    data["mdrnn"][key], data["dream"]["start"] = value, "burned_in"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=error):
        load_params(path)
