"""Random-policy rollouts, one compressed file per rollout, reproducible per (seed, index)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from wm.config import CollectConfig, EnvConfig
from wm.env import make_env
from wm.io import load_npz, remove_stale_tmp, save_npz
from wm.policies import BrownianPolicy, RandomWeightsPolicy
from wm.seeds import COLLECT, derive_seed


def rollout_path(out_dir: str | Path, index: int) -> Path:
    """Where rollout `index` lives."""
    return Path(out_dir) / f"rollout_{index:05d}.npz"


def list_rollouts(out_dir: str | Path) -> list[Path]:
    """Finished rollout files in index order (temporary files are ignored)."""
    return sorted(Path(out_dir).glob("rollout_*.npz"))


def missing_indices(out_dir: str | Path, count: int) -> list[int]:
    """Indices in [0, count) that have no finished file yet."""
    return [i for i in range(count) if not rollout_path(out_dir, i).exists()]


def prepare_dir(out_dir: str | Path, count: int) -> list[Path]:
    """Clear a killed run's temporary files and drop rollouts beyond `count`; return the dropped paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out)
    surplus = [p for p in list_rollouts(out) if int(p.stem.split("_")[1]) >= count]
    for p in surplus:
        p.unlink()
    return surplus


def collect_rollout(env_cfg: EnvConfig, cfg: CollectConfig, seed: int, index: int, out_dir: str | Path) -> dict:
    """Play one random-policy rollout and write it atomically; return a small summary."""
    rseed = derive_seed(seed, COLLECT, index)
    rng = np.random.default_rng(rseed)
    policy = (BrownianPolicy(rng, cfg.brownian_dt, cfg.gas_bias) if cfg.policy == "brownian"
              else RandomWeightsPolicy(rng, cfg.gas_bias))
    env = make_env(env_cfg)
    try:
        frame, _ = env.reset(seed=rseed)
        frames, actions, rewards, dones = [], [], [], []
        for _ in range(cfg.max_steps):
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
        rollout_path(out_dir, index),
        frames=np.stack(frames).astype(np.uint8),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, dtype=np.float32),
        dones=np.asarray(dones, dtype=bool),
    )
    return {"index": index, "seed": rseed, "steps": len(frames), "return": float(np.sum(rewards))}


def load_frames(out_dir: str | Path, max_frames: int | None = None, seed: int = 0) -> np.ndarray:
    """All frames of all rollouts as one uint8 array (N, 64, 64, 3), optionally subsampled."""
    paths = list_rollouts(out_dir)
    if not paths:
        raise FileNotFoundError(f"{out_dir}: no rollout files (run the collect stage first)")
    frames = np.concatenate([load_npz(p)["frames"] for p in paths])
    if max_frames is not None and len(frames) > max_frames:
        keep = np.random.default_rng(seed).choice(len(frames), max_frames, replace=False)
        frames = frames[np.sort(keep)]
    return frames
