"""Does the dream rank CarRacing policies as the real env does? Fixed policies, dream return against real return.

Plays a few fixed CarRacing actions (straight at several gas levels, hard turns) for `--steps` steps, in M's dream
(the profile's dream settings, `--dreams` dreams from the latents' first frames) and in the real env (`--episodes`
episodes on the evaluation seeds), and prints one markdown row per policy. A dream that pays a policy far more
than the real env does is a dream CMA-ES will exploit there.

Usage: python bench/dream_probe.py --params params.yaml --mdrnn models/iter0/mdrnn.safetensors
       --latents data/iter0/latents.npz [--steps 500] [--dreams 64] [--episodes 4]
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wm.config import load_params  # noqa: E402
from wm.controller import BatchedController  # noqa: E402
from wm.dream_fitness import DreamFitness  # noqa: E402
from wm.seeds import eval_seeds  # noqa: E402

POLICIES = {  # steer, gas, brake
    "idle": (0.0, 0.0, 0.0),
    "straight, gas 0.1": (0.0, 0.1, 0.0),
    "straight, gas 0.3": (0.0, 0.3, 0.0),
    "straight, gas 1.0": (0.0, 1.0, 0.0),
    "right 1.0, gas 1.0": (1.0, 1.0, 0.0),
    "left 1.0, gas 1.0": (-1.0, 1.0, 0.0),
    "right 0.3, gas 0.3": (0.3, 0.3, 0.0),
}


def constant_candidate(action: tuple[float, float, float], z_dim: int) -> np.ndarray:
    """A v_only C whose weights are zero and whose bias gives `action` after tanh and CarRacing's map."""
    raw = np.clip([action[0], 2 * action[1] - 1, 2 * action[2] - 1], -0.999999, 0.999999)
    return np.concatenate([np.zeros(3 * z_dim), np.arctanh(raw)])


def real_return(args: tuple[dict, tuple[float, float, float], int, int]) -> float:
    """Return of one real episode under a constant action (in a worker process)."""
    from wm.config import CarRacingConfig
    from wm.envs import make_env

    env_cfg, action, seed, steps = args
    env = make_env(CarRacingConfig(**env_cfg))
    try:
        env.reset(seed=seed)
        total = 0.0
        for _ in range(steps):
            _, r, term, trunc, _ = env.step(np.asarray(action, dtype=np.float32))
            total += float(r)
            if term or trunc:
                break
    finally:
        env.close()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--mdrnn", required=True)
    ap.add_argument("--latents", required=True)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--dreams", type=int, default=64)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    p = load_params(a.params)
    cfg = p.controller.model_copy(update={"arch": "v_only", "max_steps": a.steps})
    fitness = DreamFitness(a.mdrnn, a.latents, cfg, p.dream, p.env.id)
    dream = fitness.world()
    cands = np.stack([constant_candidate(act, dream.z_dim) for act in POLICIES.values()])
    policy = BatchedController("v_only", torch.as_tensor(cands, dtype=torch.float32), dream.z_dim, dream.hidden)
    result = dream.rollout(policy, list(range(a.dreams)))
    jobs = [(p.env.model_dump(), act, s, a.steps) for act in POLICIES.values() for s in eval_seeds(a.episodes)]
    with ProcessPoolExecutor(a.workers) as pool:
        real = np.asarray(list(pool.map(real_return, jobs))).reshape(len(POLICIES), a.episodes)
    print(f"tau {p.dream.temperature}, dropout {p.dream.dropout}, patience {p.dream.patience}, {a.steps} steps; "
          f"{a.dreams} dreams, {a.episodes} real episodes per policy")
    print("| policy | dream return | real return |")
    print("|---|---|---|")
    for i, name in enumerate(POLICIES):
        d = result.returns[i].numpy()
        print(f"| {name} | {d.mean():.1f} ± {d.std():.1f} | {real[i].mean():.1f} ± {real[i].std():.1f} |")


if __name__ == "__main__":
    main()
