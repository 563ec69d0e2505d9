"""Rollout files: where they live, what settings made them, and reading their frames.

A rollout is one compressed .npz per episode (uint8 frames, actions, rewards, dones) plus `meta`: a JSON string of
the settings that made it, so a stage can tell a reusable file from a stale one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wm.io import load_npz

FORMAT = 1  # bump when the meaning of a rollout file changes: older files are collected again


def rollout_path(out_dir: str | Path, index: int) -> Path:
    """Where rollout `index` lives."""
    return Path(out_dir) / f"rollout_{index:05d}.npz"


def rollout_index(path: Path) -> int:
    """The index in a rollout file name."""
    return int(path.stem.split("_")[1])


def list_rollouts(out_dir: str | Path) -> list[Path]:
    """Finished rollout files in index order (temporary files are ignored)."""
    return sorted(Path(out_dir).glob("rollout_*.npz"))


def encode_meta(meta: dict[str, Any]) -> np.ndarray:
    """The settings dict as a unicode array (stored without pickle)."""
    return np.array(json.dumps({"format": FORMAT, **meta}, sort_keys=True))


def read_meta(path: str | Path) -> dict[str, Any] | None:
    """The settings a rollout was made with; None if the file has none or cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"].reshape(-1)[0])) if "meta" in data.files else None
    except Exception:  # unreadable: truncated, not a zip, bad JSON; the caller collects it again
        return None


def rollout_steps(path: str | Path) -> int:
    """Number of env steps in a rollout file (reads only its rewards)."""
    return len(rollout_rewards(path))


def rollout_rewards(path: str | Path) -> np.ndarray:
    """A rollout's rewards, one per step (reads only that array)."""
    with np.load(path, allow_pickle=False) as data:
        return np.asarray(data["rewards"])
