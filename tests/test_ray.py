"""Ray as a runner: the smoke story's first `dvc repro` runs the whole pipeline on a real one-node Ray cluster
(`ray start --head` on 127.0.0.1, tests/smoke_story.py); here we check that Ray ran the tasks and changed nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import smoke_params
from smoke_story import STAGES, smoke_story
from wm.collect import collect_rollout
from wm.config import CarRacingConfig, CollectConfig
from wm.rollouts import rollout_path


@pytest.mark.e2e
def test_the_smoke_pipeline_runs_on_a_ray_cluster_and_writes_the_same_rollouts(
        project: Path, prefect_server: str, tmp_path: Path) -> None:
    pytest.importorskip("prefect_ray")
    story = smoke_story(project, prefect_server)
    assert sorted(story.first.ran) == sorted(STAGES)
    # Ray's prefix on worker logs: rollouts, real-env CMA-ES episodes and evaluation episodes ran in its workers
    for task in ("collect_one", "real_episode", "play_one"):
        assert f"({task} pid=" in story.ray_log, task
    params = smoke_params()
    env, cfg = CarRacingConfig(**params["env"]), CollectConfig(**params["collect"])
    for i in range(cfg.rollouts):  # the same bytes as collecting here, one rollout at a time
        collect_rollout(env, cfg, params["seed"], i, tmp_path / "local")
        assert (rollout_path(story.project / "data" / "rollouts", i).read_bytes()
                == rollout_path(tmp_path / "local", i).read_bytes())
