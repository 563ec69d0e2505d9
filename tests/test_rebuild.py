"""Scheduled rebuilds (ops/rebuild.py): the served deployment on a real Prefect server, and the rebuild lock."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from conftest import subprocess_env
from smoke_story import smoke_story

ARTIFACT = "wm-rebuild"


def _wait(what: str, check: Callable[[], Any], proc: subprocess.Popen, log: Path, timeout: float) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` if the serve process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode} while waiting for {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def _deployment(client: Any, name: str) -> Any:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def _final(client: Any, run_id: Any) -> Any:
    run = client.read_flow_run(run_id)
    return run if run.state is not None and run.state.is_final() else None


def _default_sigint() -> None:
    """Let the child take Ctrl-C even when pytest runs as a background job, which inherits SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen) -> int:
    """Ctrl-C the serve process, as a person would, and wait for it to exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@pytest.mark.e2e
def test_served_rebuild_runs_only_what_changed_one_at_a_time(project: Path, prefect_server: str) -> None:
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ops.rebuild import rebuild_lock

    root = smoke_story(project, prefect_server).project  # built, and up to date after the story's last step
    params = yaml.safe_load((root / "params.yaml").read_text())
    # an evaluation the story never ran (its 2 episodes would come back from DVC's run cache): only evaluate reruns
    params["evaluate"]["episodes"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    schedule = params["schedule"]
    name = f"rebuild/{schedule['deployment']}"
    story_ml = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    agents_before = {v.version for v in story_ml.search_model_versions("name = 'wm-agent'")}

    log = root.parent / "serve.log"
    env = subprocess_env(PREFECT_API_URL=prefect_server, PREFECT_RUNNER_POLL_FREQUENCY="1", PYTHONPATH="")
    with open(log, "w") as out:
        serve = subprocess.Popen([sys.executable, "-m", "ops.rebuild", "serve"], cwd=root, env=env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_default_sigint)
    try:
        with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
            deployment = _wait("the deployment", lambda: _deployment(client, name), serve, log, 60)
            assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [
                (schedule["cron"], schedule["timezone"], True)]
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.concurrency_options.collision_strategy.value == "CANCEL_NEW"

            # two runs asked for at once: one rebuilds, the other is cancelled by the concurrency limit
            asked = [run_deployment(name, timeout=0) for _ in range(2)]
            done = [_wait(f"flow run {r.id}", lambda r=r: _final(client, r.id), serve, log, 240) for r in asked]
            by_state = {r.state.type.value: r for r in done}
            assert set(by_state) == {"COMPLETED", "CANCELLED"}, [(r.state.type, r.state.message) for r in done]
            assert "concurrency limit" in by_state["CANCELLED"].state.message
            run = by_state["COMPLETED"]

            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            assert [a.key for a in artifacts] == [ARTIFACT]
            report = artifacts[0].data

            # while another rebuild holds the lock, a served run fails at once with who holds it
            with rebuild_lock(root):
                refused = run_deployment(name, timeout=0)
                refused = _wait("the refused run", lambda: _final(client, refused.id), serve, log, 60)
            assert refused.state.is_failed()
            assert f"another rebuild is already running (pid {os.getpid()}, since" in refused.state.message
            assert ARTIFACT not in [a.key for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[refused.id])))]
    finally:
        code = _stop(serve)
    assert code == 0, log.read_text()[-3000:]

    # it reran exactly what the change touched, and the report says so with the scores
    ran = re.search(r"\*\*Stages run:\*\* (.*)", report).group(1)
    assert ran == "`evaluate`"
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ml = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tagged = ml.search_runs([e.experiment_id for e in ml.search_experiments()], f"tags.pipeline_run = '{run.id}'")
    assert [r.info.run_name for r in tagged] == ["evaluate"]
    # the same V, M and C as the story's last agent: it is not registered twice, and the report says so
    assert "## New model versions\n\nnone\n" in report
    assert {v.version for v in ml.search_model_versions("name = 'wm-agent'")} == agents_before
    ev = json.loads((root / "metrics" / "evaluate.json").read_text())
    assert ev["episodes"] == 3
    assert f"**{ev['mean']:.1f} ± {ev['std']:.1f}** over 3 episodes" in report
    champion = ml.get_registered_model("wm-agent").aliases["champion"]
    champion_mean = float(ml.get_model_version("wm-agent", champion).tags["eval.mean"])
    assert f"`wm-agent@champion`: version {champion}, eval.mean {champion_mean:.1f}" in report

    # stopping the server of the schedule pauses it: no nightly runs pile up with nobody to run them
    with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(name).paused


@pytest.mark.e2e
def test_rebuild_refused_while_another_holds_the_lock(project: Path, prefect_server: str) -> None:
    from ops.rebuild import rebuild_lock

    env = subprocess_env(PREFECT_API_URL=prefect_server, PYTHONPATH="")
    with rebuild_lock(project):
        proc = subprocess.run([sys.executable, "-m", "ops.rebuild", "run"], cwd=project, env=env,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"error: another rebuild is already running (pid {os.getpid()}, since" in proc.stderr
    assert "try again later" in proc.stderr
    # the project was never built, so anything that ran would have left something behind
    assert sorted(p.name for p in project.iterdir()) == sorted(
        [".git", ".gitignore", ".dvc", ".dvcignore", ".wm-rebuild.lock", "dvc.yaml", "flows", "ops", "params",
         "params.yaml", "reference", "wm"])
    assert sorted(p.name for p in (project / ".dvc").iterdir()) == ["config"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("cron", "0 3 * *", "schedule.cron: '0 3 \\* \\*' is not a 5-field cron expression"),
    ("cron", "nightly", "schedule.cron: 'nightly' is not a 5-field cron expression"),
    ("timezone", "Mars/Olympus", "schedule.timezone: 'Mars/Olympus' is not an IANA time zone"),
    ("deployment", "nightly build", "schedule.deployment"),
])
def test_schedule_is_validated_up_front(tmp_path: Path, key: str, value: str, message: str) -> None:
    from conftest import REPO
    from wm.config import ParamsError, load_params

    params = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())
    params["schedule"][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=message):
        load_params(tmp_path / "params.yaml")


def test_no_stage_depends_on_the_schedule() -> None:
    from conftest import REPO

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert not [name for name, stage in stages.items() if "schedule" in str(stage.get("params", []))]


def test_the_report_lists_new_versions_with_the_agent_s_score() -> None:
    from ops.rebuild import Registry, new_versions, report_markdown

    before = Registry(versions={"wm-agent": {"1": {"eval.mean": "12.0"}}, "wm-controller": {"1": {}}}, champion="1")
    after = Registry(versions={"wm-agent": {"1": {"eval.mean": "12.0"}, "2": {"eval.mean": "30.5", "promoted": "true"}},
                               "wm-controller": {"1": {}, "2": {}}, "wm-vae": {"1": {}}}, champion="2")
    new = new_versions(before, after)
    assert new == [{"model": "wm-vae", "version": "1"}, {"model": "wm-controller", "version": "2"},
                   {"model": "wm-agent", "version": "2", "eval_mean": 30.5, "promoted": True}]
    md = report_markdown({"pipeline_run": "r1", "ran": ["controller", "evaluate"], "restored": [], "new_versions": new,
                          "scores": {"mean": 30.5, "std": 2.0, "episodes": 3},
                          "champion": {"version": "2", "eval_mean": 30.5}})
    assert "**Stages run:** `controller`, `evaluate`" in md
    assert "| wm-controller | 2 |  |  |" in md and "| wm-agent | 2 | 30.5 | yes |" in md
    assert "**30.5 ± 2.0** over 3 episodes" in md and "`wm-agent@champion`: version 2, eval.mean 30.5" in md
    assert "## New model versions\n\nnone" in report_markdown({"pipeline_run": "r2", "ran": [], "restored": [],
                                                                 "new_versions": [], "scores": None, "champion": None})
