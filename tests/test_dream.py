"""The dream: batched controllers, shapes, determinism, one call per population, temperature, the gym view."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import smoke_params
from wm.config import ControllerConfig, DreamConfig
from wm.controller import BatchedController, Controller, to_env_action
from wm.dream import (MIN_ROWS, Dream, DreamEnv, StartPool, burned_in_starts, mixed_pool, on_road_frames, rows_to_step,
                      seeded_generator)
from wm.dream_fitness import DreamFitness, start_pool
from wm.io import save_npz
from wm.mdrnn import MDRNN, save_mdrnn
from wm.vae import ConvVAE


@pytest.fixture(scope="module")
def world() -> tuple[MDRNN, torch.Tensor]:
    """A small untrained M (its mixtures are as random as a bad dream) and a pool of start latents."""
    torch.manual_seed(0)
    return MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3).eval(), torch.randn(10, 8)


def candidates(arch: str, p: int, seed: int = 0, z_dim: int = 8, h_dim: int = 32) -> torch.Tensor:
    n = Controller(arch, z_dim, h_dim, 5).num_params()
    return torch.randn(p, n, generator=torch.Generator().manual_seed(seed)) * 0.5


@pytest.mark.parametrize("arch", ["linear", "linear_hc", "hidden", "v_only"])
def test_batched_controller_matches_one_controller_per_candidate(arch: str) -> None:
    flat = candidates(arch, 4)
    z, h, c = torch.randn(4, 3, 8), torch.randn(4, 3, 32), torch.randn(4, 3, 32)
    out = BatchedController(arch, flat, 8, 32, 5)(z, h, c)
    assert out.shape == (4, 3, 3)
    for i in range(4):
        one = Controller(arch, 8, 32, 5).set_flat(flat[i].numpy())
        assert torch.allclose(out[i], one(z[i], h[i], c[i]), atol=1e-6)
    # C reads M's cell state only when its arch says so
    moved = BatchedController(arch, flat, 8, 32, 5)(z, h, c + 1.0)
    assert torch.equal(out, moved) != (arch == "linear_hc")


@pytest.mark.parametrize("done", ["threshold", "sample"])
def test_a_per_dimension_mixture_dreams_and_survives_saving(tmp_path, done: str) -> None:
    torch.manual_seed(0)
    m = MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3, mixture="per_dim").eval()
    save_mdrnn(tmp_path / "m.safetensors", m)
    from wm.mdrnn import load_mdrnn
    back = load_mdrnn(tmp_path / "m.safetensors")
    assert back.mixture == "per_dim" and all(torch.equal(a, b) for a, b in zip(m.parameters(), back.parameters()))
    policy = BatchedController("linear", candidates("linear", 4), 8, 32, 5)
    pool = torch.randn(10, 8)
    one = Dream(back, pool, temperature=1.15, max_steps=20, done=done).rollout(policy, [1, 2], True)
    again = Dream(m, pool, temperature=1.15, max_steps=20, done=done).rollout(policy, [1, 2], True)
    assert one.returns.shape == (4, 2) and torch.equal(one.returns, again.returns)
    # each dimension picks its own component: the dream's z are not all one component's mean plus noise
    assert torch.isfinite(one.latents).all()


def test_batched_controller_rejects_wrong_width() -> None:
    with pytest.raises(ValueError, match=r"\(P, 867\)"):
        BatchedController("linear", torch.zeros(2, 100))


def test_rollout_shapes_and_determinism(world) -> None:
    mdrnn, pool = world
    dream = Dream(mdrnn, pool, temperature=1.0, max_steps=25)
    policy = BatchedController("linear", candidates("linear", 6), 8, 32, 5)
    a = dream.rollout(policy, [11, 12, 13], record=True)
    assert a.returns.shape == a.steps.shape == (6, 3)
    assert a.latents.shape == (26, 6, 3, 8)
    assert len(a.fitness()) == 6
    b = dream.rollout(policy, [11, 12, 13], record=True)
    assert torch.equal(a.returns, b.returns) and torch.equal(a.latents, b.latents)
    c = dream.rollout(policy, [11, 12, 14])
    assert not torch.equal(a.returns, c.returns)
    # common random numbers: a trial starts every candidate from the same latent, taken from the real pool
    assert torch.equal(a.latents[0, 0], a.latents[0, 5])
    assert all(bool((pool == start).all(dim=1).any()) for start in a.latents[0, 0])


def test_one_call_scores_the_whole_population_like_separate_calls(world, tmp_path) -> None:
    mdrnn, pool = world
    dream = Dream(mdrnn, pool, temperature=1.15, max_steps=20, patience=5)
    flat = candidates("linear", 8, seed=3)
    together = dream.rollout(BatchedController("linear", flat, 8, 32, 5), [1, 2, 3, 4])
    for i in range(8):
        alone = dream.rollout(BatchedController("linear", flat[i:i + 1], 8, 32, 5), [1, 2, 3, 4])
        assert torch.allclose(together.returns[i], alone.returns[0], atol=1e-4)
        assert torch.equal(together.steps[i], alone.steps[0])
    # the CMA-ES scorer, built from files, is that one call averaged over trials
    save_mdrnn(tmp_path / "m.safetensors", mdrnn)
    # two rollouts whose first frames are the pool, so the fitness dreams from the same starts
    lengths = np.full(len(pool), 2)
    mu = np.repeat(pool.numpy(), 2, axis=0)
    save_npz(tmp_path / "latents.npz", mu=mu, lengths=lengths)
    p = smoke_params()
    cfg = ControllerConfig(**{**p["controller"], "mode": "dream", "hidden_units": 5, "max_steps": 20})
    fitness = DreamFitness(str(tmp_path / "m.safetensors"), str(tmp_path / "latents.npz"), cfg,
                           DreamConfig(temperature=1.15, patience=5, dropout=0.0, start="first_frame",
                                       first_frame_share=0.0, done="threshold", ensemble_done="mean",
                                       disagreement=0.0, hazard="model", hazard_band=100, action_noise=0.0,
                                       member_pick="step"))
    scores = fitness.population(list(flat.numpy()), [1, 2, 3, 4])
    assert np.allclose(scores, together.returns.mean(1).numpy(), atol=1e-4)


def test_patience_ends_dreams_early(world) -> None:
    mdrnn, pool = world
    policy = BatchedController("linear", candidates("linear", 4), 8, 32, 5)
    full = Dream(mdrnn, pool, max_steps=40).rollout(policy, [5, 6])
    cut = Dream(mdrnn, pool, max_steps=40, patience=3).rollout(policy, [5, 6])
    assert int(full.steps.min()) == 40  # an untrained done head never fires (its logit is near 0, not above it)
    assert bool((cut.steps < 40).any()) and bool((cut.steps >= 3).all())


def test_temperature_widens_the_spread_of_imagined_trajectories(world) -> None:
    mdrnn, pool = world
    policy = BatchedController("linear", candidates("linear", 1), 8, 32, 5)
    seeds = list(range(64))

    def spread(tau: float) -> float:
        latents = Dream(mdrnn, pool[:1], temperature=tau, max_steps=15).rollout(policy, seeds, record=True).latents
        return float(latents[1:, 0].std(dim=1).mean())  # across trials that share a start, averaged over steps

    low, mid, high = spread(0.5), spread(1.0), spread(1.3)
    assert low < mid < high


@pytest.mark.parametrize("arch, pick, repeat", [("linear", None, 1), ("linear_hc", None, 1), ("linear", "dream", 1),
                                                ("linear", None, 5)])
def test_dream_env_is_the_same_dream_one_step_at_a_time(world, arch: str, pick: str | None, repeat: int) -> None:
    mdrnn, pool = world
    flat = candidates(arch, 1, seed=7)
    # pick: an ensemble whose dream keeps one member per dream, in the batch and one step at a time alike
    kw = {} if pick is None else dict(members=[_far_member(mdrnn, 100.0)], member_pick=pick)
    # repeat: C picks every `repeat` steps; the batched dream holds its action, and here the caller does
    batched = Dream(mdrnn, pool, temperature=1.0, max_steps=12, **kw).rollout(
        BatchedController(arch, flat, 8, 32, 5, action_repeat=repeat), [42], record=True)
    controller = Controller(arch, 8, 32, 5).set_flat(flat[0].numpy())
    env = DreamEnv(Dream(mdrnn, pool, temperature=1.0, max_steps=12, **kw))
    z, info = env.reset(seed=42)
    total, zs, done = 0.0, [z], False
    while not done:
        if (len(zs) - 1) % repeat == 0:
            with torch.no_grad():
                raw = controller(torch.from_numpy(z)[None], torch.from_numpy(info["h"])[None],
                                 torch.from_numpy(info["c"])[None])[0]
            action = to_env_action(raw).numpy()
        assert env.action_space.contains(action)
        z, reward, terminated, truncated, info = env.step(action)
        total += reward
        zs.append(z)
        done = terminated or truncated
    assert len(zs) == 13 and env.observation_space.contains(zs[-1])
    assert np.allclose(np.stack(zs), batched.latents[:, 0, 0].numpy(), atol=1e-4)
    assert total == pytest.approx(float(batched.returns[0, 0]), abs=1e-3)


def test_a_repeating_policy_is_asked_every_k_steps_and_changes_the_dream(world) -> None:
    mdrnn, pool = world
    flat = candidates("linear", 3, seed=3)
    asked: list[int] = []

    class Counting(BatchedController):
        def __call__(self, *args: torch.Tensor) -> torch.Tensor:
            asked.append(1)
            return super().__call__(*args)

    held = Dream(mdrnn, pool, max_steps=12).rollout(Counting("linear", flat, 8, 32, 5, action_repeat=4), [1, 2])
    assert len(asked) == 3  # on steps 0, 4 and 8 of 12
    every = Dream(mdrnn, pool, max_steps=12).rollout(BatchedController("linear", flat, 8, 32, 5), [1, 2])
    assert not torch.allclose(held.returns, every.returns)
    one = Dream(mdrnn, pool, max_steps=12).rollout(BatchedController("linear", flat, 8, 32, 5, action_repeat=1),
                                                  [1, 2])
    assert torch.equal(one.returns, every.returns)  # 1 is the dream as before, bit for bit
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="action_repeat"):
            BatchedController("linear", flat, 8, 32, 5, action_repeat=bad)


def test_dream_env_renders_through_the_decoder(world) -> None:
    mdrnn, pool = world
    torch.manual_seed(0)
    vae = ConvVAE(z_dim=8).eval()
    env = DreamEnv(Dream(mdrnn, pool, max_steps=3), vae=vae, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    with pytest.raises(ValueError, match="needs the VAE"):
        DreamEnv(Dream(mdrnn, pool), render_mode="rgb_array")


def test_bad_dream_settings_are_refused(world) -> None:
    mdrnn, pool = world
    with pytest.raises(ValueError, match="temperature"):
        Dream(mdrnn, pool, temperature=0.0)
    with pytest.raises(ValueError, match="start_pool"):
        Dream(mdrnn, torch.randn(3, 5))


def test_dropout_masks_are_fixed_per_dream_and_shared_by_candidates(world) -> None:
    mdrnn, pool = world
    flat = candidates("linear", 3)
    policy = BatchedController("linear", flat, 8, 32, 5)
    plain = Dream(mdrnn, pool, max_steps=15).rollout(policy, [1, 2, 3])
    masked = Dream(mdrnn, pool, max_steps=15, dropout=0.3).rollout(policy, [1, 2, 3])
    again = Dream(mdrnn, pool, max_steps=15, dropout=0.3).rollout(policy, [1, 2, 3])
    assert torch.equal(masked.returns, again.returns)  # a pure function of the seeds
    assert not torch.allclose(masked.returns, plain.returns)  # the masks change M's predictions
    for i in range(3):  # candidate i alone meets the same masks as in the population
        alone = Dream(mdrnn, pool, max_steps=15, dropout=0.3).rollout(
            BatchedController("linear", flat[i:i + 1], 8, 32, 5), [1, 2, 3])
        assert torch.allclose(masked.returns[i], alone.returns[0], atol=1e-4)
    masks = Dream(mdrnn, pool, dropout=0.3).draw_masks(torch.Generator().manual_seed(0), 400)
    values = sorted(masks.unique().tolist())
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.7)
    assert abs((masks == 0).float().mean().item() - 0.3) < 0.02


def test_tile_reward_is_carracing_s_own_reward(world) -> None:
    mdrnn, _ = world
    tile = MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3, reward_kind="tile", tile_reward=3.4)
    heads, _ = tile(torch.randn(2, 50, 8), torch.rand(2, 50, 3))
    r = tile.expected_reward(heads)
    assert r.shape == (2, 50) and bool((r > -0.1).all()) and bool((r < -0.1 + 3.4).all())
    with pytest.raises(ValueError, match="reward_kind"):
        MDRNN(reward_kind="huber")


def test_burned_in_starts_carry_m_s_state_after_reading_the_rollout(world) -> None:
    mdrnn, _ = world
    gen = torch.Generator().manual_seed(3)
    lengths = np.array([7, 4])
    latents = {"lengths": lengths, "mu": torch.randn(11, 8, generator=gen).numpy(),
               "actions": torch.rand(11, 3, generator=gen).numpy()}
    pool = burned_in_starts(mdrnn, latents, per_rollout=100)  # every frame of both rollouts
    assert len(pool) == 11
    offsets = [0, 7]
    found = 0
    for r, n in enumerate(lengths):
        mu = torch.from_numpy(latents["mu"][offsets[r]:offsets[r] + n])
        act = torch.from_numpy(latents["actions"][offsets[r]:offsets[r] + n])
        out, _ = mdrnn.lstm(torch.cat([mu, act], -1).unsqueeze(0))
        for t in range(n):
            j = int((pool.z - mu[t]).abs().sum(1).argmin())
            assert torch.equal(pool.z[j], mu[t])
            expected_h = torch.zeros(mdrnn.hidden) if t == 0 else out[0, t - 1]  # read frames 0 .. t-1
            assert torch.allclose(pool.h[j], expected_h, atol=1e-5)
            found += 1
    assert found == 11
    fewer = burned_in_starts(mdrnn, latents, per_rollout=2, seed=1)
    assert len(fewer) == 4 and torch.equal(fewer.z, burned_in_starts(mdrnn, latents, per_rollout=2, seed=1).z)


def test_on_road_frames_are_those_shortly_before_a_new_tile(world) -> None:
    mdrnn, _ = world
    lengths = np.array([30, 10, 25])
    rewards = np.full(65, -0.1, dtype=np.float32)
    rewards[25] = 3.2      # rollout 0 touches a tile on its step from frame 25
    rewards[40] = 3.2  # rollout 2 (frames 40..64) on its step from frame 0
    rewards[64] = 3.2  # ... and from its last frame
    latents = {"lengths": lengths, "rewards": rewards, "mu": np.random.default_rng(0).normal(size=(65, 8)),
               "actions": np.zeros((65, 3), dtype=np.float32)}
    frames = on_road_frames(latents, window=5)
    assert frames[0].tolist() == [21, 22, 23, 24, 25] and frames[1].tolist() == []
    assert frames[2].tolist() == [0, 20, 21, 22, 23, 24]
    pool = burned_in_starts(mdrnn, latents, per_rollout=100, on_road=True)
    picked = {int(np.argmin(np.abs(latents["mu"] - z.numpy()).sum(1))) for z in pool.z}
    assert picked == set(range(6, 26)) | {40} | set(range(45, 65))  # the default window is 20; rollout 1: none
    assert torch.equal(pool.h[[i for i, z in enumerate(pool.z) if torch.allclose(z, torch.from_numpy(
        latents["mu"][40]).float())][0]], torch.zeros(mdrnn.hidden))  # frame 0 of a rollout: M's zero state
    mixed = start_pool(mdrnn, latents, "on_road", 0.5)  # how DreamFitness builds it from dream.start
    assert len(mixed) == 3 + len(pool) and float(mixed.weights[:3].sum()) == pytest.approx(0.5)
    assert start_pool(mdrnn, latents, "on_road").weights is None and len(start_pool(mdrnn, latents, "first_frame")) == 3
    latents["rewards"] = np.full(65, -0.1, dtype=np.float32)  # no rollout touches a tile
    with pytest.raises(ValueError, match="no on-road frame"):
        burned_in_starts(mdrnn, latents, on_road=True)


def test_a_mixed_pool_starts_that_share_of_dreams_at_first_frames(world) -> None:
    mdrnn, z = world
    zeros = torch.zeros(len(z), mdrnn.hidden)
    first = StartPool(z[:2], zeros[:2], zeros[:2])
    other = StartPool(z[2:], zeros[2:] + 1, zeros[2:] + 1)
    dream = Dream(mdrnn, mixed_pool(first, other, 0.25), max_steps=5)
    _, h, _ = dream.start(torch.Generator().manual_seed(0), 4000)
    assert abs(float((h[:, 0] == 0).float().mean()) - 0.25) < 0.03
    with pytest.raises(ValueError, match="first_share"):
        mixed_pool(first, other, 1.0)


def test_a_dream_from_a_start_pool_begins_in_its_state(world) -> None:
    mdrnn, pool = world
    h = torch.randn(len(pool), mdrnn.hidden)
    policy = BatchedController("linear", candidates("linear", 2), 8, 32, 5)
    zero = Dream(mdrnn, pool, max_steps=10).rollout(policy, [1, 2])
    same = Dream(mdrnn, StartPool(pool, torch.zeros_like(h), torch.zeros_like(h)), max_steps=10).rollout(policy, [1, 2])
    warm = Dream(mdrnn, StartPool(pool, h, h.clone()), max_steps=10).rollout(policy, [1, 2])
    assert torch.equal(zero.returns, same.returns)  # a bare latent pool is the zero state
    assert not torch.allclose(zero.returns, warm.returns)


@pytest.mark.parametrize("weight", [1.0, 10.0])
def test_sampled_deaths_follow_ms_calibrated_hazard(weight: float) -> None:
    """With done="sample" a dream dies at each step with M's P(done), the training weight undone: a constant
    hazard p gives geometric lifetimes of mean 1 / p, where the threshold rule never ends the dream."""
    torch.manual_seed(0)
    m = MDRNN(z_dim=4, action_dim=3, hidden=8, gaussians=2, reward_kind="survival", done_weight=weight).eval()
    p = 0.05
    with torch.no_grad():  # the done logit is the head's last output: a constant from its bias alone
        m.head.weight[-1].zero_()
        m.head.bias[-1] = float(np.log(p / (1 - p)) + np.log(weight))
    pool, policy = torch.randn(5, 4), BatchedController("linear", candidates("linear", 2, z_dim=4, h_dim=8), 4, 8)
    sampled = Dream(m, pool, max_steps=400, done="sample").rollout(policy, list(range(300)))
    assert abs(sampled.steps.float().mean().item() - 1 / p) < 3.0  # geometric mean 20, standard error ~1.1
    assert torch.equal(sampled.steps[0], sampled.steps[1])  # the death draws are shared by all candidates
    assert (Dream(m, pool, max_steps=50).rollout(policy, [1, 2]).steps == 50).all()  # P = 0.05 < 0.5: never
    with pytest.raises(ValueError, match="done must be"):
        Dream(m, pool, done="coin")


def test_an_ensemble_pays_the_members_mean_minus_their_disagreement(world) -> None:
    mdrnn, pool = world
    torch.manual_seed(1)
    other = MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3).eval()  # another seed: the members disagree
    policy = BatchedController("linear", candidates("linear", 4), 8, 32, 5)
    seeds = [3, 4, 5]

    def play(members, disagreement: float):
        return Dream(mdrnn, pool, max_steps=20, members=members, disagreement=disagreement).rollout(
            policy, seeds, record=True)

    calm, wary, warier = play([other], 0.0), play([other], 1.0), play([other], 2.0)
    # the penalty changes what a step pays, never where the dream goes
    assert torch.equal(calm.latents, wary.latents) and torch.equal(calm.steps, wary.steps)
    gap = calm.returns - wary.returns
    assert bool((gap > 0).all())
    assert torch.allclose(calm.returns - warier.returns, 2 * gap, rtol=1e-4, atol=1e-4)
    # members that agree pay no penalty
    twin = MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3).eval()
    twin.load_state_dict(mdrnn.state_dict())
    assert torch.equal(play([twin], 0.0).returns, play([twin], 5.0).returns)
    # and the ensemble's dream is another dream than the first M's alone
    assert not torch.equal(calm.latents, Dream(mdrnn, pool, max_steps=20).rollout(policy, seeds, record=True).latents)


def _constant_death(p: float) -> MDRNN:
    """A survival M whose calibrated P(done) is p at every step."""
    torch.manual_seed(0)
    m = MDRNN(z_dim=4, action_dim=3, hidden=8, gaussians=2, reward_kind="survival").eval()
    with torch.no_grad():
        m.head.weight[-1].zero_()
        m.head.bias[-1] = float(np.log(p / (1 - p)))
    return m


def test_a_pessimistic_ensemble_draws_deaths_from_its_most_deadly_member() -> None:
    safe, deadly = _constant_death(0.02), _constant_death(0.2)
    pool, policy = torch.randn(5, 4), BatchedController("linear", candidates("linear", 2, z_dim=4, h_dim=8), 4, 8)

    def lifetime(ensemble_done: str) -> float:
        dream = Dream(safe, pool, max_steps=400, done="sample", members=[deadly], ensemble_done=ensemble_done)
        return dream.rollout(policy, list(range(300))).steps.float().mean().item()

    assert abs(lifetime("mean") - 1 / 0.11) < 1.5  # P(done) = (0.02 + 0.2) / 2: geometric mean 9.1
    assert abs(lifetime("max") - 1 / 0.2) < 1.0  # the deadly member's 0.2: geometric mean 5
    with pytest.raises(ValueError, match="ensemble_done"):
        Dream(safe, pool, members=[deadly], ensemble_done="min")


def test_an_m_file_holding_an_ensemble_dreams_as_that_ensemble(tmp_path) -> None:
    safe, deadly = _constant_death(0.02), _constant_death(0.2)
    save_mdrnn(tmp_path / "ensemble.safetensors", safe, [deadly])
    save_mdrnn(tmp_path / "safe.safetensors", safe)
    save_mdrnn(tmp_path / "deadly.safetensors", deadly)
    save_npz(tmp_path / "latents.npz", mu=np.zeros((10, 4), np.float32), lengths=np.full(5, 2))
    cfg = ControllerConfig(**{**smoke_params()["controller"], "mode": "dream", "hidden_units": 5, "max_steps": 200})
    flat = list(candidates("linear", 2, z_dim=4, h_dim=8).numpy())

    def score(path: str, ensemble_done: str, members: tuple[str, ...] = (), disagreement: float = 0.0) -> list[float]:
        dream = DreamConfig(temperature=1.0, patience=None, dropout=0.0, start="first_frame", first_frame_share=0.0,
                            done="sample", ensemble_done=ensemble_done, disagreement=disagreement,
                            hazard="model", hazard_band=100, action_noise=0.0, member_pick="step")
        fitness = DreamFitness(str(tmp_path / path), str(tmp_path / "latents.npz"), cfg, dream, members=members)
        return fitness.population(flat, list(range(100)))

    # the file's member is the same ensemble as one passed beside a single M, and dream.ensemble_done picks the death
    beside = (str(tmp_path / "deadly.safetensors"),)
    assert score("ensemble.safetensors", "max") == score("safe.safetensors", "max", beside)
    lives = {how: np.mean(score("ensemble.safetensors", how)) for how in ("mean", "max")}
    assert abs(lives["mean"] - 1 / 0.11) < 1.5 and abs(lives["max"] - 1 / 0.2) < 1.0  # as the Dream test above


def test_dream_disagreement_in_params_pays_an_ensemble_less_where_its_members_disagree(world, tmp_path) -> None:
    mdrnn, pool = world
    torch.manual_seed(1)
    other = MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3).eval()
    save_mdrnn(tmp_path / "ensemble.safetensors", mdrnn, [other])
    save_npz(tmp_path / "latents.npz", mu=np.repeat(pool.numpy(), 2, axis=0), lengths=np.full(len(pool), 2))
    cfg = ControllerConfig(**{**smoke_params()["controller"], "mode": "dream", "hidden_units": 5, "max_steps": 20})
    flat = list(candidates("linear", 3).numpy())

    def score(disagreement: float) -> np.ndarray:
        dream = DreamConfig(temperature=1.0, patience=None, dropout=0.0, start="first_frame", first_frame_share=0.0,
                            done="threshold", ensemble_done="mean", disagreement=disagreement,
                            hazard="model", hazard_band=100, action_noise=0.0, member_pick="step")
        return np.asarray(DreamFitness(str(tmp_path / "ensemble.safetensors"), str(tmp_path / "latents.npz"), cfg,
                                       dream).population(flat, [1, 2, 3]))

    calm, wary = score(0.0), score(1.0)
    assert (wary < calm).all()  # the same dreams (the penalty never moves z), each step paid less
    assert np.allclose(calm - score(2.0), 2 * (calm - wary), rtol=1e-3, atol=1e-3)


def _far_member(m: MDRNN, at: float) -> MDRNN:
    """A copy of `m` whose mixture puts every component's mean at `at`: its steps are told apart from m's."""
    far = MDRNN(z_dim=m.z_dim, action_dim=3, hidden=m.hidden, gaussians=m.gaussians).eval()
    far.load_state_dict(m.state_dict())
    k_z = m.gaussians * m.z_dim
    with torch.no_grad():
        far.head.weight[:k_z].zero_()
        far.head.bias[:k_z] = at
    return far


def test_a_dream_can_keep_one_member_for_its_whole_episode(world) -> None:
    mdrnn, pool = world
    policy = BatchedController("linear", candidates("linear", 3), 8, 32, 5)
    seeds = list(range(40))

    def play(pick: str):
        dream = Dream(mdrnn, pool, max_steps=15, members=[_far_member(mdrnn, 100.0)], member_pick=pick)
        return dream.rollout(policy, seeds, record=True).latents[1:]  # (steps, P, T, z) after the start

    per_step, per_dream = play("step"), play("dream")
    far_step, far_dream = (x.mean(-1) > 50 for x in (per_step, per_dream))  # (steps, P, T): the far member's steps
    kept = far_dream.all(0) | (~far_dream).all(0)  # (P, T): the same member at every step
    assert bool(kept.all()) and not bool((far_step.all(0) | (~far_step).all(0)).all())
    assert torch.equal(far_dream, far_dream[:, :1].expand_as(far_dream))  # one pick per trial, for every candidate
    assert 8 < int(far_dream[0, 0].sum()) < 32  # about half of the 40 dreams play in the far member's world
    assert torch.equal(per_step[0], per_dream[0])  # the first step's pick is the one the dream keeps
    assert torch.equal(play("dream"), per_dream)
    assert torch.equal(per_step, Dream(mdrnn, pool, max_steps=15, members=[_far_member(mdrnn, 100.0)]).rollout(
        policy, seeds, record=True).latents[1:])  # "step" is the default
    with pytest.raises(ValueError, match="member_pick"):
        Dream(mdrnn, pool, member_pick="dream")  # one M: nothing to pick
    with pytest.raises(ValueError, match="member_pick"):
        Dream(mdrnn, pool, members=[mdrnn], member_pick="trial")


def test_an_ensemble_refuses_members_of_another_shape_and_burned_in_states(world) -> None:
    mdrnn, pool = world
    with pytest.raises(ValueError, match="every member"):
        Dream(mdrnn, pool, members=[MDRNN(z_dim=8, action_dim=3, hidden=16, gaussians=3)])
    with pytest.raises(ValueError, match="disagreement"):
        Dream(mdrnn, pool, members=[mdrnn], disagreement=-1.0)
    burned = StartPool(pool, torch.ones(len(pool), 32), torch.ones(len(pool), 32))
    with pytest.raises(ValueError, match="first frames"):
        Dream(mdrnn, burned, members=[mdrnn])


def _every_row_every_step(dream: Dream, policy: BatchedController, seeds: list[int]):
    """The dream as it ran before it skipped ended dreams: M steps all P x T rows until the last one ends."""
    p, t = policy.population, len(seeds)
    gen = seeded_generator(seeds)
    z0, h0, c0 = dream.start(gen, t)
    z = z0.unsqueeze(0).expand(p, t, dream.z_dim).contiguous()
    masks, state = dream.draw_masks(gen, t), dream.initial_state(h0, c0, p)
    total, steps = torch.zeros(p, t), torch.zeros(p, t, dtype=torch.long)
    alive, trace = torch.ones(p, t, dtype=torch.bool), [z.clone()]
    for _ in range(dream.max_steps):
        uniform, normal = dream.draw_noise(gen, t)
        action = policy.actions.snap(policy.actions.to_env(policy(z, state[0].view(p, t, -1), state[1].view(p, t, -1))))
        z, reward, done, state = dream.step(z, action, state, uniform, normal, masks)
        total += reward * alive
        steps += alive
        alive &= ~done
        trace.append(z.clone())
        if not alive.any():
            break
    return total, steps, torch.stack(trace)


@pytest.mark.parametrize("members", [0, 2])
def test_a_dream_steps_only_the_live_dreams_and_plays_them_as_if_all_were_stepped(members: int) -> None:
    """Ended dreams leave M's batch (the live ones are topped up to MIN_ROWS): every return, length and latent of
    a live dream is what stepping all P x T rows gives, while the batch shrinks from 80 rows to a few."""
    torch.manual_seed(0)
    ms = [MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3, reward_kind="tile", tile_reward=3.0, done_weight=4.0,
                mixture="per_dim").eval() for _ in range(1 + members)]
    with torch.no_grad():
        for m in ms:  # deaths come at varied ages: a small hazard that moves with h
            m.head.bias[-1] = -2.0
    dream = Dream(ms[0], torch.randn(10, 8), temperature=1.2, max_steps=120, done="sample", members=ms[1:],
                  ensemble_done="max", dropout=0.1)
    policy = BatchedController("hidden", candidates("hidden", 8), 8, 32, 5)
    seeds = list(range(10))  # 8 candidates x 10 trials = 80 rows
    got = dream.rollout(policy, seeds, record=True)
    total, steps, trace = _every_row_every_step(dream, policy, seeds)
    assert torch.equal(got.steps, steps)
    assert int(steps.min()) < 10 and int((steps > 80).sum()) < MIN_ROWS  # the batch did shrink below MIN_ROWS
    assert torch.allclose(got.returns, total, atol=1e-5)
    for i in range(8):
        for j in range(10):  # a dream's latents up to its end (after it they mean nothing)
            n = int(steps[i, j])
            assert torch.allclose(got.latents[: n + 1, i, j], trace[: n + 1, i, j], atol=1e-5)


def test_rows_to_step_are_the_live_dreams_topped_up_with_ended_ones() -> None:
    alive = torch.ones(8, 10, dtype=torch.bool)
    assert rows_to_step(alive) is None  # all alive: the whole batch, no gathering
    alive.view(-1)[::2] = False
    assert torch.equal(rows_to_step(alive), torch.arange(1, 80, 2))  # 40 live rows >= MIN_ROWS
    alive[:] = False
    alive[3, 4] = True
    rows = rows_to_step(alive)
    assert len(rows) == MIN_ROWS and 34 in rows.tolist() and bool((rows[1:] > rows[:-1]).all())
    small = torch.zeros(2, 3, dtype=torch.bool)
    small[1, 2] = True
    assert torch.equal(rows_to_step(small), torch.arange(6))  # fewer rows than MIN_ROWS: all of them


def test_a_slip_replaces_every_candidates_action_on_a_trial_and_nothing_else() -> None:
    torch.manual_seed(0)
    dream = Dream(MDRNN(z_dim=8, action_dim=3, hidden=32, gaussians=3).eval(), torch.randn(4, 8), action_noise=0.3)
    raw = torch.rand(5, 400, 3) * 0.2 + 2.0  # outside [-1, 1]: a slipped action is told apart from C's
    slipped = dream.slip(raw, torch.Generator().manual_seed(1))
    hit = (slipped != raw).any(-1)  # (P, T)
    assert torch.equal(hit, hit[:1].expand_as(hit))  # a trial slips for every candidate or for none
    assert torch.equal(slipped[:, hit[0]], slipped[:1, hit[0]].expand(5, -1, -1))  # to the same action
    assert torch.equal(slipped[~hit], raw[~hit]) and bool((slipped[hit].abs() <= 1).all())
    assert 0.2 < hit[0].float().mean().item() < 0.4
    assert torch.equal(Dream(dream.mdrnn, torch.randn(4, 8)).slip(raw, torch.Generator()), raw)


def test_slips_change_a_dream_but_keep_it_a_function_of_its_seeds(world) -> None:
    mdrnn, pool = world
    policy = BatchedController("linear", candidates("linear", 4), 8, 32, 5)
    plain = Dream(mdrnn, pool, temperature=1.0, max_steps=25).rollout(policy, [1, 2, 3], record=True)
    slips = Dream(mdrnn, pool, temperature=1.0, max_steps=25, action_noise=0.5)
    a, b = slips.rollout(policy, [1, 2, 3], record=True), slips.rollout(policy, [1, 2, 3], record=True)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.returns, b.returns)
    assert torch.equal(a.latents[0], plain.latents[0])  # the same starts: slips are drawn after a step's numbers
    assert not torch.equal(a.latents, plain.latents)
    with pytest.raises(ValueError, match="action_noise"):
        Dream(mdrnn, pool, action_noise=1.0)
