"""Shared wiring for the stage flows: CLI entry, params, the Prefect API and the task runner."""
from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from tqdm import tqdm  # noqa: E402

from wm.config import ParamsError, RunnerConfig, load_params  # noqa: E402
from wm.verify import DataError, check_latents, check_rollouts, check_weights  # noqa: E402

STAGES = ("collect", "vae", "encode", "mdrnn", "controller", "dream", "evaluate", "explore")


def flow_options(stage: str) -> tuple[list[str], list[str]]:
    """(required, optional) parameters of `flows.<stage>`'s flow, read from its source without importing it (fast):
    every parameter except params_path is an option --name on the CLI; one with a default may be left out."""
    tree = ast.parse((Path(__file__).parent / f"{stage}.py").read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == f"{stage}_flow")
    names = [a.arg for a in fn.args.args]
    n_required = len(names) - len(fn.args.defaults)
    required = [n for n in names[:n_required] if n != "params_path"]
    optional = [n for n in names[n_required:] if n != "params_path"]
    return required, optional


def path_options(stage: str) -> list[str]:
    """Every option of the stage's flow, required ones first."""
    required, optional = flow_options(stage)
    return required + optional


def _usage(stage: str, paths: Sequence[str]) -> str:
    required, optional = flow_options(stage)
    options = " ".join([f"--{p.replace('_', '-')} PATH" for p in required]
                       + [f"[--{p.replace('_', '-')} PATH]" for p in optional])
    return f"usage: python -m flows {stage} [--params params.yaml] {options}"


def parse_args(argv: Sequence[str]) -> tuple[str, dict[str, str]]:
    """Split `--params PATH --name PATH ...` into the params file and the stage's paths (checked later)."""
    args, paths = list(argv), {}
    if len(args) % 2:
        raise ValueError(f"expected --name PATH pairs, got {' '.join(args)!r}")
    for flag, value in zip(args[::2], args[1::2]):
        if not flag.startswith("--") or value.startswith("--"):
            raise ValueError(f"expected --name PATH pairs, got {flag!r} {value!r}")
        paths[flag[2:].replace("-", "_")] = value
    return paths.pop("params", "params.yaml"), paths


def check_paths(stage: str, paths: dict[str, str]) -> None:
    """Raise ValueError naming the problem unless `paths` are exactly the flow's path parameters."""
    required, optional = flow_options(stage)
    expected = required + optional
    missing, unknown = [p for p in required if p not in paths], sorted(set(paths) - set(expected))
    if missing or unknown:
        what = (f"missing --{missing[0].replace('_', '-')}" if missing
                else f"unknown option --{unknown[0].replace('_', '-')}")
        raise ValueError(f"{stage}: {what}; {_usage(stage, expected)}")


# The options that name files a stage reads; each is checked by what it is (a rollouts folder, a latents .npz,
# safetensors weights; a JSON file is not checked) before the flow starts, so bad data is one line, a non-zero exit
# and nothing written (no flow run, no MLflow run, no output).
INPUT_OPTIONS = ("rollouts", "latents", "previous", "vae", "mdrnn", "controller", "init")


def _check_for(option: str, path: str) -> Callable[[str], Any] | None:
    if option == "rollouts":
        return check_rollouts
    return {".npz": check_latents, ".safetensors": check_weights}.get(Path(path).suffix)


def producer(path: str, lock: Path = Path("dvc.lock")) -> str | None:
    """The dvc.lock stage whose outs hold `path`, if there is a lock and one does."""
    import yaml

    try:
        stages = yaml.safe_load(lock.read_text()).get("stages", {})
    except (OSError, AttributeError, yaml.YAMLError):
        return None
    target = Path(path)
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            if target == Path(out["path"]) or Path(out["path"]) in target.parents:
                return name
    return None


def check_inputs(paths: dict[str, str]) -> None:
    """Check every input file the stage was given; DataError naming the file and the stage that rewrites it."""
    for option, path in paths.items():
        check = _check_for(option, path) if option in INPUT_OPTIONS else None
        if check is None:
            continue
        try:
            check(path)
        except DataError as exc:
            stage = producer(path)
            fix = (f"rerun the stage that writes it: dvc repro --force --single-item {stage}, then dvc repro" if stage
                   else "rerun the stage that writes it")
            raise DataError(f"{exc}; {fix}") from None


def _boot_server_in_background() -> tuple[threading.Thread, dict[str, Any]]:
    """Start Prefect's temporary server on a thread, so the stage's imports run while it boots."""
    box: dict[str, Any] = {}

    def boot() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            # Prefect's own singleton: any code path that would start a temporary server reuses this one.
            server = SubprocessASGIServer()
            # a fresh PREFECT_HOME migrates its database first: Prefect's 20 s default is too short on 2 slow cores
            server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
            box["server"] = server
            # a watchdog stops the server if this process is killed before it can (flows/watchdog.py)
            box["watchdog"] = subprocess.Popen(
                [sys.executable, "-m", "flows.watchdog", str(os.getpid()), str(server.server_process.pid)],
                cwd=Path(__file__).parents[1], start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    except BaseException:
        thread.join()
        if "server" in box:  # a stage that fails before it starts leaves no server behind
            box["server"].stop()
        raise
    thread.join()
    if "error" in box:
        raise box["error"]
    server = box["server"]
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = server.api_url  # worker processes inherit it
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            try:
                yield
            finally:  # a failed stage's logs too reach the server before it stops
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


def chunks(items: Sequence[Any], n: int) -> list[Sequence[Any]]:
    """`items` cut into consecutive tasks of n (the last may be shorter): runner.episodes_per_task."""
    return [items[i:i + n] for i in range(0, len(items), n)]


def gather(futures: list, desc: str, unit: str) -> list:
    """Wait for mapped Prefect futures with a progress bar; return results in submission order."""
    from prefect.futures import as_completed

    with tqdm(total=len(futures), desc=desc, unit=unit) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    return [f.result() for f in futures]


def launch(stage: str, argv: Sequence[str] = ()) -> None:
    """CLI entry for a stage: validate params and check the input files (nothing written), then run
    `flows.<stage>`'s flow on the paths given as options; the stage's imports overlap the temporary Prefect server's
    boot."""
    if stage not in STAGES:
        print(f"error: unknown stage {stage!r}; choose one of {', '.join(STAGES)}", file=sys.stderr)
        raise SystemExit(2)
    if argv and argv[0] in ("-h", "--help"):
        print(_usage(stage, path_options(stage)) + "\n\ndvc.yaml passes every path; see its stage " + repr(stage))
        raise SystemExit(0)
    try:
        params_path, paths = parse_args(argv)
        check_paths(stage, paths)
        params = load_params(params_path)
        check_inputs(paths)
    except (ValueError, ParamsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if params.runner.kind == "ray":  # Ray's workers do not run in this directory: hand them absolute paths
        paths = {name: str(Path(path).resolve()) for name, path in paths.items()}
    loaded: dict[str, Any] = {}

    def load() -> None:
        stage_flow = getattr(importlib.import_module(f"flows.{stage}"), f"{stage}_flow")
        loaded["flow"] = stage_flow.with_options(task_runner=make_task_runner(params.runner))

    with prefect_api(load):
        loaded["flow"](params_path=params_path, **paths)
