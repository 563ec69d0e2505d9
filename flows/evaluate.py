"""Stage `evaluate`: score the trained agent in the real environment on held-out seeds."""
from __future__ import annotations

from flows.registry import register_agent
from flows.runtime import gather
from flows.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.agent import load_agent, run_episode
from wm.config import EnvConfig, load_params
from wm.evaluate import summarize
from wm.io import write_json
from wm.seeds import eval_seeds

VAE, MDRNN, CONTROLLER = "models/vae.safetensors", "models/mdrnn.safetensors", "models/controller.safetensors"


@task(cache_policy=NO_CACHE)
def play_one(env_cfg: EnvConfig, seed: int, max_steps: int) -> float:
    """Return of one full evaluation episode."""
    import torch

    torch.set_num_threads(1)
    agent = load_agent(VAE, MDRNN, CONTROLLER)
    return run_episode(agent, env_cfg, seed, max_steps)["return"]


@flow(name="evaluate", log_prints=True)
def evaluate_flow(params_path: str = "params.yaml") -> dict:
    """Play evaluate.episodes episodes on the fixed evaluation seeds and write metrics/evaluate.json."""
    p = load_params(params_path)
    seeds = eval_seeds(p.evaluate.episodes)
    with stage_run("evaluate", {"env": p.env.model_dump(), "evaluate": p.evaluate.model_dump()}) as ml:
        futures = [play_one.submit(p.env, s, p.evaluate.max_steps) for s in seeds]
        metrics = summarize(gather(futures, "evaluate", "episode"), seeds)
        print(f"evaluation: {metrics['mean']:.1f} +- {metrics['std']:.1f} over {metrics['episodes']} episodes")
        ml.log_metrics({f"eval_{k}": metrics[k] for k in ("mean", "std", "min", "max")})
        write_json("metrics/evaluate.json", metrics)
        register_agent({"vae": VAE, "mdrnn": MDRNN, "controller": CONTROLLER},
                       {"crop_rows": p.env.crop_rows, "frame_size": p.env.frame_size}, metrics, "evaluate", params_path)
    return metrics

