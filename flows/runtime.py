"""Shared wiring for the stage flows: CLI entry, params, the Prefect API and the task runner."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from tqdm import tqdm  # noqa: E402

from wm.config import Params, ParamsError, RunnerConfig, load_params  # noqa: E402

STAGES = ("collect", "vae", "encode", "mdrnn", "controller", "evaluate")


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


def _boot_server_in_background() -> tuple[threading.Thread, dict[str, Any]]:
    """Start Prefect's temporary server on a thread, so the stage's imports run while it boots."""
    box: dict[str, Any] = {}

    def boot() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            # Prefect's own singleton: any code path that would start a temporary server reuses this one.
            server = SubprocessASGIServer()
            server.start()
            box["server"] = server
        except BaseException as exc:  # re-raised on the main thread
            box["error"] = exc

    thread = threading.Thread(target=boot, name="prefect-server-boot", daemon=True)
    thread.start()
    return thread, box


@contextmanager
def prefect_api(while_booting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Use PREFECT_API_URL if set; otherwise start one temporary server that worker processes share.

    Without this, Prefect starts a separate temporary server in the flow and in every worker process.
    `while_booting` runs while the server starts (the boot and the stage's imports overlap on two cores).
    """
    if os.environ.get("PREFECT_API_URL"):
        while_booting()
        yield
        return
    thread, box = _boot_server_in_background()
    try:
        while_booting()
    finally:
        thread.join()
    if "error" in box:
        raise box["error"]
    server = box["server"]
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = server.api_url  # worker processes inherit it
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
            APILogWorker.drain_all(timeout=5)
    finally:
        os.environ.pop("PREFECT_API_URL", None)
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


def launch(stage: str, argv: Sequence[str] | None = None) -> None:
    """CLI entry for a stage: validate params (fast, nothing written), then run `flows.<stage>`'s flow."""
    if stage not in STAGES:
        print(f"error: unknown stage {stage!r}; choose one of {', '.join(STAGES)}", file=sys.stderr)
        raise SystemExit(2)
    params, path = parse_params(argv, f"Run the {stage} stage of the wm pipeline as a Prefect flow.")
    loaded: dict[str, Any] = {}

    def load() -> None:
        module = importlib.import_module(f"flows.{stage}")
        loaded["flow"] = getattr(module, f"{stage}_flow").with_options(task_runner=make_task_runner(params.runner))

    with prefect_api(load):
        loaded["flow"](params_path=path)
