"""Stage `evaluate` (and `evaluate_iter@k`): score the agent in the real environment on held-out seeds, add its row
to the real-steps progress (and draw the score-against-real-steps figure), and register it."""
from __future__ import annotations

from flows.runtime import chunks, gather
from ops.registry import register_agent
from ops.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.agent import load_agent, run_episode
from wm.config import EnvConfig, load_params
from wm.evaluate import summarize
from wm.io import load_npz, read_json, write_json
from wm.progress import plot_score_vs_steps, progress_row
from wm.seeds import eval_seeds


def agent_config(env: EnvConfig) -> dict:
    """What the registered pyfunc needs to preprocess raw observations of `env` (ops/agent_model.py)."""
    if env.id == "CarRacing-v3":
        return {"env": env.id, "crop_rows": env.crop_rows, "frame_size": env.frame_size}
    width, height = (int(x) for x in env.screen.split("x"))
    return {"env": env.id, "obs_shape": [height, width, 3], "frame_size": env.frame_size}


@task(cache_policy=NO_CACHE)
def play_episodes(env_cfg: EnvConfig, weights: dict[str, str], seeds: list[int], max_steps: int) -> list[float]:
    """Returns of full evaluation episodes, one per seed, played one after the other."""
    import torch

    torch.set_num_threads(1)
    agent = load_agent(weights["vae"], weights["mdrnn"], weights["controller"])
    return [run_episode(agent, env_cfg, seed, max_steps)["return"] for seed in seeds]


@flow(name="evaluate", log_prints=True)
def evaluate_flow(vae: str, mdrnn: str, controller: str, metrics: str, latents: str, training: str, progress: str,
                  figure: str, reference: str, previous: str | None = None, iteration: str = "0",
                  params_path: str = "params.yaml") -> dict:
    """Play evaluate.episodes episodes on the fixed evaluation seeds, write the metrics, register the agent.

    `latents` (every rollout so far) and `training` (the controller stage's metrics) count the real-env steps
    spent; `progress` gets `previous`'s rows plus this one, and `figure` plots them against `reference`.
    """
    p = load_params(params_path)
    k = int(iteration)
    seeds = eval_seeds(p.evaluate.episodes)
    weights = {"vae": vae, "mdrnn": mdrnn, "controller": controller}
    stage = "evaluate" if k == 0 else f"evaluate_iter@{k}"
    with stage_run(stage, {"env": p.env.model_dump(), "evaluate": p.evaluate.model_dump(), "iteration": k}) as ml:
        n = p.runner.episodes_per_task
        futures = [play_episodes.submit(p.env, weights, task, p.evaluate.max_steps) for task in chunks(seeds, n)]
        returns = gather(futures, "evaluate", "episode" if n == 1 else f"task of {n} episodes")
        result = summarize([r for task_returns in returns for r in task_returns], seeds)
        print(f"evaluation: {result['mean']:.1f} +- {result['std']:.1f} over {result['episodes']} episodes")
        trained = read_json(training)
        rows = read_json(previous) if previous else []
        dream_return = trained["best_check_mean_return"] if trained["mode"] == "dream" else None
        rows.append(progress_row(k, load_npz(latents)["lengths"], trained["real_steps"], result, trained["mode"],
                                 dream_return, rows))
        result["real_steps"] = rows[-1]["real_steps"]
        print(f"real-env steps used to train this agent: {result['real_steps']:,}")
        ml.log_metrics({f"eval_{k_}": result[k_] for k_ in ("mean", "std", "min", "max")} |
                       {"real_steps": result["real_steps"]})
        write_json(metrics, result)
        write_json(progress, rows)
        plot_score_vs_steps(figure, rows, read_json(reference),
                            f"{p.env.id}, seed {p.seed}: score against real-env steps")
        ml.log_artifact(figure, artifact_path="progress")
        register_agent(weights, agent_config(p.env), result,
                       p.model_dump(), stage, pure_dream=p.controller.mode == "dream")
    return result
