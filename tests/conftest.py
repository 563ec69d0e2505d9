"""Shared fixtures: headless pygame, quiet Prefect, and a real Prefect server on loopback."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the group marks into scheduling groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep every test that reads the smoke story on one xdist worker: the story runs once per worker."""
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and "smoke_story" in fn.__code__.co_names:
            item.add_marker(pytest.mark.xdist_group("smoke_story"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: this venv first on PATH, headless, analytics off."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `prefect server start` on a free loopback port once per session; yield its API URL."""
    home = tmp_path_factory.mktemp("prefect_home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=subprocess_env(PREFECT_HOME=str(home), PREFECT_API_URL=url),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"prefect server did not start; see {home / 'server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A fresh git repo holding a copy of this project with params/smoke.yaml as params.yaml."""
    return make_project(tmp_path / "proj")


def make_project(dest: Path, profile: str = "smoke.yaml") -> Path:
    """Copy this project into `dest` with params/<profile> as params.yaml, as a fresh git repo."""
    for name in ("wm", "flows", "ops", "params", "reference"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(REPO / name, dest / name)
    (dest / ".dvc").mkdir()
    shutil.copy2(REPO / ".dvc" / "config", dest / ".dvc" / "config")
    shutil.copy2(REPO / "params" / profile, dest / "params.yaml")
    (dest / ".gitignore").write_text("/data/\n/models/\n/videos/\n/mlflow.db\n/mlartifacts/\n/.checkpoints/\n__pycache__/\n")
    git = ["git", "-c", "user.email=ci@wm", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "smoke project"], cwd=dest, check=True)
    return dest


def smoke_params() -> dict:
    """The smoke profile as a dict (a fresh copy each call)."""
    import yaml

    return yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())


def stage_args(stage: str) -> list[str]:
    """The stage's command line exactly as dvc.yaml spells it, its ${vars} filled in."""
    import yaml

    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    scope = {f"paths.{k}": v for k, v in spec["vars"][0]["paths"].items()}
    scope |= {f"it.{k}": v for k, v in spec["vars"][1]["it"].items()} | {"key": "1", "item": "0"}
    stage_spec = spec["stages"][stage]
    cmd = stage_spec.get("do", stage_spec)["cmd"]  # a foreach group: iteration 1
    for key, value in scope.items():
        cmd = cmd.replace("${" + key + "}", value)
    return cmd.split()[1:]
