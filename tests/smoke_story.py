"""One smoke pipeline story shared by the e2e test files: run it once per session, snapshot the state after each step.

Steps: a full `dvc repro`; an unchanged `dvc repro`; `dvc repro --force` of evaluate (the same agent again);
a new dream temperature while C trains in the real env (only the `dream` diagnostics rerun); then the controller
moves into the dream (controller.mode: dream, and sigma0 changes) and `dvc repro` again. Then the iterative
procedure: one iteration (`iterated`: only iteration 1 runs), and a change to its CMA-ES, iterate.sigma0
(`reiterated`: iteration 1's controller onwards reruns, nothing of iteration 0 and not its exploration or M).
Every stage run costs about 15 s of imports and tracking on 2 cores, so the story builds one iteration, not two.
The story ends with `iterations: {}` written back (not built), so later tests rebuild iteration 0 only.
Each snapshot holds what the step ran, the finished MLflow runs, dvc.lock, metrics/controller.json,
metrics/dream.json, metrics/evaluate.json and the model registry (versions with tags, aliases).
Later tests may build on the project (test_rebuild changes evaluate.episodes and rebuilds through the
served deployment): the snapshots keep the story's state, while the live registry may have moved on.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conftest import subprocess_env

STAGES = ["collect", "vae", "encode", "mdrnn", "controller", "dream", "evaluate"]
MODELS = {"wm-vae": "vae", "wm-mdrnn": "mdrnn", "wm-controller": "controller", "wm-agent": "evaluate"}


@dataclass
class Snapshot:
    """The project's state after one step of the story."""

    ran: list[str]
    seconds: float
    runs: list[str]
    lock: dict[str, Any]
    controller: dict[str, Any]
    dream: dict[str, Any]
    evaluate: dict[str, Any]
    versions: dict[str, dict[str, dict[str, str]]]  # model -> version -> tags
    aliases: dict[str, dict[str, str]]  # model -> alias -> version


@dataclass
class Story:
    """The shared project and its five snapshots."""

    project: Path
    api_url: str
    first: Snapshot
    noop: Snapshot
    forced: Snapshot
    tau: Snapshot
    changed: Snapshot
    iterated: Snapshot
    reiterated: Snapshot
    plots: dict[str, Any]  # `dvc plots show --json` with iterations 0 and 1 built

    @property
    def tracking_uri(self) -> str:
        """The project's MLflow store."""
        return f"sqlite:///{self.project / 'mlflow.db'}"


def dvc_repro(project: Path, api_url: str, *args: str) -> list[str]:
    """Run `dvc repro [args]` and return the stages it ran, in order."""
    proc = subprocess.run(["dvc", "repro", *args], cwd=project, capture_output=True, text=True, timeout=600,
                          env=subprocess_env(PREFECT_API_URL=api_url, PYTHONPATH=""))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return re.findall(r"Running stage '([\w@]+)'", proc.stdout + proc.stderr)


def snapshot(project: Path, ran: list[str], seconds: float) -> Snapshot:
    """Read the runs, dvc.lock, evaluate metrics and the registry as they are now."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "attributes.status = 'FINISHED'")
    versions: dict[str, dict[str, dict[str, str]]] = {}
    aliases: dict[str, dict[str, str]] = {}
    for rm in client.search_registered_models():
        versions[rm.name] = {str(v.version): dict(v.tags)
                             for v in client.search_model_versions(f"name = '{rm.name}'")}
        aliases[rm.name] = {alias: str(v) for alias, v in rm.aliases.items()}
    return Snapshot(ran, seconds, sorted(r.info.run_name for r in runs), yaml.safe_load((project / "dvc.lock").read_text()),
                    json.loads((project / "metrics" / "controller.json").read_text()),
                    json.loads((project / "metrics" / "dream.json").read_text()),
                    json.loads((project / "metrics" / "evaluate.json").read_text()), versions, aliases)


def step(project: Path, api_url: str, *args: str) -> Snapshot:
    """One `dvc repro [args]`, timed, then a snapshot."""
    t0 = time.perf_counter()
    ran = dvc_repro(project, api_url, *args)
    return snapshot(project, ran, time.perf_counter() - t0)


def _run(project: Path, api_url: str) -> Story:
    first = step(project, api_url)
    noop = step(project, api_url)
    forced = step(project, api_url, "--force", "--single-item", "evaluate")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["dream"]["temperature"] = 1.3
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    tau = step(project, api_url)
    params["controller"]["sigma0"] = 0.2
    params["controller"]["mode"] = "dream"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    changed = step(project, api_url)
    params["iterations"] = {"1": "0"}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    iterated = step(project, api_url)
    params["iterate"]["sigma0"] *= 2
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    reiterated = step(project, api_url)
    proc = subprocess.run(["dvc", "plots", "show", "--json"], cwd=project, capture_output=True, text=True,
                          timeout=300, env=subprocess_env(PYTHONPATH=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = json.loads(proc.stdout)
    plots = shown.get("data", shown)  # DVC 3 nests the plots, and any errors, under "data"
    params["iterations"] = {}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    story = Story(project, api_url, first, noop, forced, tau, changed, iterated, reiterated, plots)
    print("smoke story seconds: " + ", ".join(f"{k} {getattr(story, k).seconds:.1f}" for k in
                                             ("first", "noop", "forced", "tau", "changed", "iterated",
                                              "reiterated")))
    return story


_CACHE: dict[str, Story | BaseException] = {}


def smoke_story(project: Path, api_url: str) -> Story:
    """Run the story in `project` the first time; later callers get the same story (or the same failure)."""
    if "story" not in _CACHE:
        try:
            _CACHE["story"] = _run(project, api_url)
        except BaseException as exc:
            _CACHE["story"] = exc
            raise
    result = _CACHE["story"]
    if isinstance(result, BaseException):
        raise RuntimeError("the shared smoke story failed in an earlier test") from result
    return result
