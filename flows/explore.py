"""Stage `explore@k`: iteration k's real rollouts, driven by iteration k-1's agent plus smooth noise; a task each."""
from __future__ import annotations

import time

from flows.runtime import gather
from ops.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.collect import prepare_dir
from wm.config import EnvConfig, IterateConfig, load_params
from wm.explore import explore_rollout, explore_todo
from wm.io import write_json
from wm.rollouts import list_rollouts, rollout_steps


@task(cache_policy=NO_CACHE)
def explore_one(env_cfg: EnvConfig, cfg: IterateConfig, seed: int, iteration: int, index: int,
                weights: dict[str, str], out: str) -> dict:
    """Play and write exploration rollout `index`."""
    return explore_rollout(env_cfg, cfg, seed, iteration, index, weights, out)


@flow(name="explore", log_prints=True)
def explore_flow(vae: str, mdrnn: str, controller: str, out: str, metrics: str, iteration: str,
                 params_path: str = "params.yaml") -> dict:
    """Collect iterate.rollouts rollouts into `out` with the previous iteration's agent; reuse what it made before."""
    p = load_params(params_path)
    k = int(iteration)
    weights = {"vae": vae, "mdrnn": mdrnn, "controller": controller}
    with stage_run(f"explore@{k}", {"seed": p.seed, "env": p.env.model_dump(),
                                    "iterate": p.iterate.model_dump(), "iteration": k}) as ml:
        dropped = prepare_dir(out, p.iterate.rollouts)
        missing, stale, corrupt = explore_todo(out, p.env, p.iterate, p.seed, k, weights)
        for problem in corrupt.values():
            print(f"{problem}: playing it again")
        todo = sorted(missing + stale + list(corrupt))
        print(f"iteration {k}: {len(todo)} rollouts to play with C_{k - 1} + noise {p.iterate.noise_at(k):.3g} "
              f"({p.iterate.rollouts - len(todo)} reused, {len(stale)} made by another agent or settings, "
              f"{len(corrupt)} corrupt, {len(dropped)} surplus removed)")
        t0 = time.perf_counter()
        futures = [explore_one.submit(p.env, p.iterate, p.seed, k, i, weights, out) for i in todo]
        done = gather(futures, f"explore {k}", "rollout")
        seconds = time.perf_counter() - t0
        files = list_rollouts(out)
        result = {"iteration": k, "noise": p.iterate.noise_at(k), "rollouts": len(files), "collected": len(done),
                  "recollected_stale": len(stale), "recollected_corrupt": len(corrupt),
                  "real_steps": sum(rollout_steps(f) for f in files), "seconds": seconds,
                  "mean_return": sum(d["return"] for d in done) / len(done) if done else None}
        ml.log_metrics({k_: v for k_, v in result.items() if isinstance(v, (int, float))})
        write_json(metrics, result)
    return result
