"""M: an LSTM whose outputs parameterise a Gaussian mixture over z_{t+1}, plus reward and done heads.

M owns its head layout (`heads`), how its recurrent state advances (`advance`), how z_{t+1} is sampled at a
temperature (`sample`, used by `step`) and what its reward head means (`expected_reward`). Training, the dream, the
agent and the tests all go through these.

The reward head is either a regression of r_t (`regress`) or, for CarRacing, a classifier of "a new tile was reached
at step t" (`tile`): the dream then rebuilds the env's own reward, STEP_REWARD per frame plus `tile_reward` times
P(new tile), so M cannot invent rewards of any other size. For Take Cover (`survival`) the dream pays +1 per step
alive, as the paper's Doom dream does: the reward head is unused and the done head alone decides a return.

With `age_scale` M also reads each step's age in its episode (0 at the first frame), as age / age_scale: Take Cover
sends more monsters as an episode goes on, and an M that cannot tell an episode's age dreams a hazard that does not
grow with it. Every caller passes the age (`ages` for sequences, `age` for one step); an M without `age_scale`
ignores it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from wm.io import load_weights, save_weights

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, B, hidden) as nn.LSTM keeps them
STEP_REWARD = -0.1  # CarRacing's reward per frame; a new tile adds 1000 / (tiles on the track)
REWARD_KINDS = ("regress", "tile", "survival")


MIXTURES = ("joint", "per_dim")
Ages = torch.Tensor | int | None  # a step's age in its episode: a tensor that broadcasts to the batch, or one int


class Heads(NamedTuple):
    """M's outputs for one or more steps: a K-component mixture over z_{t+1}, the reward and the done logit."""

    mus: torch.Tensor  # (..., K, z)
    log_sigmas: torch.Tensor  # (..., K, z), clamped to [-7, 3]
    logit_pi: torch.Tensor  # (..., K) for a joint mixture, (..., K, z) for one mixture per dimension
    reward: torch.Tensor  # (...)
    done_logit: torch.Tensor  # (...)


def gmm_nll(target: torch.Tensor, mus: torch.Tensor, log_sigmas: torch.Tensor,
            logit_pi: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of target (..., z) under K diagonal Gaussians (..., K, z), weights logit_pi (..., K).

    With logit_pi (..., K, z), each dimension of z is its own K-component mixture (the paper's M).
    Returns the NLL summed over z, one value per leading index.
    """
    t = target.unsqueeze(-2)
    log_prob = -0.5 * ((t - mus) / log_sigmas.exp()).pow(2) - log_sigmas - 0.5 * math.log(2 * math.pi)
    if logit_pi.dim() == mus.dim():  # per dimension: mix each dimension, then sum over z
        return -torch.logsumexp(F.log_softmax(logit_pi, dim=-2) + log_prob, dim=-2).sum(-1)
    log_mix = F.log_softmax(logit_pi, dim=-1) + log_prob.sum(-1)
    return -torch.logsumexp(log_mix, dim=-1)


def sample(heads: Heads, temperature: float, uniform: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """z_{t+1} (..., z) from the mixture at temperature tau: logits / tau, noise * sqrt(tau).

    The caller supplies the randomness: `uniform` (..., 1) picks the component by inverse CDF and `normal` (..., z)
    is the Gaussian noise, so a dream can share one draw across candidates (common random numbers). A per-dimension
    mixture (logit_pi (..., K, z)) picks one component per dimension, from `uniform` (..., z).
    """
    k, z_dim = heads.mus.shape[-2:]
    if heads.logit_pi.dim() == heads.mus.dim():  # per dimension: (..., K, z)
        probs = torch.softmax(heads.logit_pi / temperature, dim=-2)
        idx = (probs.cumsum(-2) < uniform.unsqueeze(-2)).sum(-2, keepdim=True).clamp_(max=k - 1)  # (..., 1, z)
    else:  # joint: (..., K)
        probs = torch.softmax(heads.logit_pi / temperature, dim=-1)
        comp = (probs.cumsum(-1) < uniform).sum(-1, keepdim=True).clamp_(max=k - 1)
        idx = comp.unsqueeze(-1).expand(*comp.shape, z_dim)  # (..., 1, z)
    mu = heads.mus.gather(-2, idx).squeeze(-2)
    sigma = heads.log_sigmas.gather(-2, idx).squeeze(-2).exp()
    return mu + sigma * normal * math.sqrt(temperature)


class MDRNN(nn.Module):
    """LSTM over [z_t, a_t]; heads for a K-component mixture over z_{t+1}, reward r_t and done d_t.

    `dropout` drops units of h before the heads while training; a dream can instead fix one mask per episode.
    `mixture`: one K-component mixture over the whole of z (`joint`), or one per dimension of z (`per_dim`, the
    paper's M: at a temperature each dimension picks its own component, so the dream is noisier).
    """

    def __init__(self, z_dim: int = 32, action_dim: int = 3, hidden: int = 256, gaussians: int = 5,
                 reward_kind: str = "regress", tile_reward: float = 0.0, dropout: float = 0.0,
                 done_weight: float = 1.0, mixture: str = "joint", age_scale: float | None = None) -> None:
        super().__init__()
        if reward_kind not in REWARD_KINDS:
            raise ValueError(f"reward_kind must be one of {REWARD_KINDS}, got {reward_kind!r}")
        if mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {MIXTURES}, got {mixture!r}")
        self.z_dim, self.action_dim, self.hidden, self.gaussians = z_dim, action_dim, hidden, gaussians
        self.reward_kind, self.tile_reward, self.dropout = reward_kind, float(tile_reward), float(dropout)
        self.done_weight = float(done_weight)  # the weight deaths had in training: done_prob undoes it
        self.mixture = mixture
        if age_scale is not None and age_scale <= 0:
            raise ValueError(f"age_scale must be positive, got {age_scale}")
        self.age_scale = None if age_scale is None else float(age_scale)
        self.picks = 1 if mixture == "joint" else z_dim  # uniforms a sample needs to pick its component(s)
        self.lstm = nn.LSTM(z_dim + action_dim + (age_scale is not None), hidden, batch_first=True)
        weights = gaussians if mixture == "joint" else gaussians * z_dim
        self.head = nn.Linear(hidden, gaussians * 2 * z_dim + weights + 2)

    def config(self) -> dict[str, int | float | str]:
        """Constructor arguments, saved with the weights (a joint M without age input: as before either existed)."""
        cfg: dict[str, int | float | str] = {
            "z_dim": self.z_dim, "action_dim": self.action_dim, "hidden": self.hidden, "gaussians": self.gaussians,
            "reward_kind": self.reward_kind, "tile_reward": self.tile_reward, "dropout": self.dropout,
            "done_weight": self.done_weight}
        if self.mixture != "joint":
            cfg["mixture"] = self.mixture
        if self.age_scale is not None:
            cfg["age_scale"] = self.age_scale
        return cfg

    def inputs(self, z: torch.Tensor, actions: torch.Tensor, ages: Ages = None) -> torch.Tensor:
        """The LSTM's input for z (..., z) and actions (..., a): [z, a], or [z, a, age / age_scale] with age input.

        `ages` broadcasts to z.shape[:-1] (an int for one step of a whole batch); an M that reads ages needs them."""
        x = torch.cat([z, actions], dim=-1)
        if self.age_scale is None:
            return x
        if ages is None:
            raise ValueError("this M reads each step's age in its episode (mdrnn.age_scale): pass the ages")
        age = torch.as_tensor(ages, dtype=x.dtype, device=x.device).expand(z.shape[:-1]).unsqueeze(-1)
        return torch.cat([x, age / self.age_scale], dim=-1)

    def done_prob(self, heads: Heads) -> torch.Tensor:
        """P(done at t), calibrated: a logistic loss that counts positives w times shifts the logit by log w."""
        return torch.sigmoid(heads.done_logit - math.log(self.done_weight))

    def expected_reward(self, heads: Heads) -> torch.Tensor:
        """r_t as the dream pays it: the regressed value, STEP_REWARD + tile_reward * P(new tile), or +1 (survival)."""
        if self.reward_kind == "tile":
            return STEP_REWARD + self.tile_reward * torch.sigmoid(heads.reward)
        if self.reward_kind == "survival":
            return torch.ones_like(heads.reward)
        return heads.reward

    def heads(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> Heads:
        """Hidden states (..., hidden) to the head outputs; the one place that knows the head layout.

        `mask` (..., hidden) multiplies h first: a dropout mask fixed for a whole dream.
        """
        if mask is not None:
            h = h * mask
        out = self.head(h)
        k, z = self.gaussians, self.z_dim
        shape = out.shape[:-1]
        mus = out[..., : k * z].reshape(*shape, k, z)
        log_sigmas = out[..., k * z: 2 * k * z].reshape(*shape, k, z).clamp(-7.0, 3.0)
        logit_pi = (out[..., 2 * k * z: 2 * k * z + k] if self.mixture == "joint"
                    else out[..., 2 * k * z: 3 * k * z].reshape(*shape, k, z))
        return Heads(mus, log_sigmas, logit_pi, out[..., -2], out[..., -1])

    def forward(self, z: torch.Tensor, actions: torch.Tensor, state: State | None = None,
                ages: Ages = None) -> tuple[Heads, State]:
        """Sequences z (B, T, z) and actions (B, T, a) to head outputs per step and the final state.

        `ages` (B, T) are the steps' ages in their episodes; by default 0 .. T-1 (sequences from an episode's start)."""
        if ages is None:
            ages = torch.arange(z.shape[1], device=z.device)
        out, state = self.lstm(self.inputs(z, actions, ages), state)
        return self.heads(F.dropout(out, self.dropout, self.training)), state

    def unroll(self, z: torch.Tensor, actions: torch.Tensor, open_loop: int, uniform: torch.Tensor,
               normal: torch.Tensor, state: State | None = None, ages: torch.Tensor | None = None) -> Heads:
        """Head outputs per step for sequences (B, T, ...) where the last `open_loop` steps read M's own z.

        The first T - open_loop steps read the real z; from then on each step reads the z sampled from the previous
        step's mixture (at tau 1, with `uniform` (B, open_loop, picks) and `normal` (B, open_loop, z)), as in the dream.
        The sample is a differentiable function of the means and scales, so the losses of later steps train what M
        predicts now: M learns where its actions take it, not just the next frame given the real one."""
        steps = z.shape[1]
        real = steps - open_loop
        if open_loop == 0:
            return self(z, actions, state, ages)[0]
        if ages is None:
            ages = torch.arange(steps, device=z.device).expand(z.shape[:2])
        out, state = self.lstm(self.inputs(z[:, :real], actions[:, :real], ages[:, :real]), state)
        outs = [F.dropout(out, self.dropout, self.training)]
        z_in = sample(self.heads(outs[0][:, -1]), 1.0, uniform[:, 0], normal[:, 0])
        for i, t in enumerate(range(real, steps)):
            out, state = self.lstm(self.inputs(z_in, actions[:, t], ages[:, t]).unsqueeze(1), state)
            outs.append(F.dropout(out, self.dropout, self.training))
            if i + 1 < open_loop:
                z_in = sample(self.heads(outs[-1][:, 0]), 1.0, uniform[:, i + 1], normal[:, i + 1])
        return self.heads(torch.cat(outs, dim=1))

    def initial_state(self, batch: int = 1) -> State:
        """Zero (h, c) for a batch."""
        zeros = torch.zeros(1, batch, self.hidden)
        return zeros, zeros.clone()

    def advance(self, z: torch.Tensor, action: torch.Tensor, state: State, age: Ages = None) -> State:
        """Advance the LSTM one step for a batch (B, z), (B, a) at `age` (an int or (B,)); the agent needs only this."""
        _, state = self.lstm(self.inputs(z, action, age).unsqueeze(1), state)
        return state

    def step(self, z: torch.Tensor, action: torch.Tensor, state: State, temperature: float,
             uniform: torch.Tensor, normal: torch.Tensor, mask: torch.Tensor | None = None, age: Ages = None
             ) -> tuple[torch.Tensor, Heads, State]:
        """One imagined step for a batch (B, ...) at `age`: returns z_{t+1} sampled at tau, the heads, the new state."""
        state = self.advance(z, action, state, age)
        heads = self.heads(state[0][0], mask)
        return sample(heads, temperature, uniform, normal), heads, state


def _member(k: int) -> str:
    return f"member{k}."  # the prefix of ensemble member k's tensors in M's file (member 0 has none)


def save_mdrnn(path: str | Path, model: MDRNN, members: Sequence[MDRNN] = ()) -> None:
    """Save M as safetensors with its config; an ensemble's other members (same config) go in the same file."""
    if any(m.config() != model.config() for m in members):
        raise ValueError("every member of the ensemble must have the first M's config")
    tensors = dict(model.state_dict())
    for k, m in enumerate(members, 1):
        tensors.update({_member(k) + name: t for name, t in m.state_dict().items()})
    save_weights(path, tensors, model.config())


def _split(path: str | Path) -> tuple[list[dict[str, torch.Tensor]], dict]:
    state, cfg = load_weights(path)
    parts: list[dict[str, torch.Tensor]] = [{}]
    for name, t in state.items():
        k = int(name[len("member"):name.index(".")]) if name.startswith("member") else 0
        parts.extend({} for _ in range(k + 1 - len(parts)))
        parts[k][name.removeprefix(_member(k)) if k else name] = t
    return parts, cfg


def _build(state: dict[str, torch.Tensor], cfg: dict) -> MDRNN:
    model = MDRNN(**cfg)
    model.load_state_dict(state)
    return model.eval()


def load_ensemble(path: str | Path) -> list[MDRNN]:
    """Every M saved in M's file, in eval mode, member 0 (the M whose h C reads) first; one M for a single M."""
    parts, cfg = _split(path)
    return [_build(state, cfg) for state in parts]


def load_mdrnn(path: str | Path) -> MDRNN:
    """Load M in eval mode (of an ensemble, member 0: the M whose h C reads)."""
    parts, cfg = _split(path)
    return _build(parts[0], cfg)


def load_members(path: str | Path) -> list[MDRNN]:
    """The other members of the ensemble saved in M's file, in eval mode (none for a single M)."""
    return load_ensemble(path)[1:]
