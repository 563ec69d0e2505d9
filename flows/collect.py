"""Stage `collect`: random-policy rollouts in CarRacing, one Prefect task per rollout."""
from __future__ import annotations

import time

import numpy as np

from flows.runtime import gather
from ops.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.collect import collect_rollout, prepare_dir, todo_indices
from wm.config import CollectConfig, EnvConfig, load_params
from wm.io import write_json
from wm.rollouts import list_rollouts, rollout_rewards


@task(cache_policy=NO_CACHE)
def collect_one(env_cfg: EnvConfig, cfg: CollectConfig, seed: int, index: int, out: str) -> dict:
    """Collect and write rollout `index`."""
    return collect_rollout(env_cfg, cfg, seed, index, out)


@flow(name="collect", log_prints=True)
def collect_flow(out: str, metrics: str, params_path: str = "params.yaml") -> dict:
    """Collect into `out` the rollouts that are missing or were made with other settings; drop any beyond the count."""
    p = load_params(params_path)
    with stage_run("collect", {"seed": p.seed, "env": p.env.model_dump(), "collect": p.collect.model_dump()}) as ml:
        dropped = prepare_dir(out, p.collect.rollouts)
        missing, stale, corrupt = todo_indices(out, p.env, p.collect, p.seed)
        for problem in corrupt.values():
            print(f"{problem}: collecting it again")
        todo = sorted(missing + stale + list(corrupt))
        print(f"{len(todo)} rollouts to collect: {len(missing)} missing, {len(stale)} made with other settings, "
              f"{len(corrupt)} corrupt ({p.collect.rollouts - len(todo)} reused, {len(dropped)} surplus removed)")
        t0 = time.perf_counter()
        futures = [collect_one.submit(p.env, p.collect, p.seed, i, out) for i in todo]
        done = gather(futures, "collect", "rollout")
        seconds = time.perf_counter() - t0
        steps = sum(d["steps"] for d in done)
        rewards = [rollout_rewards(f) for f in list_rollouts(out)]  # the whole dataset, reused rollouts too
        result = {"rollouts": len(rewards), "collected": len(done), "recollected_stale": len(stale),
                  "recollected_corrupt": len(corrupt), "steps": sum(len(r) for r in rewards),
                  "steps_collected": steps, "seconds": seconds, "steps_per_s": steps / seconds if done else 0.0,
                  "mean_random_return": float(np.mean([r.sum(dtype=np.float64) for r in rewards]))}
        ml.log_metrics(result)
        write_json(metrics, result)
    return result
