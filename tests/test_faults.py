"""Bad data gets one line naming the file and the stage that rewrites it, a non-zero exit, and nothing written."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, smoke_params, stage_args, subprocess_env
from wm.collect import collect_rollout
from wm.config import CollectConfig, CarRacingConfig
from wm.controller import Controller, save_controller
from wm.encode import encode_rollouts
from wm.mdrnn import MDRNN, save_mdrnn
from wm.vae import ConvVAE, save_vae


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real inputs for the downstream stages: two short CarRacing rollouts, an untrained V, their latents."""
    root = tmp_path_factory.mktemp("inputs")
    params = smoke_params()
    env, cfg = CarRacingConfig(**params["env"]), CollectConfig(**{**params["collect"], "rollouts": 2, "max_steps": 20})
    for i in range(2):
        collect_rollout(env, cfg, 0, i, root / "data" / "rollouts")
    save_vae(root / "models" / "vae.safetensors", ConvVAE(params["vae"]["z_dim"]))
    save_mdrnn(root / "models" / "iter0" / "mdrnn.safetensors",
               MDRNN(params["vae"]["z_dim"], 3, params["mdrnn"]["hidden"], params["mdrnn"]["gaussians"]))
    encode_rollouts(ConvVAE(params["vae"]["z_dim"]), root / "data" / "rollouts", root / "data" / "iter0" / "latents.npz",
                    progress=False)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    # the lock DVC would have written: which stage writes which path
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "collect": {"outs": [{"path": "data/rollouts"}]},
        "vae": {"outs": [{"path": "models/vae.safetensors"}]},
        "encode": {"outs": [{"path": "data/iter0/latents.npz"}]}}}))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def truncate(path: Path) -> None:
    """Cut a file in half, as a full disk or a killed copy would."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_byte(path: Path) -> None:
    """Corrupt one byte a third of the way into a file, as a failing disk would."""
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


CASES = [  # (stage, file to damage, how, the stage named in the fix)
    ("vae", "data/rollouts/rollout_00001.npz", truncate, "collect"),
    ("vae", "data/rollouts/rollout_00000.npz", flip_byte, "collect"),
    ("encode", "models/vae.safetensors", truncate, "vae"),
    ("mdrnn", "data/iter0/latents.npz", truncate, "encode"),
    ("controller", "data/iter0/latents.npz", flip_byte, "encode"),
]


@pytest.mark.parametrize(("stage", "damaged", "damage", "producer"), CASES)
def test_a_stage_names_a_bad_input_file_and_writes_nothing(tmp_path: Path, inputs: Path, stage: str, damaged: str,
                                                           damage, producer: str) -> None:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(inputs), str(work)], check=True)
    damage(work / damaged)
    before = _files(work)
    proc = subprocess.run([sys.executable, *stage_args(stage)], cwd=work, capture_output=True, text=True,
                          env=subprocess_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {damaged}: ") and "Traceback" not in proc.stderr
    assert f"dvc repro --force --single-item {producer}" in lines[0]
    assert _files(work) == before  # nothing written, nothing deleted


def test_a_missing_input_names_it_too(tmp_path: Path, inputs: Path) -> None:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(inputs), str(work)], check=True)
    (work / "models" / "vae.safetensors").unlink()
    proc = subprocess.run([sys.executable, *stage_args("encode")], cwd=work, capture_output=True, text=True,
                          env=subprocess_env(PYTHONPATH=str(REPO)), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: models/vae.safetensors: file not found; rerun the stage that writes it: "
                                   "dvc repro --force --single-item vae, then dvc repro")
    assert not (work / "metrics").exists()



def _run_stage(work: Path, stage: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *stage_args(stage)], cwd=work, capture_output=True, text=True,
                          env=subprocess_env(PYTHONPATH=str(REPO), **env), timeout=300)


def test_a_killed_controller_leaves_no_process_and_resumes_to_the_same_weights(
        tmp_path: Path, inputs: Path, prefect_server: str) -> None:
    import psutil

    params = smoke_params()
    params["controller"].update(mode="dream", generations=12, population=4)
    params["runner"].update(kind="process")  # worker processes too must not outlive the stage
    for name in ("killed", "whole"):
        subprocess.run(["cp", "-a", str(inputs), str(tmp_path / name)], check=True)
        (tmp_path / name / "params.yaml").write_text(yaml.safe_dump(params))
    killed, checkpoint = tmp_path / "killed", tmp_path / "killed" / ".checkpoints" / "controller.safetensors"
    env = {k: v for k, v in subprocess_env(PYTHONPATH=str(REPO)).items() if k != "PREFECT_API_URL"}
    # no PREFECT_API_URL: the stage starts its own temporary Prefect server, the process an early kill orphaned
    proc = subprocess.Popen([sys.executable, *stage_args("controller")], cwd=killed, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while not checkpoint.exists():
            assert proc.poll() is None, "controller finished before it could be killed"
            assert time.time() < deadline, "controller never wrote a checkpoint"
            time.sleep(0.2)
        family = psutil.Process(proc.pid).children(recursive=True)
        assert any("uvicorn" in " ".join(c.cmdline()) for c in family), "no temporary server to orphan"
    finally:
        proc.kill()  # the stage process alone, as the OOM killer would
        proc.wait()
    gone, alive = psutil.wait_procs(family, timeout=20)
    assert not alive, [" ".join(p.cmdline()) for p in alive]
    assert not (killed / "models" / "iter0" / "controller.safetensors").exists()

    resumed = _run_stage(killed, "controller", PREFECT_API_URL=prefect_server)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "cma-es: resuming after generation" in resumed.stdout + resumed.stderr
    assert not checkpoint.exists()  # done: the checkpoint is gone
    whole = _run_stage(tmp_path / "whole", "controller", PREFECT_API_URL=prefect_server)
    assert whole.returncode == 0, whole.stderr[-3000:]
    weights = "models/iter0/controller.safetensors"
    assert (killed / weights).read_bytes() == (tmp_path / "whole" / weights).read_bytes()


def test_a_failing_stage_reports_its_error_before_the_temporary_server_stops(tmp_path: Path, inputs: Path) -> None:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(inputs), str(work)], check=True)
    home = tmp_path / "prefect_home"  # the temporary server keeps its database here
    env = {k: v for k, v in subprocess_env(PYTHONPATH=str(REPO), PREFECT_HOME=str(home)).items()
           if k != "PREFECT_API_URL"}
    # evaluate plays its episodes, then fails inside its flow: the controller stage's metrics are missing
    p = smoke_params()
    save_controller(work / "models" / "iter0" / "controller.safetensors",
                    Controller(p["controller"]["arch"], p["vae"]["z_dim"], p["mdrnn"]["hidden"],
                               p["controller"]["hidden_units"]))
    args = stage_args("evaluate")
    proc = subprocess.run([sys.executable, *args], cwd=work, capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "metrics/controller.json" in out and "evaluation: " in out  # the error, and the flow's own log
    assert "Error logging to API" not in out and "All connection attempts failed" not in out, out[-3000:]
    # the failure's logs reached the server (what its UI shows) before it stopped
    with sqlite3.connect(home / "prefect.db") as db:
        logged = [m for (m,) in db.execute("SELECT message FROM log")]
    assert any("metrics/controller.json" in m for m in logged), logged[-10:]
    assert any(m.startswith("evaluation: ") for m in logged)
