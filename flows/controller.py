"""Stage `controller`: CMA-ES over C in the real environment, one Prefect task per candidate."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from flows.registry import register_weights
from flows.tracking import log_history, stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.cmaes import score_candidate, train_cmaes
from wm.config import ControllerConfig, EnvConfig, load_params
from wm.controller import Controller
from wm.io import write_json
from wm.models import load_mdrnn, load_vae, save_controller

VAE, MDRNN, MODEL = "models/vae.safetensors", "models/mdrnn.safetensors", "models/controller.safetensors"


@task(cache_policy=NO_CACHE)
def score_one(env_cfg: EnvConfig, cfg: ControllerConfig, params: np.ndarray, seed: int) -> float:
    """Return of one candidate on one episode seed."""
    return score_candidate(VAE, MDRNN, env_cfg, cfg, params, [seed])[0]["return"]


@flow(name="controller", log_prints=True)
def controller_flow(params_path: str = "params.yaml") -> dict:
    """Train C with CMA-ES; keep the CMA mean that scored best on the fixed check seeds."""
    p = load_params(params_path)
    cfg = p.controller
    vae, mdrnn = load_vae(VAE), load_mdrnn(MDRNN)
    controller = Controller(cfg.arch, vae.z_dim, mdrnn.hidden, cfg.hidden_units)
    with stage_run("controller", {"seed": p.seed, "env": p.env.model_dump(), "controller": cfg.model_dump()}) as ml:
        print(f"CMA-ES over {controller.num_params()} parameters ({cfg.arch}), population {cfg.population}")
        bar = tqdm(total=cfg.generations, desc="cma-es", unit="gen")

        def score_population(candidates: list[np.ndarray], seeds: list[int]) -> list[float]:
            # one task per (candidate, seed) pair keeps both workers busy even when episodes differ in length
            futures = [[score_one.submit(p.env, cfg, np.asarray(c), s) for s in seeds] for c in candidates]
            return [float(np.mean([f.result() for f in row])) for row in futures]

        def on_generation(row: dict[str, float]) -> None:
            ml.log_metrics({k: v for k, v in row.items() if k != "generation"}, step=int(row["generation"]))
            bar.update(1)
            bar.set_postfix(best=f"{row['best']:.0f}", mean=f"{row['mean']:.0f}")

        result = train_cmaes(controller.num_params(), cfg, score_population, p.seed, on_generation)
        bar.close()
        save_controller(MODEL, controller.set_flat(result.best_params))
        metrics = {"params": controller.num_params(), "best_check_mean_return": result.best_score,
                   "final_best": result.history[-1]["best"], "final_mean": result.history[-1]["mean"],
                   "generations": len(result.history), "seconds": sum(r["seconds"] for r in result.history)}
        write_json("metrics/controller.json", metrics)
        write_json("plots/controller.json", result.history)
        register_weights("wm-controller", MODEL, "controller", params_path)
    return metrics

