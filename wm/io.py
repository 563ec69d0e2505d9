"""Atomic, deterministic, pickle-free file I/O for rollouts, weights and metrics."""
from __future__ import annotations

import io
import json
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

TMP_MARK = ".tmp-"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary path next to `path`; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_tmp(directory: str | Path) -> int:
    """Delete temporary files a killed run left behind in `directory`; return how many."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    stale = [p for p in directory.iterdir() if p.name.startswith(".") and TMP_MARK in p.name]
    for p in stale:
        p.unlink()
    return len(stale)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write a compressed .npz atomically, byte-identical for identical arrays (fixed zip timestamps)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue(), compresslevel=6)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz written by save_npz (pickle disabled)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically with stable formatting."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_weights(path: str | Path, module: torch.nn.Module | Mapping[str, torch.Tensor],
                 config: dict[str, Any]) -> None:
    """Save a module's weights (or named tensors) as safetensors, with its constructor config in the metadata."""
    tensors = module.state_dict() if isinstance(module, torch.nn.Module) else module
    state = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(config, sort_keys=True)})


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load safetensors weights and the config stored beside them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found (run the stage that produces it first)")
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        config = json.loads((f.metadata() or {}).get("config", "{}"))
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    return tensors, config


def read_json(path: str | Path) -> Any:
    """Parse a JSON file."""
    return json.loads(Path(path).read_text())
