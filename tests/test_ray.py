"""Ray as a runner: a real local Ray cluster on 127.0.0.1 (`ray start --head`) runs a stage's Prefect tasks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from conftest import BIN, REPO, free_port, smoke_params, subprocess_env
from wm.collect import collect_rollout
from wm.config import CollectConfig, CarRacingConfig
from wm.rollouts import rollout_path


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


def test_collect_on_a_ray_cluster_writes_the_same_rollouts(tmp_path: Path, ray_cluster: str,
                                                           prefect_server: str) -> None:
    params = smoke_params()
    params["runner"].update(kind="ray", ray_address=ray_cluster)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, "-m", "flows", "collect", "--out", "data/rollouts", "--metrics",
                           "metrics/collect.json"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=subprocess_env(PYTHONPATH=str(REPO), PREFECT_API_URL=prefect_server,
                                             RAY_USAGE_STATS_ENABLED="0"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "(collect_one pid=" in out  # Ray's prefix: the tasks ran in the cluster's worker processes
    env, cfg = CarRacingConfig(**params["env"]), CollectConfig(**params["collect"])
    for i in range(cfg.rollouts):  # the same bytes as collecting here, one rollout at a time
        collect_rollout(env, cfg, params["seed"], i, tmp_path / "local")
        assert rollout_path(tmp_path / "data" / "rollouts", i).read_bytes() == rollout_path(tmp_path / "local", i).read_bytes()
