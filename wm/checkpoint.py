"""Resumable training: one checkpoint file per stage, outside DVC's outs, written atomically without pickle.

A checkpoint is a safetensors file: tensors (weights, optimizer moments, RNG states) plus JSON metadata (history,
counters) and a `key`, a digest of everything that decides the stage's result (its params, its input files, its flow
file and the wm code). A checkpoint with another key is stale and ignored, so a change to the stage's deps or params
starts afresh.
The stage deletes its checkpoint once its outputs are written.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from wm.io import atomic_path

CODE = Path(__file__).parent  # every wm module: a code change discards checkpoints (conservative)


def checkpoint_dir() -> Path:
    """Where checkpoints live: $WM_CHECKPOINTS, or .checkpoints/ in the working directory (the project root)."""
    return Path(os.environ.get("WM_CHECKPOINTS", ".checkpoints"))


def _file_stamp(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def fingerprint(config: Any, inputs: list[str | Path]) -> str:
    """A digest of `config` (JSON-able), the input files or folders (names, sizes, mtimes) and the wm code."""
    stamps: list[Any] = []
    for item in inputs:
        item = Path(item)
        files = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        stamps.extend(_file_stamp(p) for p in files)
    code = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(CODE.rglob("*.py"))}
    blob = json.dumps({"config": config, "inputs": stamps, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Checkpoint:
    """The checkpoint of one stage run (`name`, e.g. "vae" or "controller_iter@2") under `key`."""

    def __init__(self, name: str, key: str, root: Path | None = None) -> None:
        self.path = (root or checkpoint_dir()) / f"{name}.safetensors"
        self.key = key

    def load(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """(tensors, state) of a checkpoint made under this key; None if there is none, or it is stale or unreadable."""
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("key") != self.key:
                    return None
                return {k: f.get_tensor(k) for k in f.keys()}, json.loads(meta["state"])
        except (SafetensorError, OSError, ValueError, KeyError):
            return None  # a half-written file cannot exist (atomic), but a damaged disk can: start afresh

    def save(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Replace the checkpoint atomically."""
        clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        with atomic_path(self.path) as tmp:
            save_file(clean, str(tmp), metadata={"key": self.key, "state": json.dumps(state)})

    def part(self, k: int) -> "Checkpoint":
        """The checkpoint of part k of the stage (an ensemble's member k), under the same key; part 0 is this one."""
        return self if k == 0 else Checkpoint(f"{self.path.stem}.part{k}", self.key, self.path.parent)

    def clear(self) -> None:
        """Delete the checkpoint and its parts (the stage finished)."""
        for path in [self.path, *self.path.parent.glob(f"{glob.escape(self.path.stem)}.part*.safetensors")]:
            path.unlink(missing_ok=True)


def stage_checkpoint(name: str, config: Any, inputs: list[str | Path]) -> Checkpoint:
    """The checkpoint of stage `name` for these params and input files."""
    return Checkpoint(name, fingerprint({"stage": name, **config}, inputs))


def flat_state(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state_dict into named tensors and a JSON-able rest."""
    tensors, rest = {}, {"param_groups": state["param_groups"], "state": {}}
    for idx, slots in state["state"].items():
        rest["state"][str(idx)] = {}
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{name}"] = value
            else:
                rest["state"][str(idx)][name] = value
    return tensors, rest


def unflat_state(prefix: str, tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    """The inverse of flat_state."""
    state: dict[int, dict[str, Any]] = {}
    for idx, slots in rest["state"].items():
        state[int(idx)] = dict(slots)
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def training_state(model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator
                   ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights, optimizer moments and both RNG states (the loop's generator and torch's global one)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_rest = flat_state("opt", opt.state_dict())
    tensors.update(opt_tensors)
    tensors["rng.gen"], tensors["rng.global"] = gen.get_state(), torch.get_rng_state()
    return tensors, {"opt": opt_rest}


def restore_training(model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                     tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Put back what training_state saved."""
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    opt.load_state_dict(unflat_state("opt", tensors, state["opt"]))
    gen.set_state(tensors["rng.gen"])
    torch.set_rng_state(tensors["rng.global"])
