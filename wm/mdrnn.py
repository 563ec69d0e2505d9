"""M: an LSTM whose outputs parameterise a Gaussian mixture over z_{t+1}, plus reward and done heads."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

State = tuple[torch.Tensor, torch.Tensor]


def gmm_nll(target: torch.Tensor, mus: torch.Tensor, log_sigmas: torch.Tensor,
            logit_pi: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of target (..., z) under K diagonal Gaussians (..., K, z), weights logit_pi (..., K).

    Returns the NLL summed over z, one value per leading index.
    """
    t = target.unsqueeze(-2)
    log_prob = -0.5 * ((t - mus) / log_sigmas.exp()).pow(2) - log_sigmas - 0.5 * math.log(2 * math.pi)
    log_mix = F.log_softmax(logit_pi, dim=-1) + log_prob.sum(-1)
    return -torch.logsumexp(log_mix, dim=-1)


class MDRNN(nn.Module):
    """LSTM over [z_t, a_t]; heads for a K-component mixture over z_{t+1}, reward r_t and done d_t."""

    def __init__(self, z_dim: int = 32, action_dim: int = 3, hidden: int = 256, gaussians: int = 5) -> None:
        super().__init__()
        self.z_dim, self.action_dim, self.hidden, self.gaussians = z_dim, action_dim, hidden, gaussians
        self.lstm = nn.LSTM(z_dim + action_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, gaussians * (2 * z_dim + 1) + 2)

    def split_head(self, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Head output (..., H') to (mus, log_sigmas, logit_pi, reward, done_logit)."""
        k, z = self.gaussians, self.z_dim
        shape = out.shape[:-1]
        mus = out[..., : k * z].reshape(*shape, k, z)
        log_sigmas = out[..., k * z: 2 * k * z].reshape(*shape, k, z).clamp(-7.0, 3.0)
        logit_pi = out[..., 2 * k * z: 2 * k * z + k]
        return mus, log_sigmas, logit_pi, out[..., -2], out[..., -1]

    def forward(self, z: torch.Tensor, actions: torch.Tensor, state: State | None = None
                ) -> tuple[tuple[torch.Tensor, ...], State]:
        """Sequences z (B, T, z) and actions (B, T, a) to head outputs per step and the final state."""
        out, state = self.lstm(torch.cat([z, actions], dim=-1), state)
        return self.split_head(self.head(out)), state

    def initial_state(self, batch: int = 1) -> State:
        """Zero (h, c) for a batch."""
        zeros = torch.zeros(1, batch, self.hidden)
        return zeros, zeros.clone()

    def step_hidden(self, z: torch.Tensor, action: torch.Tensor, state: State) -> State:
        """Advance the LSTM one step for a batch (B, z), (B, a); heads are skipped (the agent only needs h)."""
        _, state = self.lstm(torch.cat([z, action], dim=-1).unsqueeze(1), state)
        return state


def sample_next_z(mus: torch.Tensor, log_sigmas: torch.Tensor, logit_pi: torch.Tensor, temperature: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw z_{t+1} (B, z) with temperature: logits divided by tau, noise scaled by sqrt(tau)."""
    probs = F.softmax(logit_pi / temperature, dim=-1)
    k = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    idx = k[:, None, None].expand(-1, 1, mus.shape[-1])
    mu = mus.gather(1, idx).squeeze(1)
    sigma = log_sigmas.gather(1, idx).squeeze(1).exp()
    noise = torch.randn(mu.shape, generator=generator)
    return mu + sigma * noise * math.sqrt(temperature)
