"""The real pipeline on the smoke profile: DVC runs each stage's Prefect flow, MLflow tracks it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from smoke_story import STAGES, smoke_story


@pytest.mark.e2e
def test_dvc_repro_runs_all_then_nothing_then_only_what_changed(project: Path, prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    project = story.project
    assert story.first.ran == STAGES

    ev = story.first.evaluate
    assert {"mean", "std", "min", "max", "episodes", "scores"} <= set(ev)
    assert ev["episodes"] == len(ev["scores"]) == 2
    assert len(list((project / "data" / "rollouts").glob("rollout_*.npz"))) == 4
    for model in ("vae", "mdrnn", "controller"):
        assert (project / "models" / f"{model}.safetensors").stat().st_size > 0
    assert json.loads((project / "metrics" / "controller.json").read_text())["params"] == 867
    assert story.first.runs == sorted(STAGES)

    assert story.noop.ran == []

    # params.yaml: controller.sigma0 0.1 -> 0.2
    assert story.changed.ran == ["controller", "evaluate"]
