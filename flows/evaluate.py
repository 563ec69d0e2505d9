"""Stage `evaluate`: score the trained agent in the real environment on held-out seeds; register it."""
from __future__ import annotations

from flows.runtime import gather
from ops.registry import register_agent
from ops.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.agent import load_agent, run_episode
from wm.config import EnvConfig, load_params
from wm.evaluate import summarize
from wm.io import write_json
from wm.seeds import eval_seeds


@task(cache_policy=NO_CACHE)
def play_one(env_cfg: EnvConfig, weights: dict[str, str], seed: int, max_steps: int) -> float:
    """Return of one full evaluation episode."""
    import torch

    torch.set_num_threads(1)
    agent = load_agent(weights["vae"], weights["mdrnn"], weights["controller"])
    return run_episode(agent, env_cfg, seed, max_steps)["return"]


@flow(name="evaluate", log_prints=True)
def evaluate_flow(vae: str, mdrnn: str, controller: str, metrics: str, params_path: str = "params.yaml") -> dict:
    """Play evaluate.episodes episodes on the fixed evaluation seeds, write the metrics, register the agent."""
    p = load_params(params_path)
    seeds = eval_seeds(p.evaluate.episodes)
    weights = {"vae": vae, "mdrnn": mdrnn, "controller": controller}
    with stage_run("evaluate", {"env": p.env.model_dump(), "evaluate": p.evaluate.model_dump()}) as ml:
        futures = [play_one.submit(p.env, weights, s, p.evaluate.max_steps) for s in seeds]
        result = summarize(gather(futures, "evaluate", "episode"), seeds)
        print(f"evaluation: {result['mean']:.1f} +- {result['std']:.1f} over {result['episodes']} episodes")
        ml.log_metrics({f"eval_{k}": result[k] for k in ("mean", "std", "min", "max")})
        write_json(metrics, result)
        register_agent(weights, {"crop_rows": p.env.crop_rows, "frame_size": p.env.frame_size}, result,
                       p.model_dump())
    return result
