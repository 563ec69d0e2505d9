"""Shared wiring for the stage flows: CLI entry, params, the Prefect API and the task runner."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from tqdm import tqdm  # noqa: E402

from wm.config import Params, ParamsError, RunnerConfig, load_params  # noqa: E402


def parse_params(argv: Sequence[str] | None, description: str) -> tuple[Params, str]:
    """Parse `--params PATH` and validate the file; exit 2 with a one-line message on bad input."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        return load_params(args.params), args.params
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def prefect_api() -> Iterator[None]:
    """Use PREFECT_API_URL if set; otherwise start one temporary server that worker processes share.

    Without this, Prefect starts a separate temporary server in the flow and in every worker process.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
            APILogWorker.drain_all(timeout=5)
    finally:
        del os.environ["PREFECT_API_URL"]
        server.stop()


def make_task_runner(cfg: RunnerConfig) -> Any:
    """The Prefect task runner named in params: local processes, threads, or Ray."""
    if cfg.kind == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=cfg.workers)
    if cfg.kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        print("error: runner.kind is 'ray' but prefect-ray is not installed (pip install prefect-ray)",
              file=sys.stderr)
        raise SystemExit(2) from None
    init = {"num_cpus": cfg.workers} if cfg.ray_address is None else {}
    return RayTaskRunner(address=cfg.ray_address, init_kwargs=init)


def gather(futures: list, desc: str, unit: str) -> list:
    """Wait for mapped Prefect futures with a progress bar; return results in submission order."""
    from prefect.futures import as_completed

    with tqdm(total=len(futures), desc=desc, unit=unit) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return [f.result() for f in futures]


def run_stage(flow_fn: Callable[..., Any], argv: Sequence[str] | None, description: str) -> None:
    """CLI entry for a stage: validate params first (fast, nothing written), then run the flow."""
    params, path = parse_params(argv, description)
    runner = make_task_runner(params.runner)
    with prefect_api():
        flow_fn.with_options(task_runner=runner)(params_path=path)
