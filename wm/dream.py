"""The dream: the env as M imagines it, stepped as one batch of tensors over candidates x trials.

A dream starts from a real state drawn from a start pool: the latent of a real first frame with M's zero state
(`first_frame_starts`), or any real frame of any rollout with M's state after reading that rollout up to it
(`burned_in_starts`), so that short dreams begin where the data is, before M drifts. `on_road` limits the burned-in
frames to those where the real car was about to touch a new tile (CarRacing), and `mixed_pool` lets a share of the
dreams start from first frames all the same. At every step C acts on (z, h) (or (z, h, c));
M consumes (z, env action), its reward head gives r_t, its done head ends the episode when its logit is above 0, and
z_{t+1} is drawn from its mixture at temperature tau. With `dropout` p > 0 every dream draws one dropout mask on M's
h and keeps it for the whole episode (as in Dropout's Dream Land), so each dream runs a slightly different M and a
controller cannot rely on one model's mistakes.

With `members` (more Ms trained on the same data from other seeds) the dream is an ensemble: C reads the first M's h,
each step's z_{t+1} comes from a member picked at random per trial (`member_pick="step"`, anew at every step; or
`"dream"`, once per dream, so that each dream plays out in one member's world), and the reward is the members' mean
minus `disagreement` times their standard deviation, so a controller is paid less where the models disagree: where the
data is thin and M's promises are least trustworthy. A death comes from the members' mean done logit or P(done), or
with `ensemble_done="max"` from the most pessimistic member's, so a controller must survive every member.
With `age_offsets` a dream's done logit at step t also gets the offset of t's age band (`age_band` steps each,
the last band for any later step): a hazard calibrated by age (wm/dream_hazard.py fits it).
With `action_noise` p > 0 each step of a dream replaces C's action, with probability p, by a uniformly random one
(before it is snapped to the env's actions): a controller must survive its own slips, so it cannot rely on an exact
sequence of actions that only M rewards. The real env and `DreamEnv` play C's actions as they are.
A policy with `action_repeat` k > 1 is asked for actions every k steps only (a slip, too, is drawn then and held),
and each action plays for k steps, as the real agent (wm.agent.Agent) plays it; `DreamEnv` leaves that to its caller.

Batch layout: (P, T, ...) for P controllers x T trials. The random numbers of a step are drawn once per trial and
shared by every candidate (common random numbers), so candidates are compared on the same imagined tracks; so are
the dropout masks and the action slips. A dream is a pure function of (M, the start pool, tau, dropout, action noise,
seeds): the same seeds give the same returns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch

from wm.controller import BatchedController
from wm.actions import CARRACING, action_map
from wm.mdrnn import MDRNN, State

DreamState = tuple[torch.Tensor, ...]  # (h, c) of each member in turn; the first M's (h, c) come first


def initial_latents(latents: dict[str, np.ndarray]) -> torch.Tensor:
    """The encoded first frame (mu) of every rollout: (N, z), the pool dreams start from."""
    starts = np.concatenate([[0], np.cumsum(latents["lengths"])[:-1]]).astype(np.int64)
    return torch.from_numpy(np.asarray(latents["mu"][starts], dtype=np.float32))


@dataclass
class StartPool:
    """Real states a dream can start from: latents z (N, z) and M's state (h, c) there, each (N, hidden).

    `weights` (N,), when given, makes some starts likelier than others; without them every start is as likely."""

    z: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    weights: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.z)


def first_frame_starts(mdrnn: MDRNN, latents: dict[str, np.ndarray]) -> StartPool:
    """Every rollout's encoded first frame with M's zero state."""
    z = initial_latents(latents)
    zeros = torch.zeros(len(z), mdrnn.hidden)
    return StartPool(z, zeros, zeros.clone())


ON_ROAD_WINDOW = 20  # a frame is on the road when its rollout touches a new tile within this many steps


def on_road_frames(latents: dict[str, np.ndarray], window: int = ON_ROAD_WINDOW) -> list[np.ndarray]:
    """Per rollout, the frames t after which the real car touched a new tile (a positive CarRacing reward) within
    `window` steps: it was on the road, driving (in seed 0's random rollouts, 30 % of the frames)."""
    lengths = np.asarray(latents["lengths"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rewards = np.asarray(latents["rewards"], dtype=np.float32)
    frames = []
    for start, n in zip(offsets, lengths):
        paid = np.flatnonzero(rewards[start:start + n] > 0)  # reward t is paid for the step from frame t
        near = np.zeros(int(n), dtype=bool)
        for t in paid:
            near[max(0, t - window + 1):t + 1] = True
        frames.append(np.flatnonzero(near))
    return frames


@torch.no_grad()
def burned_in_starts(mdrnn: MDRNN, latents: dict[str, np.ndarray], per_rollout: int = 32, seed: int = 0,
                     on_road: bool = False) -> StartPool:
    """`per_rollout` random real frames of every rollout, each with M's state after reading the rollout (mu and
    the actions taken) up to that frame: M starts from where the data is, with the memory it would have there.
    With `on_road` the frames are drawn from `on_road_frames` only (a rollout without any gives none).

    All rollouts advance together, one batched LSTM step per frame."""
    lengths = np.asarray(latents["lengths"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rng = np.random.default_rng(seed)
    if on_road:
        picks = [np.sort(rng.choice(f, size=min(per_rollout, len(f)), replace=False)) for f in on_road_frames(latents)]
        if not any(len(p) for p in picks):
            raise ValueError("no rollout ever touched a new tile: there is no on-road frame to start a dream from")
    else:
        picks = [np.sort(rng.choice(n, size=min(per_rollout, int(n)), replace=False)) for n in lengths]
    mu, actions = np.asarray(latents["mu"], dtype=np.float32), np.asarray(latents["actions"], dtype=np.float32)
    state = mdrnn.initial_state(len(lengths))
    zs, hs, cs = [], [], []
    for t in range(int(max(p[-1] for p in picks if len(p))) + 1):
        # rollouts shorter than t repeat their last frame; none of their picks lie beyond their length
        rows = np.minimum(offsets + t, offsets + lengths - 1)
        z_t = torch.from_numpy(mu[rows])
        for i in [i for i, p in enumerate(picks) if t in p]:  # the state at frame t has read frames 0 .. t-1
            zs.append(z_t[i])
            hs.append(state[0][0, i])
            cs.append(state[1][0, i])
        state = mdrnn.advance(z_t, torch.from_numpy(actions[rows]), state, t)
    return StartPool(torch.stack(zs), torch.stack(hs), torch.stack(cs))


MIN_ROWS = 32  # a shrunken dream batch keeps at least this many rows: M's kernels round alike from about 12 rows up


def rows_to_step(alive: torch.Tensor) -> torch.Tensor | None:
    """The flat rows of a (P, T) batch of dreams that M must step: None while every dream is alive, else the live
    ones, topped up with dead ones to MIN_ROWS. A dead dream's result is never read, so skipping it changes nothing
    but the time, while each live row's numbers stay those of the whole batch (torch's matmuls give a row the same
    bits at any batch size of 12 or more on the CPUs measured; smaller batches take other kernels)."""
    flat = alive.reshape(-1)
    n = len(flat)
    live = flat.nonzero().squeeze(1)
    if len(live) == n:
        return None
    short = min(MIN_ROWS, n) - len(live)
    if short > 0:
        live = torch.sort(torch.cat([live, (~flat).nonzero().squeeze(1)[:short]])).values
    return live


def pool_deaths(per_member: Sequence[torch.Tensor], ensemble_done: str) -> torch.Tensor:
    """An ensemble's done logit or P(done) from its members': the highest (`max`) or their mean (`mean`)."""
    stacked = torch.stack(list(per_member))
    return stacked.amax(0) if ensemble_done == "max" else stacked.mean(0)


def mixed_pool(first: StartPool, other: StartPool, first_share: float) -> StartPool:
    """Both pools in one: a dream starts from `first` with probability `first_share`, else from `other`."""
    if not 0 < first_share < 1:
        raise ValueError(f"first_share must be in (0, 1), got {first_share}")
    weights = torch.cat([torch.full((len(first),), first_share / len(first)),
                         torch.full((len(other),), (1 - first_share) / len(other))])
    return StartPool(*(torch.cat([a, b]) for a, b in zip((first.z, first.h, first.c), (other.z, other.h, other.c))),
                     weights=weights)


def seeded_generator(seeds: Sequence[int]) -> torch.Generator:
    """A torch generator that depends only on the list of trial seeds."""
    state = np.random.SeedSequence([int(s) for s in seeds]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


@dataclass
class DreamResult:
    """Per (candidate, trial) returns and lengths; `latents` (steps+1, P, T, z) only when recorded (a dream's
    latents after its end mean nothing)."""

    returns: torch.Tensor
    steps: torch.Tensor
    latents: torch.Tensor | None = None

    def fitness(self) -> list[float]:
        """Mean return over trials, one value per candidate."""
        return self.returns.mean(dim=1).tolist()


class Dream:
    """M as a batched environment: `rollout` plays P controllers x T trials in one tensor loop through M.step."""

    def __init__(self, mdrnn: MDRNN, start_pool: torch.Tensor | StartPool, temperature: float = 1.0,
                 max_steps: int = 1000, patience: int | None = None, dropout: float = 0.0,
                 device: torch.device | str = "cpu", done: str = "threshold", members: Sequence[MDRNN] = (),
                 disagreement: float = 0.0, ensemble_done: str = "mean", age_offsets: torch.Tensor | None = None,
                 age_band: int = 100, action_noise: float = 0.0, member_pick: str = "step") -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0 <= action_noise < 1:
            raise ValueError(f"action_noise must be in [0, 1), got {action_noise}")
        if member_pick not in ("step", "dream"):
            raise ValueError(f"member_pick must be 'step' or 'dream', got {member_pick!r}")
        if member_pick == "dream" and not members:
            raise ValueError("member_pick='dream' picks one member of an ensemble per dream: it needs members")
        if done not in ("threshold", "sample"):
            raise ValueError(f"done must be 'threshold' or 'sample', got {done!r}")
        pool = start_pool if isinstance(start_pool, StartPool) else None
        z_pool = pool.z if pool is not None else start_pool
        if z_pool.ndim != 2 or z_pool.shape[1] != mdrnn.z_dim or len(z_pool) == 0:
            raise ValueError(f"start_pool must be (N > 0, {mdrnn.z_dim}), got {tuple(z_pool.shape)}")
        if disagreement < 0:
            raise ValueError(f"disagreement must be >= 0, got {disagreement}")
        if ensemble_done not in ("mean", "max"):
            raise ValueError(f"ensemble_done must be 'mean' or 'max', got {ensemble_done!r}")
        for m in members:
            if ((m.z_dim, m.action_dim, m.hidden, m.reward_kind, m.picks)
                    != (mdrnn.z_dim, mdrnn.action_dim, mdrnn.hidden, mdrnn.reward_kind, mdrnn.picks)):
                raise ValueError("every member of the ensemble must have the first M's z, action, hidden sizes, "
                                 "reward head and kind of mixture")
        if members and pool is not None and bool(pool.h.any() or pool.c.any()):
            raise ValueError("an ensemble dream starts from first frames (M's zero state): burned-in states "
                             "belong to one M")
        self.device = torch.device(device)
        self.mdrnn = mdrnn.to(self.device).eval()
        self.models = [self.mdrnn, *(m.to(self.device).eval() for m in members)]
        self.disagreement = float(disagreement)
        self.ensemble_done = ensemble_done
        self.z_dim, self.hidden = mdrnn.z_dim, mdrnn.hidden
        if pool is None:  # a bare tensor of latents starts from M's zero state
            zeros = torch.zeros(len(z_pool), self.hidden)
            pool = StartPool(z_pool, zeros, zeros.clone())
        self.start_pool = StartPool(*(x.float().to(self.device) for x in (pool.z, pool.h, pool.c)),
                                    weights=None if pool.weights is None else pool.weights.float().cpu())
        self.temperature, self.max_steps, self.patience = float(temperature), max_steps, patience
        self.dropout = float(dropout)
        self.action_noise = float(action_noise)
        self.member_pick = member_pick
        self.done = done
        if age_band < 1:
            raise ValueError(f"age_band must be >= 1, got {age_band}")
        self.age_band = int(age_band)
        self.age_offsets = None if age_offsets is None else age_offsets.float().to(self.device)

    def age_shift(self, age: int) -> torch.Tensor | None:
        """The done logit's offset at step `age` of a dream (0 is the first step), or None without offsets."""
        if self.age_offsets is None:
            return None
        return self.age_offsets[min(age // self.age_band, len(self.age_offsets) - 1)]

    def start(self, gen: torch.Generator, trials: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One real start per trial: latents (T, z) and M's state there, h and c (T, hidden)."""
        weights = self.start_pool.weights
        idx = (torch.randint(len(self.start_pool), (trials,), generator=gen) if weights is None else
               torch.multinomial(weights, trials, replacement=True, generator=gen)).to(self.device)
        return self.start_pool.z[idx], self.start_pool.h[idx], self.start_pool.c[idx]

    def draw_masks(self, gen: torch.Generator, trials: int) -> torch.Tensor | None:
        """One dropout mask on h per trial (T, hidden), scaled by 1 / (1 - p); None without dropout."""
        if self.dropout == 0:
            return None
        keep = (torch.rand(trials, self.hidden, generator=gen) >= self.dropout).float()
        return (keep / (1.0 - self.dropout)).to(self.device)

    def draw_noise(self, gen: torch.Generator, trials: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's random numbers per trial: uniforms (T, 1) for the mixture pick, and with `done="sample"` a
        second column for the death draw (T, 2); normals for z (T, z).

        Drawn on the CPU (the generator's device) and moved: a dream's numbers are the same on every device."""
        uniforms = self.mdrnn.picks + (self.done == "sample") + (len(self.models) > 1)  # the member pick comes last
        uniform, normal = torch.rand(trials, uniforms, generator=gen), torch.randn(trials, self.z_dim, generator=gen)
        return uniform.to(self.device), normal.to(self.device)

    def slip(self, raw: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """C's raw actions (P, T, dim) with each trial's slip this step: with probability `action_noise` the action
        is replaced by one drawn uniformly from [-1, 1]^dim, the same slip for every candidate on that trial.

        Drawn after the step's other numbers and only with action_noise > 0, so a dream without slips is unchanged."""
        if self.action_noise == 0:
            return raw
        t, dim = raw.shape[1], raw.shape[2]
        hit = (torch.rand(t, 1, generator=gen) < self.action_noise).to(self.device)
        other = (torch.rand(t, dim, generator=gen) * 2 - 1).to(self.device)
        return torch.where(hit, other, raw)

    def hold_member(self, uniform: torch.Tensor, held: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A step's uniforms (T, k) with the member pick (the last column) of each trial's first step when
        `member_pick` is "dream"; returns them and the held column (None before the first step, or per-step picks).

        The pick reuses the first step's own uniform, so no number is drawn that a per-step dream does not draw."""
        if self.member_pick == "step":
            return uniform, held
        held = uniform[:, -1:] if held is None else held
        return torch.cat([uniform[:, :-1], held], dim=1), held

    @torch.no_grad()
    def step(self, z: torch.Tensor, action: torch.Tensor, state: DreamState, uniform: torch.Tensor,
             normal: torch.Tensor, masks: torch.Tensor | None = None, age: int = 0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, DreamState]:
        """One imagined step for a batch (P, T, ...): returns z_{t+1}, reward, done and the new state.

        The noise of a trial, (T, 1 to 3) and (T, z), and its dropout mask (T, hidden) are shared by all P
        candidates. A dream ends where the done logit is above 0 (`done="threshold"`: the death-weighted P(done) > 0.5,
        a calibrated P(done) > 1 / (1 + done_weight)), or where the trial's death draw falls
        under M's calibrated P(done) (`done="sample"`); an ensemble takes its members' mean done logit or P(done),
        or with `ensemble_done="max"` their highest. `age` is the step's index in the dream (for `age_offsets`, and
        for an M that reads ages: a dream of such an M starts from a first frame, so its index is the episode's age).
        """
        p, t = z.shape[:2]

        def rows(x: torch.Tensor) -> torch.Tensor:  # a trial's (T, k) values, one row per (candidate, trial)
            return x.expand(p, t, x.shape[-1]).reshape(p * t, -1)

        z_next, reward, done, new_state = self.step_rows(
            z.reshape(p * t, -1), action.reshape(p * t, -1), state, rows(uniform), rows(normal),
            None if masks is None else rows(masks), age)
        return z_next.view(p, t, -1), reward.view(p, t), done.view(p, t), new_state

    @torch.no_grad()
    def step_rows(self, z: torch.Tensor, action: torch.Tensor, state: DreamState, uniform: torch.Tensor,
                  normal: torch.Tensor, masks: torch.Tensor | None = None, age: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, DreamState]:
        """`step` for a flat batch of B dreams, each row with its own noise (B, 1 to 3) and (B, z), and mask."""
        picks = self.mdrnn.picks  # 1, or z_dim for a per-dimension mixture
        outs = [m.step(z, action, (state[2 * i], state[2 * i + 1]), self.temperature, uniform[:, :picks], normal,
                       masks, age) for i, m in enumerate(self.models)]
        new_state = tuple(x for _, _, member_state in outs for x in member_state)
        if len(outs) == 1:
            z_next, heads, _ = outs[0]
            reward, done_logit, prob = self.mdrnn.expected_reward(heads), heads.done_logit, None
            if self.done == "sample":
                prob = self.mdrnn.done_prob(heads)
        else:  # each dream's z_{t+1} comes from one member, picked by the step's last uniform
            member = (uniform[:, -1] * len(outs)).long().clamp_(max=len(outs) - 1)
            z_next = torch.stack([o[0] for o in outs])[member, torch.arange(len(z), device=member.device)]
            rewards = torch.stack([m.expected_reward(heads) for m, (_, heads, _) in zip(self.models, outs)])
            reward = rewards.mean(0) - self.disagreement * rewards.std(0, correction=0)
            done_logit = pool_deaths([heads.done_logit for _, heads, _ in outs], self.ensemble_done)
            prob = (pool_deaths([m.done_prob(heads) for m, (_, heads, _) in zip(self.models, outs)], self.ensemble_done)
                    if self.done == "sample" else None)
        shift = self.age_shift(age)
        if shift is not None:  # a calibrated hazard: the pooled death, shifted on the logit scale
            done_logit = done_logit + shift
            prob = None if prob is None else torch.sigmoid(torch.logit(prob, eps=1e-7) + shift)
        done = uniform[:, picks] < prob if self.done == "sample" else done_logit > 0.0
        return z_next, reward, done, new_state

    def initial_state(self, h: torch.Tensor, c: torch.Tensor, population: int) -> DreamState:
        """M's state (every member's) for a flat batch of P x T dreams from the trials' start states (T, hidden)."""
        t = len(h)
        one = (h.unsqueeze(0).expand(population, t, self.hidden).reshape(1, population * t, -1).contiguous(),
               c.unsqueeze(0).expand(population, t, self.hidden).reshape(1, population * t, -1).contiguous())
        return one + tuple(x.clone() for _ in self.models[1:] for x in one)

    @torch.no_grad()
    def rollout(self, policy: BatchedController, seeds: Sequence[int], record: bool = False) -> DreamResult:
        """Play every candidate of `policy` on every trial seed at once; returns (P, T) returns and lengths.

        `policy` is a BatchedController or anything with its `population`, `actions` and `action_repeat`."""
        p, t = policy.population, len(seeds)
        gen = seeded_generator(seeds)
        z0, h0, c0 = self.start(gen, t)
        z = z0.unsqueeze(0).expand(p, t, self.z_dim).contiguous()
        masks = self.draw_masks(gen, t)
        state = self.initial_state(h0, c0, p)
        dev = self.device
        total = torch.zeros(p, t, device=dev)
        best = torch.full((p, t), -math.inf, device=dev)
        since_best = torch.zeros(p, t, dtype=torch.long, device=dev)
        steps = torch.zeros(p, t, dtype=torch.long, device=dev)
        alive = torch.ones(p, t, dtype=torch.bool, device=dev)
        trace = [z.clone()] if record else []
        held = None
        for age in range(self.max_steps):
            uniform, normal = self.draw_noise(gen, t)
            uniform, held = self.hold_member(uniform, held)
            if age % policy.action_repeat == 0:  # C picks; in between, the dream plays its last action again
                raw = self.slip(policy(z, state[0].view(p, t, -1), state[1].view(p, t, -1)), gen)
                action = policy.actions.snap(policy.actions.to_env(raw))
            rows = rows_to_step(alive)
            if rows is None:
                z, reward, done, state = self.step(z, action, state, uniform, normal, masks, age)
            else:  # only M's dreams that are still alive (and a few dead ones) take this step; the rest keep still
                tr = rows % t  # flat row r is candidate r // t on trial r % t
                z_r, reward_r, done_r, state_r = self.step_rows(
                    z.view(p * t, -1)[rows], action.reshape(p * t, -1)[rows], tuple(x[:, rows] for x in state),
                    uniform[tr], normal[tr], None if masks is None else masks[tr], age)
                z = z.view(p * t, -1).index_copy(0, rows, z_r).view(p, t, -1)
                state = tuple(x.index_copy(1, rows, x_r) for x, x_r in zip(state, state_r))
                reward = torch.zeros(p * t, device=dev).index_copy_(0, rows, reward_r).view(p, t)
                done = torch.zeros(p * t, dtype=torch.bool, device=dev).index_copy_(0, rows, done_r).view(p, t)
            total += reward * alive
            steps += alive
            if self.patience is not None:
                improved = total > best
                best = torch.where(improved, total, best)
                since_best = torch.where(improved, 0, since_best + 1)
                done = done | (since_best >= self.patience)
            alive &= ~done
            if record:
                trace.append(z.clone())
            if not alive.any():
                break
        return DreamResult(total.cpu(), steps.cpu(), torch.stack(trace).cpu() if record else None)


class DreamEnv(gym.Env):
    """A single dream as a gymnasium env: observation z, the env's action box (`env`), reward and done from M.

    Seeded like `Dream.rollout` with one trial, so `reset(seed=s)` replays the dream that rollout calls [s].
    The first M's state after each step is in `info["h"]` and `info["c"]`; `render()` decodes z through V when one
    is given.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, dream: Dream, vae: torch.nn.Module | None = None, render_mode: str | None = None,
                 env: str = CARRACING) -> None:
        self.dream, self.vae, self.render_mode = dream, vae, render_mode
        if render_mode is not None and vae is None:
            raise ValueError("render_mode='rgb_array' needs the VAE to decode latents")
        self.actions = action_map(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dream.z_dim,), np.float32)
        self.action_space = gym.spaces.Box(np.array(self.actions.low, np.float32),
                                           np.array(self.actions.high, np.float32), dtype=np.float32)
        self._gen: torch.Generator | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a dream from a real state of the start pool; returns (z, info)."""
        super().reset(seed=seed)
        self._gen = seeded_generator([seed if seed is not None else int(self.np_random.integers(2**31))])
        z0, h0, c0 = self.dream.start(self._gen, 1)
        self._z = z0.view(1, 1, -1)
        self._masks = self.dream.draw_masks(self._gen, 1)
        self._state = self.dream.initial_state(h0, c0, 1)
        self._steps = 0
        self._held: torch.Tensor | None = None
        return self._z.view(-1).cpu().numpy(), self._info()

    def step(self, action: np.ndarray):
        """Advance the dream with an env action (CarRacing: steer, gas, brake; Take Cover: left / stay / right)."""
        if self._gen is None:
            raise RuntimeError("call reset() before step()")
        uniform, normal = self.dream.draw_noise(self._gen, 1)
        uniform, self._held = self.dream.hold_member(uniform, self._held)
        a = torch.as_tensor(np.asarray(action, dtype=np.float32)).view(1, 1, self.actions.dim)
        a = self.actions.snap(a).to(self.dream.device)
        self._z, reward, done, self._state = self.dream.step(self._z, a, self._state, uniform, normal,
                                                                   self._masks, self._steps)
        self._steps += 1
        truncated = self._steps >= self.dream.max_steps
        info = self._info()
        return self._z.view(-1).cpu().numpy(), float(reward), bool(done), truncated, info

    def _info(self) -> dict[str, np.ndarray]:
        return {"h": self._state[0].view(-1).cpu().numpy(), "c": self._state[1].view(-1).cpu().numpy()}

    @torch.no_grad()
    def render(self) -> np.ndarray | None:
        """The current latent decoded by V: uint8 (64, 64, 3)."""
        if self.render_mode != "rgb_array":
            return None
        frame = self.vae.decode(self._z.view(1, -1).to(next(self.vae.parameters()).device))[0].cpu()
        return (frame.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
