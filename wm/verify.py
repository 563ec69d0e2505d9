"""Check data and model files before trusting them: readable, complete, and of the shape their reader expects.

A rollout or latents .npz is a zip whose every member carries a CRC-32: reading a member to its end checks it, so a
truncated file (no central directory) and a corrupt one (a CRC mismatch) are both caught here, with the file named.
Light on purpose (numpy only): every stage runs these checks before its heavy imports.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

ROLLOUT_KEYS = ("actions", "dones", "frames", "meta", "rewards")
LATENT_KEYS = ("actions", "dones", "lengths", "logsigma", "mu", "rewards")


class DataError(ValueError):
    """A data or model file that fails its check; the message names the file and what is wrong."""


def read_npz(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every array of an .npz, CRC-checked and without pickle; DataError unless it holds exactly `keys`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with zipfile.ZipFile(path) as zf:
            arrays = {}
            for name in zf.namelist():
                with zf.open(name) as member:  # reading to the end checks the member's CRC-32
                    arrays[name.removesuffix(".npy")] = np.lib.format.read_array(member, allow_pickle=False)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable, truncated or corrupt ({exc})") from None
    if tuple(sorted(arrays)) != tuple(sorted(keys)):
        raise DataError(f"{path}: holds {sorted(arrays)}, expected {sorted(keys)}")
    return arrays


def _same_length(path: Path, arrays: dict[str, np.ndarray], keys: tuple[str, ...], length: int) -> None:
    for key in keys:
        if len(arrays[key]) != length:
            raise DataError(f"{path}: incomplete: {key} has {len(arrays[key])} rows, expected {length}")


def check_rollout(path: str | Path) -> dict[str, np.ndarray]:
    """A rollout's arrays, after checking that frames, actions, rewards and dones describe the same steps."""
    path = Path(path)
    r = read_npz(path, ROLLOUT_KEYS)
    frames = r["frames"]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise DataError(f"{path}: frames are {frames.dtype} {frames.shape}, expected uint8 (T, H, W, 3) with T >= 1")
    _same_length(path, r, ("actions", "rewards", "dones"), len(frames))
    return r


def check_rollouts(directory: str | Path) -> int:
    """Check every rollout file in `directory`; return how many there are (DataError on the first bad one)."""
    paths = sorted(Path(directory).glob("rollout_*.npz"))  # as wm.rollouts.list_rollouts, without importing torch
    if not paths:
        raise DataError(f"{directory}: no rollout files")
    for path in paths:
        check_rollout(path)
    return len(paths)


def check_latents(path: str | Path) -> dict[str, np.ndarray]:
    """A latents file's arrays, after checking that its per-rollout lengths add up to its rows."""
    path = Path(path)
    lat = read_npz(path, LATENT_KEYS)
    total = int(np.sum(lat["lengths"]))
    if lat["mu"].ndim != 2 or lat["logsigma"].shape != lat["mu"].shape:
        raise DataError(f"{path}: mu {lat['mu'].shape} and logsigma {lat['logsigma'].shape} must be the same (N, z)")
    _same_length(path, lat, ("mu", "actions", "rewards", "dones"), total)
    return lat


def check_weights(path: str | Path) -> None:
    """A safetensors file opens and every tensor in it reads."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="numpy") as f:  # numpy, not torch: the weights are float32
            for key in f.keys():
                f.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable, truncated or corrupt ({exc})") from None
