"""Load and save the pipeline's trained models (safetensors plus their config)."""
from __future__ import annotations

from pathlib import Path


from wm.controller import Controller
from wm.io import load_weights, save_weights
from wm.mdrnn import MDRNN
from wm.vae import ConvVAE


def save_vae(path: str | Path, model: ConvVAE) -> None:
    """Save V."""
    save_weights(path, model, {"z_dim": model.z_dim})


def load_vae(path: str | Path) -> ConvVAE:
    """Load V in eval mode."""
    state, cfg = load_weights(path)
    model = ConvVAE(**cfg)
    model.load_state_dict(state)
    return model.eval()


def save_mdrnn(path: str | Path, model: MDRNN) -> None:
    """Save M."""
    save_weights(path, model, {"z_dim": model.z_dim, "action_dim": model.action_dim,
                               "hidden": model.hidden, "gaussians": model.gaussians})


def load_mdrnn(path: str | Path) -> MDRNN:
    """Load M in eval mode."""
    state, cfg = load_weights(path)
    model = MDRNN(**cfg)
    model.load_state_dict(state)
    return model.eval()


def save_controller(path: str | Path, model: Controller) -> None:
    """Save C."""
    save_weights(path, model, model.config())


def load_controller(path: str | Path) -> Controller:
    """Load C in eval mode."""
    state, cfg = load_weights(path)
    model = Controller(**cfg)
    model.load_state_dict(state)
    return model.eval()


