"""mdrnn.age_scale: M reads each step's age in its episode, in training, in the dream and in the real game alike."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO
from wm.actions import TAKECOVER
from wm.agent import Agent
from wm.config import MdrnnConfig
from wm.controller import Controller
from wm.dream import Dream
from wm.mdrnn import MDRNN, load_mdrnn, save_mdrnn
from wm.train_mdrnn import _batch, step_tensors, train_mdrnn
from wm.vae import ConvVAE, to_input

DOOM = yaml.safe_load((REPO / "params" / "doom_smoke.yaml").read_text())


def test_an_m_with_age_input_steps_as_it_reads_a_whole_episode() -> None:
    torch.manual_seed(0)
    m = MDRNN(4, 1, hidden=8, gaussians=2, reward_kind="survival", mixture="per_dim", age_scale=10.0).eval()
    z, a = torch.randn(1, 20, 4), torch.rand(1, 20, 1) * 2 - 1
    with torch.no_grad():
        whole, _ = m(z, a)  # by default a sequence starts at its episode's first step
        later, _ = m(z, a, ages=torch.arange(20) + 300)
        state, logits = m.initial_state(1), []
        for t in range(20):
            state = m.advance(z[:, t], a[:, t], state, t)
            logits.append(m.heads(state[0][0]).done_logit)
    torch.testing.assert_close(torch.cat(logits), whole.done_logit[0])
    assert not torch.allclose(later.done_logit, whole.done_logit)  # the same frames at another age: another M output
    with pytest.raises(ValueError, match="reads each step's age"):
        m.advance(z[:, 0], a[:, 0], m.initial_state(1))


def test_an_m_without_age_input_is_unchanged_and_ignores_ages(tmp_path: Path) -> None:
    torch.manual_seed(1)
    m = MDRNN(4, 1, hidden=8, gaussians=2).eval()
    assert m.lstm.input_size == 5 and "age_scale" not in m.config()  # its file is as before age input existed
    z, a = torch.randn(2, 6, 4), torch.zeros(2, 6, 1)
    with torch.no_grad():
        torch.testing.assert_close(m(z, a)[0].mus, m(z, a, ages=torch.full((2, 6), 99))[0].mus, rtol=0, atol=0)
    aged = MDRNN(4, 1, hidden=8, gaussians=2, age_scale=1000.0)
    save_mdrnn(tmp_path / "m.safetensors", aged)
    loaded = load_mdrnn(tmp_path / "m.safetensors")
    assert loaded.age_scale == 1000.0 and loaded.lstm.input_size == 6
    with pytest.raises(ValueError, match="age_scale must be positive"):
        MDRNN(4, 1, age_scale=0.0)


def _rollouts(seed: int, lengths: list[int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    dones = np.zeros(n, np.float32)
    dones[np.cumsum(lengths) - 1] = 1.0
    return {"mu": rng.standard_normal((n, 4)).astype(np.float32) * 0.1, "logsigma": np.full((n, 4), -6.0, np.float32),
            "actions": np.zeros((n, 1), np.float32), "rewards": np.ones(n, np.float32), "dones": dones,
            "lengths": np.array(lengths)}


def test_training_windows_carry_each_step_s_age_in_its_episode() -> None:
    data = step_tensors(_rollouts(0, [40, 25]))
    batch = _batch(data, torch.tensor([16, 40, 0]), 8, torch.Generator().manual_seed(0))
    ages = batch[-1]
    assert ages.tolist() == [list(range(16, 24)), list(range(8)), list(range(8))]


def test_with_age_input_m_learns_deaths_that_come_only_late_in_an_episode() -> None:
    # the frames carry no cue: every episode dies between steps 30 and 45, and windows of 16 steps start from a zero
    # state, so only an M that reads the age can tell step 5 of an episode from step 37
    rng = np.random.default_rng(4)
    latents = _rollouts(5, [int(x) for x in rng.integers(30, 46, 24)])
    cfg = MdrnnConfig(**{**DOOM["mdrnn"], "hidden": 16, "seq_len": 16, "epochs": 40, "batch_size": 8, "lr": 0.01,
                         "holdout": 0.0, "members": 1})
    z, a = torch.from_numpy(latents["mu"][None, :60]), torch.zeros(1, 60, 1)

    def p_done(model: MDRNN) -> np.ndarray:
        with torch.no_grad():
            return model.done_prob(model(z, a)[0])[0].numpy()

    aged = p_done(train_mdrnn(latents, cfg.model_copy(update={"age_scale": 50.0}), seed=0, progress=False).model)
    blind = p_done(train_mdrnn(latents, cfg, seed=0, progress=False).model)
    assert aged[30:45].mean() > 5 * aged[:25].mean()
    assert blind[30:45].mean() < 2 * blind[:25].mean()


def test_fine_tuning_keeps_the_age_input_or_refuses() -> None:
    latents = _rollouts(6, [20, 24, 18, 30])
    cfg = MdrnnConfig(**{**DOOM["mdrnn"], "hidden": 8, "seq_len": 8, "epochs": 1, "batch_size": 4, "holdout": 0.0,
                         "members": 1, "age_scale": 100.0})
    first = train_mdrnn(latents, cfg, seed=0, progress=False).model
    assert train_mdrnn(latents, cfg, seed=0, progress=False, init=first).model.age_scale == 100.0
    with pytest.raises(ValueError, match="age input"):
        train_mdrnn(latents, cfg.model_copy(update={"age_scale": None}), seed=0, progress=False, init=first)


def test_the_agent_and_the_dream_age_m_as_its_training_did() -> None:
    torch.manual_seed(2)
    vae = ConvVAE(z_dim=4).eval()
    m = MDRNN(4, 1, hidden=8, gaussians=2, reward_kind="survival", age_scale=5.0).eval()
    agent = Agent(vae, m, Controller("linear", 4, 8, env=TAKECOVER))
    frames = np.random.default_rng(3).integers(0, 256, size=(6, 64, 64, 3), dtype=np.uint8)
    actions = np.stack([agent.act(f) for f in frames])
    assert agent.age == 6
    with torch.no_grad():
        mu = vae.encode(to_input(torch.from_numpy(frames)))[0]
        _, (h, _) = m(mu[None], torch.from_numpy(actions)[None])
    torch.testing.assert_close(agent.state[0], h)
    agent.reset()
    assert agent.age == 0
    dream = Dream(m, mu[:1], max_steps=3, done="sample")
    uniform, normal = dream.draw_noise(torch.Generator().manual_seed(0), 1)
    state = dream.initial_state(torch.zeros(1, 8), torch.zeros(1, 8), 1)
    act = torch.zeros(1, 1, 1)
    early = dream.step(mu[None, :1], act, state, uniform, normal, age=0)[0]
    late = dream.step(mu[None, :1], act, state, uniform, normal, age=400)[0]
    assert not torch.allclose(early, late)

