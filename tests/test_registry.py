"""The MLflow model registry, against the real smoke pipeline (shared with test_pipeline_e2e via smoke_story)."""
from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from smoke_story import MODELS, Snapshot, Story, smoke_story


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _numbers(snap: Snapshot) -> dict[str, list[str]]:
    return {name: sorted(versions, key=int) for name, versions in snap.versions.items()}


def _assert_lineage(story: Story, snap: Snapshot, name: str, version: str) -> None:
    """The version's tags match the project's git commit, dvc.lock and a real Prefect flow run of its stage."""
    tags, stage = snap.versions[name][version], MODELS[name]
    lock = snap.lock["stages"][stage]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=story.project, capture_output=True, text=True,
                          check=True).stdout.strip()
    assert tags["git_commit"] == head
    assert tags["dvc.stage"] == stage
    assert json.loads(tags["dvc.deps"]) == {d["path"]: d["md5"] for d in lock["deps"]}
    assert json.loads(tags["dvc.outs"]) == {o["path"]: o["md5"] for o in lock.get("outs", [])}
    assert json.loads(tags["dvc.params"]) == lock.get("params", {}).get("params.yaml", {})
    flow_run = _get(f"{story.api_url}/flow_runs/{tags['prefect_flow_run_id']}")
    assert _get(f"{story.api_url}/flows/{flow_run['flow_id']}")["name"] == stage
    assert len(tags["content_md5"]) == 32


@pytest.mark.e2e
def test_registry_lineage_no_duplicates_and_honest_promotion(project: Path, prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    first, noop, forced, changed = story.first, story.noop, story.forced, story.changed

    # the first repro registers version 1 of all four models, each with its lineage
    assert _numbers(first) == {name: ["1"] for name in MODELS}
    for name in MODELS:
        _assert_lineage(story, first, name, "1")
    agent = first.versions["wm-agent"]["1"]
    assert {agent[f"bundles.{n}"] for n in ("wm-vae", "wm-mdrnn", "wm-controller")} == {"1"}
    assert float(agent["eval.mean"]) == first.evaluate["mean"]
    assert (agent["eval.champion_version"], agent["eval.champion_mean"], agent["promoted"]) == ("none", "none", "true")
    assert first.aliases["wm-agent"] == {"champion": "1"}

    # unchanged repro, then a forced evaluate that logs the same agent again: nothing new is registered
    assert noop.ran == [] and noop.versions == first.versions and noop.aliases == first.aliases
    assert forced.ran == ["evaluate"]
    assert forced.versions == first.versions and forced.aliases == first.aliases

    # a new controller: one new wm-controller and one new wm-agent version, promoted only if it scores as well
    assert sorted(changed.ran) == ["controller", "dream", "evaluate"]
    assert _numbers(changed) == {"wm-vae": ["1"], "wm-mdrnn": ["1"], "wm-controller": ["1", "2"],
                                 "wm-agent": ["1", "2"]}
    for name in ("wm-controller", "wm-agent"):
        _assert_lineage(story, changed, name, "2")
    new = changed.versions["wm-agent"]["2"]
    assert (new["bundles.wm-vae"], new["bundles.wm-mdrnn"], new["bundles.wm-controller"]) == ("1", "1", "2")
    old_mean, new_mean = first.evaluate["mean"], changed.evaluate["mean"]
    assert float(new["eval.mean"]) == new_mean
    assert (new["eval.champion_version"], float(new["eval.champion_mean"])) == ("1", old_mean)
    promoted = new_mean >= old_mean
    assert new["promoted"] == str(promoted).lower()
    assert changed.aliases["wm-agent"] == {"champion": "2" if promoted else "1"}


@pytest.mark.e2e
def test_champion_pyfunc_plays_stock_carracing(project: Path, prefect_server: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import gymnasium as gym
    import mlflow
    from mlflow import MlflowClient

    from wm.agent import load_agent
    from wm.envs.carracing import preprocess_frame

    story = smoke_story(project, prefect_server)
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # loading must not need pickle
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(story.tracking_uri)
    try:
        model = mlflow.pyfunc.load_model("models:/wm-agent@champion")
        tags = MlflowClient().get_model_version_by_alias("wm-agent", "champion").tags
        # a reference agent built from the registered component versions the champion says it bundles
        parts = [mlflow.artifacts.download_artifacts(f"models:/{n}/{tags[f'bundles.{n}']}")
                 for n in ("wm-vae", "wm-mdrnn", "wm-controller")]
    finally:
        mlflow.set_tracking_uri(previous)
    reference = load_agent(*(next(Path(p).glob("*.safetensors")) for p in parts))

    env = gym.make("CarRacing-v3")
    try:
        obs, _ = env.reset(seed=123)
        first_obs = obs.copy()
        reference.reset()
        for t in range(50):
            action = model.predict(obs[None], params={"reset": t == 0})
            assert action.shape == (1, 3) and action.dtype == np.float32
            assert env.action_space.contains(action[0])
            np.testing.assert_allclose(action[0], reference.act(preprocess_frame(obs)), atol=1e-5)
            obs, _, terminated, truncated, _ = env.step(action[0])
            assert not (terminated or truncated)
        # `reset` starts a new episode: the first action comes back
        reference.reset()
        again = model.predict(first_obs[None], params={"reset": True})[0]
        np.testing.assert_allclose(again, reference.act(preprocess_frame(first_obs)), atol=1e-5)
    finally:
        env.close()


@pytest.mark.e2e
def test_every_registered_model_and_version_is_described(project: Path, prefect_server: str) -> None:
    from mlflow import MlflowClient

    story = smoke_story(project, prefect_server)
    client = MlflowClient(tracking_uri=story.tracking_uri, registry_uri=story.tracking_uri)
    models = client.search_registered_models()
    assert sorted(m.name for m in models) == sorted(MODELS)
    for model in models:
        assert model.description and "Registered by the" in model.description, model.name
        for v in client.search_model_versions(f"name = '{model.name}'"):
            assert v.description, (model.name, v.version)
    described = {str(v.version): v.description for v in client.search_model_versions("name = 'wm-agent'")}
    mean = story.first.evaluate["mean"]
    assert f"Mean return {mean:.1f}" in described["1"] and "vae v1" in described["1"]
    vae = client.get_model_version("wm-vae", "1").description
    assert "4 brownian rollouts" in vae and "seed 0" in vae
