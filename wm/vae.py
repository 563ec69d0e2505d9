"""V: the convolutional VAE of the paper (64x64x3 frames <-> z)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from wm.io import load_weights, save_weights


class ConvVAE(nn.Module):
    """Four stride-2 convs to (mu, logvar); a dense layer and four deconvs back to pixels."""

    def __init__(self, z_dim: int = 32) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        self.fc_mu = nn.Linear(1024, z_dim)
        self.fc_logvar = nn.Linear(1024, z_dim)
        self.fc_dec = nn.Linear(z_dim, 1024)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, 64, 64) in [0, 1] to (mu, logvar), each (B, z)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (B, z) to images (B, 3, 64, 64) in [0, 1]."""
        return self.decoder(self.fc_dec(z).view(-1, 1024, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct x through a reparameterised sample; return (recon, mu, logvar)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def to_input(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, 64, 64, 3) to float (B, 3, 64, 64) in [0, 1]."""
    # contiguous NCHW: a channels-last view sends conv2d down a path ~4x slower at batch 1
    return frames_uint8.permute(0, 3, 1, 2).contiguous().float().div_(255.0)


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             kl_tolerance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed squared error plus KL floored at kl_tolerance * z, averaged over the batch.

    Returns (loss, reconstruction term, raw KL) so both parts can be logged.
    """
    rec = F.mse_loss(recon.float(), x, reduction="none").sum(dim=(1, 2, 3))
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)
    floor = kl_tolerance * mu.shape[1]
    loss = rec + torch.clamp(kl, min=floor)
    return loss.mean(), rec.mean(), kl.mean()


def save_vae(path: str | Path, model: ConvVAE) -> None:
    """Save V as safetensors with its config."""
    save_weights(path, model, {"z_dim": model.z_dim})


def load_vae(path: str | Path) -> ConvVAE:
    """Load V in eval mode."""
    state, cfg = load_weights(path)
    model = ConvVAE(**cfg)
    model.load_state_dict(state)
    return model.eval()
