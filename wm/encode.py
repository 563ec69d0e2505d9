"""Encode every rollout into per-frame (mu, logsigma) for training M."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wm.io import load_npz, save_npz
from wm.rollouts import list_rollouts
from wm.vae import ConvVAE, to_input


def encode_frames(model: ConvVAE, frames: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (T, 64, 64, 3) to float32 (mu, logvar), each (T, z), on the device the model is on."""
    mus, logvars = [], []
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(frames), batch):
            mu, logvar = model.encode(to_input(torch.from_numpy(frames[i:i + batch]).to(device)))
            mus.append(mu.cpu().numpy())
            logvars.append(logvar.cpu().numpy())
    return np.concatenate(mus).astype(np.float32), np.concatenate(logvars).astype(np.float32)


KEYS = ("mu", "logsigma", "actions", "rewards", "dones")


def encode_rollouts(model: ConvVAE, rollouts_dir: str | Path, out_path: str | Path, progress: bool = True,
                    previous: dict[str, np.ndarray] | None = None) -> dict[str, int]:
    """Write one .npz holding mu, logsigma, actions, rewards, dones (concatenated) and per-rollout lengths.

    With `previous` (an earlier latents file's arrays) the new rollouts are appended after its rollouts, so an
    iteration's latents hold every rollout so far.
    """
    paths = list_rollouts(rollouts_dir)
    if not paths:
        raise FileNotFoundError(f"{rollouts_dir}: no rollout files (run the collect stage first)")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    lengths: list[int] = []
    if previous is not None:
        for key in KEYS:
            parts[key].append(np.asarray(previous[key]))
        lengths.extend(int(n) for n in previous["lengths"])
    for path in tqdm(paths, desc="encode", unit="rollout", disable=not progress):
        r = load_npz(path)
        mu, logvar = encode_frames(model, r["frames"])
        parts["mu"].append(mu)
        parts["logsigma"].append(0.5 * logvar)
        for key in ("actions", "rewards", "dones"):
            parts[key].append(r[key])
        lengths.append(len(mu))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    save_npz(out_path, lengths=np.asarray(lengths, dtype=np.int64), **arrays)
    return {"rollouts": len(lengths), "new_rollouts": len(paths), "frames": int(sum(lengths))}
