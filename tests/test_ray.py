"""Ray as a runner: a real local Ray cluster on 127.0.0.1 (`ray start --head`) runs the smoke pipeline's Prefect
tasks."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import torch
import yaml

from conftest import BIN, free_port, make_project, subprocess_env
from wm.agent import load_agent, run_episode
from wm.collect import collect_rollout
from wm.config import CollectConfig, CarRacingConfig
from wm.rollouts import rollout_path
from wm.seeds import eval_seeds


@pytest.fixture()
def ray_cluster(tmp_path: Path) -> Iterator[str]:
    """Start a one-node Ray cluster as a user would; yield its address; stop it."""
    pytest.importorskip("prefect_ray")
    port = free_port()
    env = subprocess_env(RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                           "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


def _repro(project: Path, api_url: str) -> tuple[list[str], str]:
    proc = subprocess.run(["dvc", "repro"], cwd=project, capture_output=True, text=True, timeout=540,
                          env=subprocess_env(PREFECT_API_URL=api_url, PYTHONPATH="", RAY_USAGE_STATS_ENABLED="0"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return re.findall(r"Running stage '([\w@]+)'", out), out


@pytest.mark.e2e
def test_smoke_pipeline_on_a_ray_cluster(tmp_path: Path, ray_cluster: str, prefect_server: str) -> None:
    """The whole smoke pipeline with runner.kind: ray on a real cluster gives the rollouts and scores of local runs,
    and an unchanged repro runs nothing."""
    project = make_project(tmp_path / "proj")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["runner"].update(kind="ray", ray_address=ray_cluster, episodes_per_task=3)  # 4 candidates: tasks of 3 and 1
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    ran, out = _repro(project, prefect_server)
    assert sorted(ran) == sorted(["collect", "vae", "encode", "mdrnn", "controller", "dream", "evaluate"])
    for task in ("collect_one", "real_episodes", "play_episodes"):  # Ray's prefix: each kind of task ran in its workers
        assert f"({task} pid=" in out, task
    env, cfg = CarRacingConfig(**params["env"]), CollectConfig(**params["collect"])
    for i in range(cfg.rollouts):  # the rollouts are the bytes this process writes, one rollout at a time
        collect_rollout(env, cfg, params["seed"], i, tmp_path / "local")
        local = rollout_path(tmp_path / "local", i).read_bytes()
        assert rollout_path(project / "data" / "rollouts", i).read_bytes() == local
    # the scores computed in Ray's workers are the ones this process computes for the same agent and seeds
    ev = json.loads((project / "metrics" / "evaluate.json").read_text())
    models = project / "models"
    agent = load_agent(models / "vae.safetensors", models / "iter0" / "mdrnn.safetensors",
                       models / "iter0" / "controller.safetensors")
    seeds, threads = eval_seeds(params["evaluate"]["episodes"]), torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers (flows/evaluate.py)
    try:
        scores = [run_episode(agent, env, s, params["evaluate"]["max_steps"])["return"] for s in seeds]
    finally:
        torch.set_num_threads(threads)
    assert ev["seeds"] == seeds and ev["scores"] == pytest.approx(scores)
    assert _repro(project, prefect_server)[0] == []
