"""Stage `controller`: CMA-ES over C, scored in the real env (a task per candidate x episode) or in M's dream
(one batched task per generation). Either way the stage records C's dream score and writes a dream video."""
from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm import tqdm

from flows.registry import register_weights
from flows.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.cmaes import check_seeds, load_dream, score_candidate, score_dream, train_cmaes
from wm.config import ControllerConfig, EnvConfig, load_params
from wm.controller import BatchedController, Controller
from wm.io import write_json
from wm.models import load_mdrnn, load_vae, save_controller
from wm.video import decode_latents, write_gif

VAE, MDRNN, LATENTS = "models/vae.safetensors", "models/mdrnn.safetensors", "data/latents.npz"
MODEL, VIDEO = "models/controller.safetensors", "videos/dream.gif"


@task(cache_policy=NO_CACHE)
def score_one(env_cfg: EnvConfig, cfg: ControllerConfig, params: np.ndarray, seed: int) -> float:
    """Return of one candidate on one real episode seed."""
    return score_candidate(VAE, MDRNN, env_cfg, cfg, params, [seed])[0]["return"]


@task(cache_policy=NO_CACHE)
def dream_population(cfg: ControllerConfig, candidates: np.ndarray, seeds: list[int]) -> list[float]:
    """Mean dream return of every candidate: the population x seeds batch in one rollout."""
    return score_dream(load_dream(MDRNN, LATENTS, cfg), cfg, list(candidates), seeds)


def record_dream_video(cfg: ControllerConfig, controller: Controller, seed: int) -> dict[str, float]:
    """Dream one episode with the trained C (no patience cut), decode it through V and write VIDEO."""
    dream = copy.copy(load_dream(MDRNN, LATENTS, cfg))  # same M and start pool, shared tensors
    dream.patience = None
    flat = torch.as_tensor(controller.get_flat(), dtype=torch.float32).unsqueeze(0)
    policy = BatchedController(cfg.arch, flat, controller.z_dim, dream.hidden, cfg.hidden_units)
    result = dream.rollout(policy, [seed], record=True)
    steps = int(result.steps[0, 0])
    frames = decode_latents(load_vae(VAE), result.latents[: steps + 1, 0, 0])
    # CarRacing runs at 50 fps: every 2nd frame at 25 fps is real time. Native 64x64 keeps the file near 1 MB.
    write_gif(VIDEO, frames[::2], fps=25)
    return {"video_dream_return": float(result.returns[0, 0]), "video_steps": steps}


@flow(name="controller", log_prints=True)
def controller_flow(params_path: str = "params.yaml") -> dict:
    """Train C with CMA-ES; keep the CMA mean that scored best on the fixed check seeds."""
    p = load_params(params_path)
    cfg = p.controller
    vae, mdrnn = load_vae(VAE), load_mdrnn(MDRNN)
    controller = Controller(cfg.arch, vae.z_dim, mdrnn.hidden, cfg.hidden_units)
    with stage_run("controller", {"seed": p.seed, "env": p.env.model_dump(), "controller": cfg.model_dump()}) as ml:
        where = f"M's dream at temperature {cfg.temperature}" if cfg.mode == "dream" else "the real environment"
        print(f"CMA-ES over {controller.num_params()} parameters ({cfg.arch}), population {cfg.population} "
              f"x {cfg.trials} trials, in {where}")
        bar = tqdm(total=cfg.generations, desc=f"cma-es ({cfg.mode})", unit="gen")

        def score_real(candidates: list[np.ndarray], seeds: list[int]) -> list[float]:
            # one task per (candidate, seed) pair keeps both workers busy even when episodes differ in length
            futures = [[score_one.submit(p.env, cfg, np.asarray(c), s) for s in seeds] for c in candidates]
            return [float(np.mean([f.result() for f in row])) for row in futures]

        def score_in_dream(candidates: list[np.ndarray], seeds: list[int]) -> list[float]:
            return dream_population(cfg, np.stack(candidates), seeds)

        def on_generation(row: dict[str, float]) -> None:
            ml.log_metrics({k: v for k, v in row.items() if k != "generation"}, step=int(row["generation"]))
            bar.update(1)
            bar.set_postfix(best=f"{row['best']:.0f}", mean=f"{row['mean']:.0f}")

        result = train_cmaes(controller.num_params(), cfg, score_in_dream if cfg.mode == "dream" else score_real,
                             p.seed, on_generation)
        bar.close()
        controller.set_flat(result.best_params)
        save_controller(MODEL, controller)
        # The dream's verdict on the chosen C, in both modes, so dream and real scores can be compared.
        dream_score = float(np.mean(score_dream(load_dream(MDRNN, LATENTS, cfg), cfg, [result.best_params],
                                                check_seeds(p.seed, cfg.eval_episodes))))
        video = record_dream_video(cfg, controller, check_seeds(p.seed, 1)[0])
        metrics = {"mode": cfg.mode, "temperature": cfg.temperature, "params": controller.num_params(),
                   "best_check_mean_return": result.best_score, "dream_return": dream_score,
                   "final_best": result.history[-1]["best"], "final_mean": result.history[-1]["mean"],
                   "generations": len(result.history), "seconds": sum(r["seconds"] for r in result.history),
                   **video}
        print(f"chosen C: check return {result.best_score:.1f} ({cfg.mode}), dream return {dream_score:.1f}")
        ml.log_metrics({k: float(v) for k, v in metrics.items() if not isinstance(v, str)})
        ml.log_artifact(VIDEO, artifact_path="dream")
        write_json("metrics/controller.json", metrics)
        write_json("plots/controller.json", result.history)
        register_weights("wm-controller", MODEL, "controller", params_path)
    return metrics
