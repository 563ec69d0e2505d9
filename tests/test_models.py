"""Shapes, parameter counts and the MDN loss checked against a hand computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wm.controller import Controller, to_env_action
from wm.mdrnn import MDRNN, Heads, gmm_nll, sample
from wm.vae import ConvVAE, vae_loss


def test_vae_shapes_and_kl_floor() -> None:
    vae = ConvVAE(32)
    x = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        recon, mu, logvar = vae(x)
    assert recon.shape == (5, 3, 64, 64) and mu.shape == (5, 32) and logvar.shape == (5, 32)
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0
    # a posterior equal to the prior has KL 0, so the loss is the reconstruction plus the floor 0.5 * 32
    zeros = torch.zeros(5, 32)
    loss, rec, kl = vae_loss(x, x, zeros, zeros, kl_tolerance=0.5)
    assert float(rec) == 0.0 and float(kl) == 0.0 and float(loss) == pytest.approx(16.0)


@pytest.mark.parametrize(("arch", "expected"), [("linear", 867), ("hidden", 1443), ("v_only", 99)])
def test_controller_parameter_counts(arch: str, expected: int) -> None:
    c = Controller(arch, z_dim=32, h_dim=256, hidden_units=40)
    assert c.num_params() == expected
    flat = np.arange(expected, dtype=np.float64) / expected
    assert np.allclose(c.set_flat(flat).get_flat(), flat, atol=1e-6)
    out = c(torch.zeros(4, 32), torch.zeros(4, 256))
    assert out.shape == (4, 3)


def test_env_action_ranges() -> None:
    a = to_env_action(torch.tensor([-1.0, -1.0, 1.0]))
    assert a.tolist() == [-1.0, 0.0, 1.0]


def test_mdrnn_shapes() -> None:
    m = MDRNN(z_dim=32, action_dim=3, hidden=256, gaussians=5)
    (mus, log_sigmas, logit_pi, reward, done), (h, c) = m(torch.zeros(2, 7, 32), torch.zeros(2, 7, 3))
    assert mus.shape == (2, 7, 5, 32) and log_sigmas.shape == (2, 7, 5, 32)
    assert logit_pi.shape == (2, 7, 5) and reward.shape == (2, 7) and done.shape == (2, 7)
    assert h.shape == (1, 2, 256) and c.shape == (1, 2, 256)


def test_gmm_nll_matches_hand_computation() -> None:
    # two components over a 2-d target; written out with plain math
    target = torch.tensor([[0.5, -1.0]])
    mus = torch.tensor([[[0.0, 0.0], [1.0, -1.0]]])
    sigmas = [[1.0, 2.0], [0.5, 0.5]]
    log_sigmas = torch.log(torch.tensor([sigmas]))
    weights = [0.25, 0.75]
    logit_pi = torch.log(torch.tensor([weights])) + 3.0  # any shift: logits are normalised

    def normal_pdf(x: float, mu: float, s: float) -> float:
        return math.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    likelihood = sum(
        w * normal_pdf(0.5, m[0], s[0]) * normal_pdf(-1.0, m[1], s[1])
        for w, m, s in zip(weights, [[0.0, 0.0], [1.0, -1.0]], sigmas)
    )
    got = gmm_nll(target, mus, log_sigmas, logit_pi)
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(-math.log(likelihood), rel=1e-5)


def _mixture(n: int) -> Heads:
    mus = torch.zeros(n, 5, 8)
    mus[:, 1] += 3.0
    log_sigmas = torch.full((n, 5, 8), math.log(0.5))
    logit_pi = torch.tensor([2.0, 0.0, -1.0, -1.0, -1.0]).expand(n, 5)
    return Heads(mus, log_sigmas, logit_pi, torch.zeros(n), torch.zeros(n))


def test_temperature_widens_samples() -> None:
    heads, gen = _mixture(4096), torch.Generator().manual_seed(0)
    uniform, normal = torch.rand(4096, 1, generator=gen), torch.randn(4096, 8, generator=gen)
    cold, hot = sample(heads, 0.5, uniform, normal), sample(heads, 1.5, uniform, normal)
    assert float(hot.std()) > float(cold.std())
    # component 1 (mean 3) is picked more often when tau flattens the mixture weights
    assert float((hot[:, 0] > 1.5).float().mean()) > float((cold[:, 0] > 1.5).float().mean())


def test_sample_picks_components_by_their_weights() -> None:
    heads = _mixture(20000)
    gen = torch.Generator().manual_seed(1)
    z = sample(heads, 1.0, torch.rand(20000, 1, generator=gen), torch.zeros(20000, 8))
    picked_one = float((z[:, 0] == 3.0).float().mean())
    weights = torch.softmax(heads.logit_pi[0], dim=-1)
    assert picked_one == pytest.approx(float(weights[1]), abs=0.01)


def test_a_per_dimension_mixture_picks_each_dimension_s_component_on_its_own() -> None:
    heads = _mixture(20000)
    per_dim = heads._replace(logit_pi=heads.logit_pi.unsqueeze(-1).expand(20000, 5, 8).contiguous())
    gen = torch.Generator().manual_seed(1)
    z = sample(per_dim, 1.0, torch.rand(20000, 8, generator=gen), torch.zeros(20000, 8))
    weight = float(torch.softmax(heads.logit_pi[0], dim=-1)[1])
    picked = z == 3.0
    assert float(picked.float().mean()) == pytest.approx(weight, abs=0.01)  # each dimension by the weights
    both = float((picked[:, 0] & picked[:, 1]).float().mean())
    assert both == pytest.approx(weight ** 2, abs=0.01)  # independently: a joint pick would give `weight`
    # with one uniform repeated over z, the per-dimension pick is the joint one
    u = torch.rand(20000, 1, generator=gen)
    assert torch.equal(sample(per_dim, 1.3, u.expand(20000, 8), torch.zeros(20000, 8)),
                       sample(heads, 1.3, u, torch.zeros(20000, 8)))


def test_the_per_dimension_nll_mixes_each_dimension() -> None:
    torch.manual_seed(0)
    target, mus, log_sigmas = torch.randn(6, 4), torch.randn(6, 3, 4), 0.3 * torch.randn(6, 3, 4)
    logit_pi = torch.randn(6, 3, 4)
    want = torch.zeros(6)
    for d in range(4):  # one 1-D mixture per dimension, their NLLs summed
        want += gmm_nll(target[:, d:d + 1], mus[:, :, d:d + 1], log_sigmas[:, :, d:d + 1], logit_pi[:, :, d])
    assert torch.allclose(gmm_nll(target, mus, log_sigmas, logit_pi), want, atol=1e-5)
    m = MDRNN(z_dim=4, action_dim=3, hidden=8, gaussians=3, mixture="per_dim")
    heads, _ = m(torch.zeros(2, 5, 4), torch.zeros(2, 5, 3))
    assert heads.logit_pi.shape == (2, 5, 3, 4) and m.picks == 4
    with pytest.raises(ValueError, match="mixture must be one of"):
        MDRNN(mixture="per_component")


def test_a_sampling_agent_reads_a_draw_from_v_s_posterior_seeded_per_episode(tmp_path) -> None:
    from wm.agent import Agent
    from wm.controller import load_controller, save_controller

    torch.manual_seed(0)
    vae, m = ConvVAE(z_dim=8).eval(), MDRNN(z_dim=8, action_dim=3, hidden=16, gaussians=2).eval()
    flat = np.random.default_rng(0).normal(size=Controller("linear", 8, 16).num_params())
    mean_c = Controller("linear", 8, 16).set_flat(flat)
    save_controller(tmp_path / "c.safetensors", Controller("linear", 8, 16, z_input="sample").set_flat(flat))
    sample_c = load_controller(tmp_path / "c.safetensors")
    assert sample_c.z_input == "sample" and "z_input" not in mean_c.config()  # a mean C's file is as it was
    frames = np.random.default_rng(1).integers(0, 256, size=(5, 64, 64, 3), dtype=np.uint8)

    def play(c: Controller, seed: int) -> np.ndarray:
        agent = Agent(vae, m, c)
        agent.reset(seed)
        return np.stack([agent.act(f) for f in frames])

    assert np.array_equal(play(sample_c, 3), play(sample_c, 3))  # the same episode seed, the same draws
    assert not np.array_equal(play(sample_c, 3), play(sample_c, 4))
    assert not np.array_equal(play(sample_c, 3), play(mean_c, 3))
    assert np.array_equal(play(mean_c, 3), play(mean_c, 4))  # reading the mean, the seed does not matter
    with pytest.raises(ValueError, match="z_input"):
        Controller(z_input="mode")


def test_an_agent_with_action_repeat_holds_c_s_pick_while_m_reads_every_frame(tmp_path) -> None:
    from wm.agent import Agent
    from wm.controller import load_controller, save_controller
    from wm.vae import to_input

    torch.manual_seed(0)
    vae, m = ConvVAE(z_dim=8).eval(), MDRNN(z_dim=8, action_dim=3, hidden=16, gaussians=2).eval()
    flat = np.random.default_rng(0).normal(size=Controller("linear", 8, 16).num_params())
    save_controller(tmp_path / "c.safetensors", Controller("linear", 8, 16, action_repeat=3).set_flat(flat))
    held_c, every_c = load_controller(tmp_path / "c.safetensors"), Controller("linear", 8, 16).set_flat(flat)
    assert held_c.action_repeat == 3 and "action_repeat" not in every_c.config()  # a repeat-1 file is as it was
    frames = np.random.default_rng(1).integers(0, 256, size=(9, 64, 64, 3), dtype=np.uint8)
    held, every = Agent(vae, m, held_c), Agent(vae, m, every_c)
    held_actions = np.stack([held.act(f) for f in frames])
    every_actions = np.stack([every.act(f) for f in frames])
    for start in (0, 3, 6):  # C picks on frames 0, 3 and 6 and its pick is played until the next
        assert (held_actions[start:start + 3] == held_actions[start]).all()
    assert np.array_equal(held_actions[0], every_actions[0]) and not np.allclose(held_actions, every_actions)
    assert held.age == 9  # M read every frame
    state = m.initial_state(1)
    with torch.no_grad():
        for t, (frame, action) in enumerate(zip(frames, held_actions)):
            mu, _ = vae.encode(to_input(torch.from_numpy(frame).unsqueeze(0)))
            state = m.advance(mu, torch.from_numpy(action).unsqueeze(0), state, t)
    assert torch.allclose(held.state[0], state[0]) and torch.allclose(held.state[1], state[1])
    held.reset(0)
    assert np.array_equal(held.act(frames[0]), held_actions[0])  # a new episode starts with a pick
    with pytest.raises(ValueError, match="action_repeat"):
        Controller(action_repeat=0)


def test_the_step_is_the_training_forward_one_step_at_a_time() -> None:
    torch.manual_seed(0)
    m = MDRNN(z_dim=8, action_dim=3, hidden=16, gaussians=3).eval()
    z, a = torch.randn(2, 5, 8), torch.rand(2, 5, 3)
    with torch.no_grad():
        seq, _ = m(z, a)
        state = m.initial_state(2)
        for t in range(5):
            zero_noise = torch.zeros(2, 8)
            _, heads, state = m.step(z[:, t], a[:, t], state, 1.0, torch.zeros(2, 1), zero_noise)
            for name in Heads._fields:
                assert torch.allclose(getattr(heads, name), getattr(seq, name)[:, t], atol=1e-5), name


def test_an_open_loop_unroll_reads_m_s_own_samples_after_the_real_steps() -> None:
    torch.manual_seed(0)
    m = MDRNN(z_dim=8, action_dim=3, hidden=16, gaussians=3).train()
    z, a = torch.randn(2, 6, 8), torch.rand(2, 6, 3)
    uniform, normal = torch.rand(2, 2, 1), torch.randn(2, 2, 8)
    assert all(torch.equal(x, y) for x, y in zip(m.unroll(z, a, 0, uniform, normal), m(z, a)[0]))
    heads = m.unroll(z, a, 2, uniform, normal)
    assert heads.mus.shape == (2, 6, 3, 8)
    with torch.no_grad():  # the first four steps are teacher-forced, as in the plain forward
        assert torch.allclose(heads.mus[:, :4], m(z[:, :4], a[:, :4])[0].mus, atol=1e-6)
    # the real z of the open-loop steps is never read; the real z before them and the actions are
    other = z.clone()
    other[:, 4:] += 5.0
    assert torch.equal(m.unroll(other, a, 2, uniform, normal).mus, heads.mus)
    other = z.clone()
    other[:, 3] += 1.0
    assert not torch.allclose(m.unroll(other, a, 2, uniform, normal).mus[:, 5], heads.mus[:, 5])
    # the sample fed back is differentiable: a later step's loss reaches the earlier step's draw (and its mean)
    normal.requires_grad_(True)
    m.unroll(z, a, 2, uniform, normal).mus[:, 5].sum().backward()
    assert normal.grad[:, 0].abs().sum() > 0


def _latents(n_rollouts: int = 6, steps: int = 80, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic encoded rollouts: a new tile (reward 1000/300 - 0.1) exactly when z[0] > 1, else -0.1."""
    rng = np.random.default_rng(seed)
    n = n_rollouts * steps
    mu = rng.standard_normal((n, 4)).astype(np.float32)
    rewards = np.where(mu[:, 0] > 1.0, 1000 / 300 - 0.1, -0.1).astype(np.float32)
    return {"mu": mu, "logsigma": np.full((n, 4), -3.0, np.float32), "actions": rng.random((n, 3), np.float32),
            "rewards": rewards, "dones": np.zeros(n, np.float32), "lengths": np.full(n_rollouts, steps)}


def test_the_tile_head_learns_carracing_s_reward_and_fine_tuning_continues() -> None:
    from wm.config import MdrnnConfig
    from wm.train_mdrnn import train_mdrnn

    # M's reward for step t is read from h after (z_t, a_t): shift so z_t decides r_t
    data = _latents()
    cfg = MdrnnConfig(hidden=16, gaussians=2, mixture="joint", seq_len=8, epochs=30, batch_size=16, lr=0.01,
                      holdout=0.0, holdout_from="last", window_state="zero", patience=None, reward="tile",
                      reward_weight=3.0, done_weight=1.0, dropout=0.05, open_loop=0, bf16=False, members=1,
                      members_bf16=False, age_scale=None)
    model = train_mdrnn(data, cfg, seed=0, progress=False).model
    assert model.tile_reward == pytest.approx(1000 / 300, abs=1e-5)  # what a tile pays, read from the data
    with torch.no_grad():
        heads, _ = model(torch.from_numpy(data["mu"][None]), torch.from_numpy(data["actions"][None]))
        r = model.expected_reward(heads)[0].numpy()
    tile = data["rewards"] > 0
    assert r[tile].mean() > 1.0 > r[~tile].mean()
    # fine-tuning starts from the given M, not from scratch
    one = cfg.model_copy(update={"epochs": 1, "lr": 1e-6})
    tuned = train_mdrnn(data, one, seed=1, progress=False, init=model).model
    assert all(torch.allclose(a, b, atol=1e-3) for a, b in zip(tuned.parameters(), model.parameters()))
    with pytest.raises(ValueError, match="no rollout step reached a new tile"):
        train_mdrnn(data | {"rewards": np.full_like(data["rewards"], -0.1)}, cfg, progress=False)


def test_m_trains_under_bf16_autocast_and_hands_back_an_fp32_m() -> None:
    from wm.config import MdrnnConfig
    from wm.train_mdrnn import train_mdrnn

    data = _latents()
    cfg = MdrnnConfig(hidden=16, gaussians=2, mixture="joint", seq_len=8, epochs=30, batch_size=16, lr=0.01,
                      holdout=0.2, holdout_from="last", window_state="zero", patience=None, reward="tile",
                      reward_weight=3.0, done_weight=1.0, dropout=0.0, open_loop=0, bf16=True, members=1,
                      members_bf16=False, age_scale=None)
    half = train_mdrnn(data, cfg, seed=0, progress=False)
    full = train_mdrnn(data, cfg.model_copy(update={"bf16": False}), seed=0, progress=False)
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(half.model.parameters(), full.model.parameters()))
    assert half.history[-1]["train_loss"] < half.history[0]["train_loss"]
    # the held-out loss (computed in fp32) ends close to fp32 training's, and the reward head learned the tiles
    assert half.heldout["loss"] == pytest.approx(full.heldout["loss"], rel=0.01)
    with torch.no_grad():
        heads, _ = half.model(torch.from_numpy(data["mu"][None]), torch.from_numpy(data["actions"][None]))
        r = half.model.expected_reward(heads)[0].numpy()
    tile = data["rewards"] > 0
    assert r[tile].mean() > 1.0 > r[~tile].mean()


def test_held_out_rollouts_are_the_newest_or_spread_over_every_iteration() -> None:
    from wm.train_mdrnn import heldout_rollouts

    assert np.flatnonzero(heldout_rollouts(10, 0.2, "last")).tolist() == [8, 9]
    assert np.flatnonzero(heldout_rollouts(10, 0.2, "spread")).tolist() == [4, 9]
    first = np.flatnonzero(heldout_rollouts(100, 0.1, "spread"))
    later = np.flatnonzero(heldout_rollouts(140, 0.1, "spread"))  # 40 rollouts appended by an iteration
    assert len(later) == 14 and set(first) <= set(later)  # a held-out rollout never becomes a training one
    assert np.count_nonzero(later >= 100) == 4  # the new rollouts are held out in the same proportion
    assert not heldout_rollouts(1, 0.5, "spread").any() and not heldout_rollouts(50, 0.0, "spread").any()


def test_patience_stops_m_and_keeps_its_best_held_out_epoch() -> None:
    from wm.config import MdrnnConfig
    from wm.train_mdrnn import train_mdrnn

    data = _latents(n_rollouts=4, steps=40)  # little data and a high rate: the held-out loss soon turns up
    cfg = MdrnnConfig(hidden=32, gaussians=2, mixture="joint", seq_len=8, epochs=60, batch_size=4, lr=0.02,
                      holdout=0.25, holdout_from="spread", window_state="zero", patience=3, reward="tile",
                      reward_weight=1.0, done_weight=1.0, dropout=0.0, open_loop=0, bf16=False, members=1,
                      members_bf16=False, age_scale=None)
    stopped = train_mdrnn(data, cfg, seed=0, progress=False)
    losses = [row["val_loss"] for row in stopped.history]
    best = int(np.argmin(losses)) + 1
    assert stopped.best_epoch == best and len(losses) == best + 3 < 60  # stopped 3 epochs after the best one
    assert stopped.heldout["loss"] == pytest.approx(losses[best - 1])
    plain = train_mdrnn(data, cfg.model_copy(update={"epochs": best, "patience": None}), seed=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(stopped.model.parameters(), plain.model.parameters()))


def test_cma_es_warm_starts_from_x0() -> None:
    from wm.cmaes import train_cmaes
    from wm.config import ControllerConfig

    cfg = ControllerConfig(mode="dream", arch="linear", hidden_units=1, population=4, trials=1, generations=2,
                           sigma0=1e-6, max_steps=2, eval_every=1, eval_episodes=1, z_input="mean", action_repeat=1)
    x0 = np.linspace(-1, 1, 5)
    result = train_cmaes(5, cfg, lambda cands, seeds: [-float(np.sum(c**2)) for c in cands], seed=0, x0=x0)
    assert np.allclose(result.best_params, x0, atol=1e-4)
    assert [r["real_steps"] for r in result.history] == [0.0, 0.0]
    assert [c["generation"] for c in result.checks] == [1.0, 2.0]
    with pytest.raises(ValueError, match="x0 has shape"):
        train_cmaes(4, cfg, lambda cands, seeds: [0.0] * len(cands), x0=x0)


def test_an_ensemble_is_one_file_whose_first_member_loads_as_m(tmp_path) -> None:
    from wm.mdrnn import load_ensemble, load_members, load_mdrnn, save_mdrnn

    torch.manual_seed(0)
    ms = [MDRNN(z_dim=4, action_dim=1, hidden=8, gaussians=2) for _ in range(3)]
    save_mdrnn(tmp_path / "one.safetensors", ms[0])
    save_mdrnn(tmp_path / "three.safetensors", ms[0], ms[1:])
    assert load_members(tmp_path / "one.safetensors") == []
    for path in ("one", "three"):
        m0 = load_mdrnn(tmp_path / f"{path}.safetensors")
        assert all(torch.equal(a, b) for a, b in zip(m0.state_dict().values(), ms[0].state_dict().values()))
    members = load_members(tmp_path / "three.safetensors")
    assert len(members) == 2
    for got, want in zip(members, ms[1:]):
        assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), want.state_dict().values()))
    assert len(load_ensemble(tmp_path / "one.safetensors")) == 1
    for got, want in zip(load_ensemble(tmp_path / "three.safetensors"), ms, strict=True):  # one read, in order
        assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), want.state_dict().values()))
    with pytest.raises(ValueError, match="every member"):
        save_mdrnn(tmp_path / "bad.safetensors", ms[0], [MDRNN(z_dim=4, action_dim=1, hidden=16, gaussians=2)])


def test_an_ensemble_trains_member_k_from_seed_plus_k() -> None:
    from wm.config import MdrnnConfig
    from wm.train_mdrnn import train_ensemble, train_mdrnn

    data = _latents(n_rollouts=4, steps=40)
    cfg = MdrnnConfig(hidden=16, gaussians=2, mixture="joint", seq_len=8, epochs=2, batch_size=16, lr=0.01,
                      holdout=0.25, holdout_from="last", window_state="zero", patience=None, reward="tile",
                      reward_weight=1.0, done_weight=1.0, dropout=0.0, open_loop=0, bf16=False, members=2,
                      members_bf16=True, age_scale=None)
    ensemble = train_ensemble(data, cfg, seed=5, progress=False)
    alone = [train_mdrnn(data, cfg, seed=5, progress=False),  # member 0: the M of one-member training
             train_mdrnn(data, cfg.model_copy(update={"bf16": True}), seed=6, progress=False)]
    for got, want in zip(ensemble, alone):
        assert all(torch.equal(a, b) for a, b in zip(got.model.parameters(), want.model.parameters()))
        assert got.heldout == want.heldout
    with pytest.raises(ValueError, match="has 1 members; mdrnn.members asks for 2"):
        train_ensemble(data, cfg, progress=False, init=[ensemble[0].model])
