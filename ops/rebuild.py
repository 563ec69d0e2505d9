"""Scheduled rebuilds: one Prefect flow runs `dvc repro` in the project and reports what it rebuilt.

    python -m ops.rebuild run   [--params params.yaml]   rebuild now (a temporary Prefect server if none is set)
    python -m ops.rebuild serve [--params params.yaml]   serve rebuild/<schedule.deployment> on schedule.cron

DVC alone decides what reruns, exactly as a manual `dvc repro`; the stages read params.yaml, and `--params`
only picks the `schedule:` section. One rebuild at a time: an exclusive file lock (.wm-rebuild.lock) refuses a
second one, and the served deployment also has a Prefect concurrency limit of 1 that cancels a run asked for
while another is running. Each rebuild publishes the markdown artifact `wm-rebuild`.
"""
from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from flows.runtime import prefect_api
from ops.names import AGENT, CHAMPION, MODELS, tracking_uri
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from wm.config import ParamsError, ScheduleConfig, load_params

LOCK_FILE = ".wm-rebuild.lock"
ARTIFACT_KEY = "wm-rebuild"
EVALUATE_METRICS = "metrics/evaluate.json"
RAN = re.compile(r"Running stage '([^']+)'")
RESTORED = re.compile(r"Stage '([^']+)' is cached - skipping run")


class RebuildBusy(RuntimeError):
    """Another rebuild holds the lock."""


class RebuildFailed(RuntimeError):
    """`dvc repro` exited non-zero."""


@contextmanager
def rebuild_lock(project: Path) -> Iterator[None]:
    """Hold the project's exclusive rebuild lock, or raise RebuildBusy at once naming the holder."""
    # "a+" creates the file without truncating it: while held, it says who holds it
    with open(project / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "holder unknown"
            raise RebuildBusy(f"another rebuild is already running ({holder}); try again later") from None
        f.truncate(0)
        f.write(f"pid {os.getpid()}, since {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n")
        f.flush()
        yield  # the lock goes with the file descriptor, also when the process dies


@dataclass
class Registry:
    """The model registry at one moment: every version's tags, and the wm-agent version that is @champion."""

    versions: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # model -> version -> tags
    champion: str | None = None


def read_registry(uri: str) -> Registry:
    """Every registered version with its tags; an empty Registry if the store does not exist yet."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return Registry()  # nothing built yet: reading would create the database
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    reg = Registry()
    for model in client.search_registered_models():
        reg.versions[model.name] = {str(v.version): dict(v.tags)
                                    for v in client.search_model_versions(f"name = '{model.name}'")}
        if model.name == AGENT and CHAMPION in model.aliases:
            reg.champion = str(model.aliases[CHAMPION])
    return reg


def new_versions(before: Registry, after: Registry) -> list[dict[str, Any]]:
    """Versions in `after` that were not in `before`; wm-agent ones with their score and promotion."""
    out = []
    order = sorted(after.versions, key=lambda name: (MODELS.index(name) if name in MODELS else len(MODELS), name))
    for name in order:
        versions = after.versions[name]
        for number in sorted(set(versions) - set(before.versions.get(name, {})), key=int):
            row: dict[str, Any] = {"model": name, "version": number}
            if name == AGENT:
                tags = versions[number]
                row["eval_mean"] = float(tags["eval.mean"]) if "eval.mean" in tags else None
                row["promoted"] = tags.get("promoted") == "true"
            out.append(row)
    return out


def run_dvc_repro(project: Path, pipeline_run: str) -> str:
    """Run `dvc repro` in `project`, streaming its output to the flow's log; return the output, raise if it fails."""
    from prefect.settings import PREFECT_API_URL

    log = get_run_logger()
    env = dict(os.environ, WM_PIPELINE_RUN=pipeline_run)
    # the stage commands run `python`: make it this interpreter's, even when the venv is not activated
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if PREFECT_API_URL.value():  # the stage flows report to the same Prefect server as this flow
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    lines: list[str] = []
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        lines.append(line)
        if line:
            log.info(line)
    output = "\n".join(lines)
    if proc.wait() != 0:
        started = ", ".join(RAN.findall(output)) or "none"
        tail = "\n".join(lines[-20:])
        raise RebuildFailed(f"dvc repro failed with exit code {proc.returncode} in {project} "
                            f"(stages started: {started}); last output:\n{tail}")
    return output


def read_scores(project: Path) -> dict[str, Any] | None:
    """mean, std and episodes from metrics/evaluate.json, or None before the first evaluation."""
    path = project / EVALUATE_METRICS
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    return {k: metrics[k] for k in ("mean", "std", "episodes")}


def champion_score(reg: Registry) -> dict[str, Any] | None:
    """The @champion wm-agent version and its eval.mean, or None if there is no champion."""
    if reg.champion is None:
        return None
    mean = reg.versions.get(AGENT, {}).get(reg.champion, {}).get("eval.mean")
    return {"version": reg.champion, "eval_mean": float(mean) if mean is not None else None}


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def report_markdown(summary: dict[str, Any]) -> str:
    """The rebuild report as markdown: stages run, new model versions, scores."""
    ran = ", ".join(f"`{s}`" for s in summary["ran"]) or "none, everything up to date"
    md = [f"# wm rebuild `{summary['pipeline_run']}`", "", f"**Stages run:** {ran}", ""]
    if summary["restored"]:
        md += [f"**Restored from the DVC run cache:** {', '.join(f'`{s}`' for s in summary['restored'])}", ""]
    md += ["## New model versions", ""]
    if summary["new_versions"]:
        md += ["| model | version | eval.mean | promoted to @champion |", "|---|---|---|---|"]
        for v in summary["new_versions"]:
            agent = v["model"] == AGENT
            md.append(f"| {v['model']} | {v['version']} | {_num(v.get('eval_mean')) if agent else ''} | "
                      f"{('yes' if v['promoted'] else 'no') if agent else ''} |")
    else:
        md.append("none")
    md += ["", "## Scores", ""]
    s, champ = summary["scores"], summary["champion"]
    md.append(f"- `{EVALUATE_METRICS}`: **{s['mean']:.1f} ± {s['std']:.1f}** over {s['episodes']} episodes"
              if s else f"- `{EVALUATE_METRICS}`: not written yet")
    md.append(f"- `{AGENT}@{CHAMPION}`: version {champ['version']}, eval.mean {_num(champ['eval_mean'])}"
              if champ else f"- `{AGENT}@{CHAMPION}`: none yet")
    return "\n".join(md) + "\n"


@flow(name="rebuild")
def rebuild(project: str = ".") -> dict[str, Any]:
    """Run `dvc repro` in `project` if no other rebuild is running; publish what it rebuilt as `wm-rebuild`."""
    from prefect.runtime import flow_run

    root = Path(project).resolve()
    pipeline_run = str(flow_run.id)
    with rebuild_lock(root):
        uri = tracking_uri(root)
        before = read_registry(uri)
        output = run_dvc_repro(root, pipeline_run)
        after = read_registry(uri)
    summary = {"pipeline_run": pipeline_run, "ran": RAN.findall(output), "restored": RESTORED.findall(output),
               "new_versions": new_versions(before, after), "scores": read_scores(root),
               "champion": champion_score(after)}
    markdown = report_markdown(summary)
    create_markdown_artifact(markdown, key=ARTIFACT_KEY, description=f"wm rebuild of {root}")
    get_run_logger().info("rebuild report:\n%s", markdown)
    return summary


def serve(cfg: ScheduleConfig, project: Path) -> None:
    """Serve the deployment rebuild/<cfg.deployment> on its cron schedule, at most one run at a time."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    rebuild.serve(
        name=cfg.deployment,
        schedules=[Cron(cfg.cron, timezone=cfg.timezone)],
        # a run asked for while one is running is cancelled at once rather than queued behind it: a queued
        # rebuild would only find everything up to date
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        parameters={"project": str(project)},
        description=f"dvc repro in {project} ({cfg.cron}, {cfg.timezone})",
    )


def _prefect_server_set() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def serve_cli(cfg: ScheduleConfig, project: Path) -> None:
    """`serve`: needs a real Prefect server, since a temporary one would take the schedule with it on exit."""
    if not _prefect_server_set():
        print("error: serving needs a Prefect server: start one with `prefect server start` and set "
              "PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        raise SystemExit(2)
    serve(cfg, project)


def run_cli(project: Path) -> None:
    """`run`: one rebuild now, on PREFECT_API_URL or a temporary server; exit 1 with one line if it fails."""
    failure: Exception | None = None
    # mlflow's import overlaps the temporary server's boot, as in the stages
    with prefect_api(lambda: importlib.import_module("mlflow")):
        try:
            rebuild(project=str(project))
        except (RebuildBusy, RebuildFailed) as exc:  # caught inside, so the flow's last logs reach the server
            failure = exc
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: python -m ops.rebuild {run,serve} [--params params.yaml]."""
    parser = argparse.ArgumentParser(prog="python -m ops.rebuild", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "rebuild now"), ("serve", "serve the scheduled deployment until interrupted")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--params", default="params.yaml", help="params file with the schedule section")
    args = parser.parse_args(argv)
    try:
        cfg = load_params(args.params).schedule
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.command == "serve":
        serve_cli(cfg, Path.cwd())
    else:
        run_cli(Path.cwd())


if __name__ == "__main__":
    # run the copy imported as ops.rebuild, not __main__: served runs then load the flow by module name
    from ops.rebuild import main as _main

    _main()
