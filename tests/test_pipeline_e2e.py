"""The real pipeline on the smoke profile: DVC runs each stage's Prefect flow, MLflow tracks it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from smoke_story import STAGES, smoke_story


@pytest.mark.e2e
def test_dvc_repro_runs_all_then_nothing_then_only_what_changed(project: Path, prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    project = story.project
    # DVC orders stages topologically: dream and evaluate both follow controller
    assert story.first.ran[:5] == STAGES[:5] and sorted(story.first.ran) == sorted(STAGES)

    ev = story.first.evaluate
    assert {"mean", "std", "min", "max", "episodes", "scores"} <= set(ev)
    assert ev["episodes"] == len(ev["scores"]) == 2
    assert len(list((project / "data" / "rollouts").glob("rollout_*.npz"))) == 4
    for model in ("vae", "iter0/mdrnn", "iter0/controller"):
        assert (project / "models" / f"{model}.safetensors").stat().st_size > 0
    assert json.loads((project / "metrics" / "controller.json").read_text())["params"] == 867
    assert story.first.runs == sorted(STAGES)

    assert story.noop.ran == []

    # dream.temperature 1.0 -> 1.3 while C trains in the real env: only the dream diagnostics rerun, no CMA-ES
    assert story.tau.ran == ["dream"]
    assert story.tau.dream["temperature"] == 1.3 and story.tau.controller == story.first.controller

    # params.yaml: controller.sigma0 0.1 -> 0.2 and controller.mode real -> dream
    assert story.changed.ran[0] == "controller" and sorted(story.changed.ran) == ["controller", "dream", "evaluate"]


@pytest.mark.e2e
def test_dream_mode_trains_in_the_dream_and_scores_in_the_real_env(project: Path, prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    real, dream = story.first, story.changed
    assert real.controller["mode"] == "real" and dream.controller["mode"] == "dream"
    # in dream mode the check score is a dream score; the dream stage records the chosen C's dream return in
    # both modes, on the same check seeds
    assert dream.controller["best_check_mean_return"] == pytest.approx(dream.dream["dream_return"])
    assert all(math.isfinite(s.dream["dream_return"]) for s in (real, dream))
    # evaluate reran on the dream-trained C, in the real env, on the same held-out seeds
    assert dream.evaluate["seeds"] == real.evaluate["seeds"]
    assert dream.lock["stages"]["evaluate"] != real.lock["stages"]["evaluate"]

    gif = Image.open(story.project / "videos" / "iter0" / "dream.gif")
    assert gif.format == "GIF" and gif.size == (64, 64) and gif.n_frames >= 2
    side = Image.open(story.project / "videos" / "iter0" / "real_vs_dream.gif")
    assert side.format == "GIF" and side.size == (2 * 130, 2 * 64) and side.n_frames >= 2

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=story.tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "attributes.run_name = 'dream'", order_by=["attributes.start_time DESC"])
    latest = runs[0]
    assert latest.data.params["controller.mode"] == "dream"
    assert sorted(a.path for a in client.list_artifacts(latest.info.run_id, "dream")) == [
        "dream/dream.gif", "dream/real_vs_dream.gif", "dream/rewards.json", "dream/vae_recon.png"]
