"""Ray as a runner: the smoke story's first `dvc repro` runs every stage's Prefect tasks on a real local Ray
cluster on 127.0.0.1 (`ray start --head`, see tests/smoke_story.py), and its data are what the process runner writes."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import smoke_params
from smoke_story import STAGES, smoke_story
from wm.collect import collect_rollout
from wm.config import CarRacingConfig, CollectConfig
from wm.rollouts import rollout_path

pytest.importorskip("prefect_ray")


def test_the_smoke_pipeline_runs_on_a_ray_cluster_and_writes_the_same_rollouts(project: Path, tmp_path: Path,
                                                                                prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    assert sorted(story.first.ran) == sorted(STAGES)
    for task in ("collect_one", "real_episode", "play_one"):  # Ray's prefix: these ran in the cluster's workers
        assert f"({task} pid=" in story.ray_log, task
    params = smoke_params()
    env, cfg = CarRacingConfig(**params["env"]), CollectConfig(**params["collect"])
    for i in range(cfg.rollouts):  # the same bytes as collecting here, one rollout at a time
        collect_rollout(env, cfg, params["seed"], i, tmp_path / "local")
        ray_made = rollout_path(story.project / "data" / "rollouts", i).read_bytes()
        assert ray_made == rollout_path(tmp_path / "local", i).read_bytes()
