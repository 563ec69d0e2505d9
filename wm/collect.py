"""Random-policy rollouts, one compressed file per rollout, reproducible per (settings, index).

A file is reused only if it passes its check (wm.verify) and was made with the same settings (seed, env, policy
and its knobs, steps); any other file at that index is collected again. Raising the count collects only the new indices.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from wm.config import CollectConfig, EnvConfig
from wm.envs import make_env
from wm.io import remove_stale_tmp, save_npz
from wm.policies import make_policy
from wm.rollouts import FORMAT, encode_meta, list_rollouts, read_meta, rollout_index, rollout_path
from wm.seeds import COLLECT, derive_seed
from wm.verify import DataError, check_rollout


def rollout_settings(env_cfg: EnvConfig, cfg: CollectConfig, seed: int, index: int) -> dict[str, Any]:
    """Everything that decides rollout `index`'s bytes (the renderer does not: fast and stock are identical)."""
    env = env_cfg.model_dump(exclude={"fast_render"})
    return {"seed": seed, "index": index, "env": env, "collect": cfg.knobs()}


def prepare_dir(out_dir: str | Path, count: int) -> list[Path]:
    """Clear a killed run's temporary files and drop rollouts beyond `count`; return the dropped paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    surplus = [p for p in list_rollouts(out) if rollout_index(p) >= count]
    for p in surplus:
        p.unlink()
    return surplus


def files_to_make(out_dir: str | Path, count: int, settings: Callable[[int], dict[str, Any]]
                  ) -> tuple[list[int], list[int], dict[int, str]]:
    """(missing, stale, corrupt) indices in [0, count): no file, a file whose meta is not settings(index), and a
    file that fails its check (truncated, a CRC mismatch, arrays of different lengths) with what is wrong."""
    missing, stale, corrupt = [], [], {}
    for i in range(count):
        path = rollout_path(out_dir, i)
        if not path.exists():
            missing.append(i)
            continue
        try:
            check_rollout(path)
        except DataError as exc:
            corrupt[i] = str(exc)
            continue
        if read_meta(path) != {"format": FORMAT, **settings(i)}:
            stale.append(i)
    return missing, stale, corrupt


def todo_indices(out_dir: str | Path, env_cfg: EnvConfig, cfg: CollectConfig, seed: int
                 ) -> tuple[list[int], list[int], dict[int, str]]:
    """(missing, stale, corrupt) random-policy rollouts: no file, a file made under other settings, a bad file."""
    return files_to_make(out_dir, cfg.rollouts, lambda i: rollout_settings(env_cfg, cfg, seed, i))


def collect_rollout(env_cfg: EnvConfig, cfg: CollectConfig, seed: int, index: int, out_dir: str | Path) -> dict:
    """Play one random-policy rollout and write it atomically; return a small summary."""
    rseed = derive_seed(seed, COLLECT, index)
    rng = np.random.default_rng(rseed)
    policy = make_policy(cfg, env_cfg.id, rng)
    return record_rollout(env_cfg, policy, rseed, cfg.max_steps, rollout_path(out_dir, index),
                          rollout_settings(env_cfg, cfg, seed, index)) | {"index": index}


def record_rollout(env_cfg: EnvConfig, policy: Callable[[np.ndarray], np.ndarray], env_seed: int, max_steps: int,
                   path: Path, settings: dict[str, Any]) -> dict:
    """Play `policy` for up to max_steps and write frames, actions, rewards, dones and meta atomically."""
    env = make_env(env_cfg)
    try:
        frame, _ = env.reset(seed=env_seed)
        frames, actions, rewards, dones = [], [], [], []
        for _ in range(max_steps):
            action = policy(frame)
            nxt, reward, terminated, truncated, _ = env.step(action)
            frames.append(frame)
            actions.append(action)
            rewards.append(reward)
            dones.append(terminated)
            frame = nxt
            if terminated:  # off the playfield or every tile visited: nothing valid follows
                break
    finally:
        env.close()
    save_npz(
        path,
        frames=np.stack(frames).astype(np.uint8),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        dones=np.asarray(dones, dtype=bool),
        meta=encode_meta(settings),
    )
    return {"seed": env_seed, "steps": len(frames), "return": float(np.sum(rewards))}
