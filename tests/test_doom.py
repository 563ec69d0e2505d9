"""VizDoom's Take Cover through the same pipeline: the env adapter, the paper's collection policy, the done head, and
the tiny Doom profile end to end (real vizdoom, real DVC, Prefect and MLflow)."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, make_project, subprocess_env
from wm.actions import TAKECOVER, action_map
from wm.collect import collect_rollout
from wm.config import CollectConfig, MdrnnConfig, ParamsError, TakeCoverConfig, load_params
from wm.envs import make_env
from wm.io import load_npz
from wm.mdrnn import MDRNN, load_members
from wm.policies import RepeatPolicy
from wm.train_mdrnn import episode_state, make_windows, step_tensors, train_mdrnn

DOOM = yaml.safe_load((REPO / "params" / "doom_smoke.yaml").read_text())
ENV = TakeCoverConfig(**DOOM["env"])


def test_take_cover_gives_64x64_frames_and_moves_left_and_right() -> None:
    env = make_env(ENV)
    try:
        endings = {}
        for action in (-1.0, 0.0, 1.0):
            frame, _ = env.reset(seed=5)
            assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
            for _ in range(12):
                frame, reward, terminated, _, _ = env.step(np.array([action], np.float32))
                assert reward == 1.0 and not terminated  # +1 per tic alive
            endings[action] = frame
    finally:
        env.close()
    # the same seed and different moves: left, stay and right end on three different views
    assert not np.array_equal(endings[-1.0], endings[0.0]) and not np.array_equal(endings[1.0], endings[0.0])
    assert not np.array_equal(endings[-1.0], endings[1.0])


def test_take_cover_actions_snap_to_left_stay_right() -> None:
    actions = action_map(TAKECOVER)
    raw = torch.tensor([[-0.9], [-0.34], [-0.3], [0.0], [0.3], [0.34], [0.99]])
    assert actions.snap(actions.to_env(raw)).flatten().tolist() == [-1, -1, 0, 0, 0, 1, 1]


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _play_one_episode_start(_: int) -> list[int]:
    env = make_env(ENV)
    env.reset(seed=0)
    env.close()  # keeps the game for the next episode
    return _children(os.getpid())


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_forked_worker_stops_its_vizdoom_game_when_it_ends() -> None:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        games = pool.submit(_play_one_episode_start, 0).result()
    assert games, "the worker started no vizdoom process"
    deadline = time.monotonic() + 10
    while any(map(_alive, games)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, games)), "a vizdoom process outlived the worker that started it"


def test_repeat_policy_holds_each_random_action_for_1_to_repeat_max_steps() -> None:
    policy = RepeatPolicy(np.random.default_rng(0), action_map(TAKECOVER), repeat_max=4)
    actions, draws = [], []
    for t in range(400):
        fresh = policy.left == 0  # the policy draws a new action and a new hold on this step
        actions.append(policy(None)[0])
        if fresh:
            draws.append(t)
    actions = np.array(actions)
    assert set(np.unique(actions)) == {-1.0, 0.0, 1.0}
    holds = np.diff(draws)
    assert set(holds) == {1, 2, 3, 4}  # every hold from 1 to repeat_max steps, none longer
    changed = np.flatnonzero(np.diff(actions)) + 1
    assert set(changed) <= set(draws)  # the action changes only when a new one is drawn


def test_doom_rollouts_are_reproducible_and_end_when_the_agent_dies(tmp_path: Path) -> None:
    cfg = CollectConfig(**{**DOOM["collect"], "rollouts": 2, "max_steps": 2100})
    fresh: list[dict] = []  # a new thread starts its own game
    thread = threading.Thread(target=lambda: fresh.append(collect_rollout(ENV, cfg, 3, 0, tmp_path / "a")))
    thread.start()
    thread.join()
    a = fresh[0]
    collect_rollout(ENV, cfg, 3, 1, tmp_path / "b")  # this thread's game has played an episode before rollout 0
    collect_rollout(ENV, cfg, 3, 0, tmp_path / "b")
    assert (tmp_path / "a" / "rollout_00000.npz").read_bytes() == (tmp_path / "b" / "rollout_00000.npz").read_bytes()
    r = load_npz(tmp_path / "a" / "rollout_00000.npz")
    assert r["actions"].shape == (a["steps"], 1) and set(np.unique(r["actions"])) <= {-1.0, 0.0, 1.0}
    assert a["steps"] < 2100 and bool(r["dones"][-1]) and not r["dones"][:-1].any()  # random play dies early
    assert a["return"] == pytest.approx(a["steps"])  # Take Cover's return is the time survived


def test_profiles_refuse_a_policy_or_reward_of_another_env(tmp_path: Path) -> None:
    for section, key, value in (("collect", "policy", "brownian"), ("mdrnn", "reward", "tile")):
        params = yaml.safe_load((REPO / "params" / "doom.yaml").read_text())
        params[section][key] = value
        (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
        with pytest.raises(ParamsError, match=f"{section}.{key} '{value}' .* VizdoomTakeCover-v1"):
            load_params(tmp_path / "p.yaml")


def test_the_done_head_learns_where_episodes_end() -> None:
    # rollouts that end in a death: without the terminal window the done head never sees a done
    rng = np.random.default_rng(0)
    lengths = np.array([45, 60, 37, 52] * 4)
    n = int(lengths.sum())
    ends = np.cumsum(lengths) - 1
    dones = np.zeros(n, np.float32)
    dones[ends] = 1.0
    mu = rng.standard_normal((n, 4)).astype(np.float32) * 0.1
    mu[ends, 0] = 3.0  # the last frame looks different: the fireball hits
    latents = {"mu": mu, "logsigma": np.full((n, 4), -4.0, np.float32), "actions": np.zeros((n, 1), np.float32),
               "rewards": np.ones(n, np.float32), "dones": dones, "lengths": lengths}
    windows = make_windows(lengths, 16, dones[ends].astype(bool))
    assert len(windows) == len(make_windows(lengths, 16)) + len(lengths)  # one terminal window per rollout
    cfg = MdrnnConfig(**{**DOOM["mdrnn"], "hidden": 16, "seq_len": 16, "epochs": 60, "batch_size": 8, "lr": 0.01,
                         "holdout": 0.0})
    model = train_mdrnn(latents, cfg, seed=0, progress=False).model
    with torch.no_grad():
        heads, _ = model(torch.from_numpy(mu[None]), torch.from_numpy(latents["actions"][None]))
    p_done = torch.sigmoid(heads.done_logit[0]).numpy()
    assert p_done[ends].min() > 0.5 and np.delete(p_done, ends).max() < 0.5
    assert torch.equal(model.expected_reward(heads), torch.ones_like(heads.reward))  # survival: +1 per step


def test_rollouts_no_longer_than_a_window_are_learned_whole_from_their_first_step() -> None:
    # M then sees each short episode from the zero state a dream starts from, its death included, once
    lengths = np.array([10, 40, 12])
    windows = make_windows(lengths, 16, np.array([True, True, False]))
    assert windows[0] == 0 and windows[-1] == 50  # the two short rollouts: one window each, at their first step
    assert sorted(windows[1:-1].tolist())[:2] == [10, 26]  # the long one: tiled from its start, plus its death
    assert len(windows) == 1 + 3 + 1


def test_the_done_head_cannot_learn_deaths_by_counting_steps() -> None:
    # deaths with no cue in the frames: M should learn their low base rate, not "done at the window's last step"
    # (every training window starts from a zero state, so a death always in the same window position is countable)
    rng = np.random.default_rng(1)
    lengths = np.array([45, 60, 37, 52] * 4)
    n = int(lengths.sum())
    dones = np.zeros(n, np.float32)
    dones[np.cumsum(lengths) - 1] = 1.0
    latents = {"mu": rng.standard_normal((n, 4)).astype(np.float32) * 0.1,
               "logsigma": np.full((n, 4), -4.0, np.float32), "actions": np.zeros((n, 1), np.float32),
               "rewards": np.ones(n, np.float32), "dones": dones, "lengths": lengths}
    cfg = MdrnnConfig(**{**DOOM["mdrnn"], "hidden": 16, "seq_len": 16, "epochs": 60, "batch_size": 8, "lr": 0.01,
                         "holdout": 0.0})
    model = train_mdrnn(latents, cfg, seed=0, progress=False).model
    with torch.no_grad():  # a dream's view: from M's zero state, 40 steps of an ordinary episode
        heads, _ = model(torch.from_numpy(latents["mu"][None, :40]), torch.zeros(1, 40, 1))
    assert torch.sigmoid(heads.done_logit[0]).max() < 0.5


def _long_rollouts(seed: int, lengths: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    dones = np.zeros(n, np.float32)
    dones[np.cumsum(lengths) - 1] = 1.0
    return {"mu": rng.standard_normal((n, 4)).astype(np.float32), "logsigma": np.full((n, 4), -30.0, np.float32),
            "actions": rng.uniform(-1, 1, (n, 1)).astype(np.float32), "rewards": np.ones(n, np.float32),
            "dones": dones, "lengths": np.array(lengths)}


def test_a_window_inside_a_long_episode_starts_where_the_episode_left_m() -> None:
    # mdrnn.window_state episode: a window at step 16 of a rollout must see what M would at step 16 of the whole episode
    latents = _long_rollouts(2, [40, 25])
    data, model = step_tensors(latents), MDRNN(4, 1, hidden=8, gaussians=2).eval()
    gen = torch.Generator().manual_seed(0)
    assert episode_state(model, data, torch.tensor([0, 40]), gen) is None  # every window at its rollout's start
    h, c = episode_state(model, data, torch.tensor([16, 0, 40, 57, 30]), gen)
    mu, actions = torch.from_numpy(latents["mu"]), torch.from_numpy(latents["actions"])
    with torch.no_grad():
        whole, _ = model(mu[None, :40], actions[None, :40])
        window, _ = model(mu[None, 16:32], actions[None, 16:32], (h[:, :1], c[:, :1]))
        _, (h_second, c_second) = model(mu[None, 40:57], actions[None, 40:57])
    torch.testing.assert_close(window.done_logit, whole.done_logit[:, 16:32])
    torch.testing.assert_close(window.mus, whole.mus[:, 16:32])
    torch.testing.assert_close((h[:, 3], c[:, 3]), (h_second[:, 0], c_second[:, 0]))  # the second rollout's own steps
    assert not h[:, 1:3].any() and not c[:, 1:3].any()  # windows at a rollout's first step start from zero
    assert h[:, 4].abs().sum() > 0 and not torch.allclose(h[:, 4], h[:, 0])  # step 30: another state than step 16


def test_m_trains_from_the_episode_s_state_and_that_changes_what_it_learns() -> None:
    latents = _long_rollouts(3, [70, 45, 90, 60] * 2)
    cfg = MdrnnConfig(**{**DOOM["mdrnn"], "hidden": 16, "seq_len": 16, "epochs": 2, "batch_size": 8, "lr": 0.01,
                         "holdout": 0.25, "open_loop": 4})
    zero = train_mdrnn(latents, cfg, seed=0, progress=False)
    episode = train_mdrnn(latents, cfg.model_copy(update={"window_state": "episode"}), seed=0, progress=False)
    assert np.isfinite(episode.heldout["loss"]) and episode.heldout["loss"] != zero.heldout["loss"]
    assert not torch.equal(episode.model.lstm.weight_hh_l0, zero.model.lstm.weight_hh_l0)


@pytest.mark.e2e
def test_doom_smoke_profile_runs_end_to_end_and_registers_apart(tmp_path: Path, prefect_server: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow import MlflowClient

    project = make_project(tmp_path / "doom", "doom_smoke.yaml")
    env = subprocess_env(PREFECT_API_URL=prefect_server, PYTHONPATH="")
    for expect_runs in (True, False):
        proc = subprocess.run(["dvc", "repro"], cwd=project, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert ("Running stage 'evaluate'" in proc.stdout) == expect_runs  # the second repro runs nothing

    evaluate = json.loads((project / "metrics" / "evaluate.json").read_text())
    assert evaluate["episodes"] == 2 and all(0 < s <= 100 for s in evaluate["scores"])
    assert json.loads((project / "metrics" / "controller.json").read_text())["real_steps"] == 0  # pure dream
    assert json.loads((project / "metrics" / "collect.json").read_text())["mean_random_return"] > 0
    # the profile's M is an ensemble of two (mdrnn.members), in one file; C trained in their pessimistic dream
    assert len(load_members(project / "models" / "iter0" / "mdrnn.safetensors")) == 1
    assert "member1_train_loss" in json.loads((project / "metrics" / "mdrnn.json").read_text())

    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    names = {m.name for m in client.search_registered_models()}
    assert "wm-agent-takecover" in names and "wm-agent" not in names  # Doom's champion lives apart

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/wm-agent-takecover@champion")
    finally:
        mlflow.set_tracking_uri(previous)
    import gymnasium as gym
    import vizdoom.gymnasium_wrapper  # noqa: F401

    game = gym.make("VizdoomTakeCover-v1", screen_resolution="RES_160X120")
    try:
        obs, _ = game.reset(seed=1)
        for t in range(30):
            action = model.predict(obs["screen"][None], params={"reset": t == 0})
            assert action.shape == (1, 1) and action[0, 0] in (-1.0, 0.0, 1.0)
            obs, reward, terminated, _, _ = game.step({-1.0: 2, 0.0: 0, 1.0: 1}[float(action[0, 0])])
            assert reward == 1.0 and not terminated
    finally:
        game.close()
