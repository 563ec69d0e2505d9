"""Rollout collection: byte-identical per (settings, index), incremental, re-collected when settings change, and
safe to kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, smoke_params, subprocess_env
from wm.collect import collect_rollout, prepare_dir, todo_indices
from wm.config import CollectConfig, CarRacingConfig
from wm.io import load_npz
from wm.rollouts import list_rollouts, read_meta, rollout_path
from wm.verify import DataError, check_rollout

ENV = CarRacingConfig(**smoke_params()["env"])
SHORT = CollectConfig(**{**smoke_params()["collect"], "rollouts": 3, "max_steps": 40})


def missing_indices(out, count: int) -> list[int]:
    """Indices to collect for SHORT with `count` rollouts and seed 0 (missing or stale)."""
    missing, stale, corrupt = todo_indices(out, ENV, SHORT.model_copy(update={"rollouts": count}), 0)
    return sorted(missing + stale + list(corrupt))


def test_same_params_give_byte_identical_rollouts(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for i in (0, 1):
        collect_rollout(ENV, SHORT, 7, i, a)
    # rollout 1 alone, as another worker would collect it, must still match
    collect_rollout(ENV, SHORT, 7, 1, b)
    assert rollout_path(a, 1).read_bytes() == rollout_path(b, 1).read_bytes()
    assert rollout_path(a, 0).read_bytes() != rollout_path(a, 1).read_bytes()
    r = load_npz(rollout_path(a, 0))
    assert r["frames"].shape == (40, 64, 64, 3) and r["frames"].dtype == np.uint8
    assert r["actions"].shape == (40, 3) and r["rewards"].shape == (40,) and r["dones"].dtype == bool


def test_stock_and_fast_renderer_collect_the_same_bytes(tmp_path: Path) -> None:
    collect_rollout(ENV.model_copy(update={"fast_render": False}), SHORT, 3, 0, tmp_path / "stock")
    collect_rollout(ENV, SHORT, 3, 0, tmp_path / "fast")
    assert rollout_path(tmp_path / "stock", 0).read_bytes() == rollout_path(tmp_path / "fast", 0).read_bytes()


def test_raising_the_count_collects_only_new_rollouts(tmp_path: Path) -> None:
    for i in missing_indices(tmp_path, 2):
        collect_rollout(ENV, SHORT, 0, i, tmp_path)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in list_rollouts(tmp_path)}
    assert prepare_dir(tmp_path, 3) == []
    todo = missing_indices(tmp_path, 3)
    assert todo == [2]
    for i in todo:
        collect_rollout(ENV, SHORT, 0, i, tmp_path)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in list_rollouts(tmp_path)}
    assert set(after) == set(before) | {"rollout_00002.npz"}
    assert all(after[name] == stamp for name, stamp in before.items())
    # lowering the count drops the surplus so downstream stages see exactly `count` rollouts
    assert [p.name for p in prepare_dir(tmp_path, 1)] == ["rollout_00001.npz", "rollout_00002.npz"]


def test_rollouts_made_with_other_settings_are_collected_again(tmp_path: Path) -> None:
    cfg = SHORT.model_copy(update={"rollouts": 2})
    for i in range(2):
        collect_rollout(ENV, cfg, 0, i, tmp_path)
    assert todo_indices(tmp_path, ENV, cfg, 0) == ([], [], {})
    assert read_meta(rollout_path(tmp_path, 0))["seed"] == 0
    # every setting that decides the bytes makes the files stale; the renderer (bit-identical) does not
    assert todo_indices(tmp_path, ENV, cfg, 1) == ([], [0, 1], {})
    for change in ({"max_steps": 41}, {"policy": "random_weights"}, {"gas_bias": 0.5}, {"brownian_dt": 0.05}):
        assert todo_indices(tmp_path, ENV, cfg.model_copy(update=change), 0) == ([], [0, 1], {}), change
    assert todo_indices(tmp_path, ENV.model_copy(update={"crop_rows": 80}), cfg, 0) == ([], [0, 1], {})
    assert todo_indices(tmp_path, ENV.model_copy(update={"fast_render": False}), cfg, 0) == ([], [], {})
    # raising the count adds only the new index
    assert todo_indices(tmp_path, ENV, cfg.model_copy(update={"rollouts": 3}), 0) == ([2], [], {})
    # collecting again under seed 1 rewrites exactly the files DVC must see change
    before = rollout_path(tmp_path, 0).read_bytes()
    collect_rollout(ENV, cfg, 1, 0, tmp_path)
    assert rollout_path(tmp_path, 0).read_bytes() != before


def test_killed_collect_leaves_nothing_that_looks_finished(tmp_path: Path, prefect_server: str) -> None:
    params = smoke_params()
    params["collect"].update(rollouts=6, max_steps=400)
    params["runner"].update(kind="thread", workers=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "data" / "rollouts"
    proc = subprocess.Popen([sys.executable, "-m", "flows", "collect", "--out", "data/rollouts",
                             "--metrics", "metrics/collect.json"], cwd=tmp_path, start_new_session=True,
                            env=subprocess_env(PYTHONPATH=str(REPO)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out.is_dir() and any(p.name.startswith(".") for p in out.iterdir())):
            assert proc.poll() is None, "collect finished before it could be killed"
            assert time.time() < deadline, "collect never started writing"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = list_rollouts(out)
    assert len(finished) < 6
    for p in finished:  # whatever carries a final name is complete
        assert load_npz(p)["frames"].shape == (400, 64, 64, 3)
    assert not (tmp_path / "metrics" / "collect.json").exists()
    # a rerun clears the leftovers and sees exactly what is missing
    prepare_dir(out, 6)
    assert all(not p.name.startswith(".") for p in out.iterdir())
    missing, stale, corrupt = todo_indices(out, CarRacingConfig(**params["env"]), CollectConfig(**params["collect"]), 0)
    assert len(missing) == 6 - len(finished) and stale == [] and corrupt == {}
    # the rerun's metrics describe the whole dataset, the reused rollouts too, and say what this run collected
    subprocess.run([sys.executable, "-m", "flows", "collect", "--out", "data/rollouts", "--metrics",
                    "metrics/collect.json"], cwd=tmp_path, check=True,
                   env=subprocess_env(PYTHONPATH=str(REPO), PREFECT_API_URL=prefect_server),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads((tmp_path / "metrics" / "collect.json").read_text())
    returns = [float(load_npz(p)["rewards"].astype(np.float64).sum()) for p in list_rollouts(out)]
    assert (metrics["rollouts"], metrics["steps"], metrics["collected"]) == (6, 2400, 6 - len(finished))
    assert metrics["mean_random_return"] == pytest.approx(np.mean(returns))


def flip_byte(path: Path, offset: int) -> None:
    """Corrupt one byte of a file in place, as a failing disk would."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_truncated_and_corrupt_rollouts_are_named_and_collected_again(tmp_path: Path) -> None:
    cfg = SHORT.model_copy(update={"rollouts": 3})
    for i in range(3):
        collect_rollout(ENV, cfg, 0, i, tmp_path)
    good = [rollout_path(tmp_path, i).read_bytes() for i in range(3)]
    rollout_path(tmp_path, 1).write_bytes(good[1][: len(good[1]) // 2])  # truncated: no zip directory
    flip_byte(rollout_path(tmp_path, 2), len(good[2]) // 3)  # one byte inside the compressed frames
    missing, stale, corrupt = todo_indices(tmp_path, ENV, cfg, 0)
    assert missing == [] and stale == [] and sorted(corrupt) == [1, 2]
    assert all(str(rollout_path(tmp_path, i)) in corrupt[i] for i in (1, 2))
    with pytest.raises(DataError, match="rollout_00001.npz: unreadable"):
        check_rollout(rollout_path(tmp_path, 1))
    for i in sorted(corrupt):
        collect_rollout(ENV, cfg, 0, i, tmp_path)
    assert [rollout_path(tmp_path, i).read_bytes() for i in range(3)] == good
    assert todo_indices(tmp_path, ENV, cfg, 0) == ([], [], {})


def test_rollouts_collected_in_threads_are_the_same_bytes(tmp_path: Path) -> None:
    # runner.kind: thread collects rollouts in threads of one process; pygame must not mix their frames
    from concurrent.futures import ThreadPoolExecutor

    cfg = SHORT.model_copy(update={"rollouts": 4})
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: collect_rollout(ENV, cfg, 0, i, tmp_path / "threads"), range(4)))
    for i in range(4):
        collect_rollout(ENV, cfg, 0, i, tmp_path / "one")
        assert rollout_path(tmp_path / "threads", i).read_bytes() == rollout_path(tmp_path / "one", i).read_bytes()
