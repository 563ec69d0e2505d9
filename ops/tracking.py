"""MLflow tracking for the stage flows: one run per stage, embedded sqlite store by default."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from typing import Any, Iterator

from ops.names import EXPERIMENT, artifact_location, tracking_uri


def _flatten(prefix: str, obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: obj}


def git_commit() -> str:
    """The current git commit, or 'unknown' outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@contextmanager
def stage_run(stage: str, params: dict[str, Any]) -> Iterator[Any]:
    """Open an MLflow run for `stage`, log its params, and yield the mlflow module."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location())
    mlflow.set_experiment(EXPERIMENT)
    tags = {"stage": stage, "git_commit": git_commit()}
    if os.environ.get("WM_PIPELINE_RUN"):
        tags["pipeline_run"] = os.environ["WM_PIPELINE_RUN"]
    try:
        from prefect.runtime import flow_run

        tags["prefect_flow_run_id"] = str(flow_run.id)
    except Exception:  # tracking must not fail a stage just because there is no flow context
        pass
    with mlflow.start_run(run_name=stage, tags=tags):
        mlflow.log_params(_flatten("", params))
        yield mlflow


def log_history(mlflow: Any, history: list[dict[str, float]], step_key: str) -> None:
    """Log a per-epoch or per-generation history as MLflow metrics."""
    for row in history:
        step = int(row[step_key])
        mlflow.log_metrics({k: float(v) for k, v in row.items() if k != step_key}, step=step)
