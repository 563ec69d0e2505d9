"""Encode every rollout into per-frame (mu, logsigma) for training M."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from wm.collect import list_rollouts
from wm.io import load_npz, save_npz
from wm.train_vae import encode_frames
from wm.vae import ConvVAE


def encode_rollouts(model: ConvVAE, rollouts_dir: str | Path, out_path: str | Path,
                    progress: bool = True) -> dict[str, int]:
    """Write one .npz holding mu, logsigma, actions, rewards, dones (concatenated) and per-rollout lengths."""
    paths = list_rollouts(rollouts_dir)
    if not paths:
        raise FileNotFoundError(f"{rollouts_dir}: no rollout files (run the collect stage first)")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("mu", "logsigma", "actions", "rewards", "dones")}
    lengths = []
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
    return {"rollouts": len(paths), "frames": int(sum(lengths))}
