"""Stage `collect`: random-policy rollouts in CarRacing, one Prefect task per rollout."""
from __future__ import annotations

import time

from flows.runtime import gather
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.collect import collect_rollout, list_rollouts, missing_indices, prepare_dir
from wm.config import CollectConfig, EnvConfig, load_params
from wm.io import write_json

OUT_DIR = "data/rollouts"
METRICS = "metrics/collect.json"


@task(cache_policy=NO_CACHE)
def collect_one(env_cfg: EnvConfig, cfg: CollectConfig, seed: int, index: int) -> dict:
    """Collect and write rollout `index`."""
    return collect_rollout(env_cfg, cfg, seed, index, OUT_DIR)


@flow(name="collect", log_prints=True)
def collect_flow(params_path: str = "params.yaml") -> dict:
    """Collect the rollouts that are missing; drop any beyond the requested count."""
    from flows.tracking import stage_run

    p = load_params(params_path)
    with stage_run("collect", {"seed": p.seed, "env": p.env.model_dump(), "collect": p.collect.model_dump()}) as ml:
        dropped = prepare_dir(OUT_DIR, p.collect.rollouts)
        todo = missing_indices(OUT_DIR, p.collect.rollouts)
        print(f"{len(todo)} rollouts to collect ({p.collect.rollouts - len(todo)} already on disk,"
              f" {len(dropped)} surplus removed)")
        t0 = time.perf_counter()
        futures = [collect_one.submit(p.env, p.collect, p.seed, i) for i in todo]
        done = gather(futures, "collect", "rollout")
        seconds = time.perf_counter() - t0
        steps = sum(d["steps"] for d in done)
        metrics = {"rollouts": len(list_rollouts(OUT_DIR)), "collected": len(done), "steps_collected": steps,
                   "seconds": seconds, "steps_per_s": steps / seconds if done else 0.0,
                   "mean_random_return": sum(d["return"] for d in done) / len(done) if done else None}
        ml.log_metrics({k: v for k, v in metrics.items() if v is not None})
        write_json(METRICS, metrics)
    return metrics

