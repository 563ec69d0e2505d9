"""Stage `controller` (and `controller_iter@k`): CMA-ES over C, scored in the real env (a task per candidate x
episode) or in M's dream (one batched task per generation). The fitness comes from wm/real_fitness.py or
wm/dream_fitness.py; the loop is wm/cmaes.py. An iteration k >= 1 trains in M_k's dream from C_{k-1} (`init`)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from tqdm import tqdm

from flows.runtime import chunks
from ops.names import CONTROLLER
from ops.registry import register_weights
from ops.tracking import stage_run
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from wm.cmaes import ScorePopulation, train_cmaes
from wm.checkpoint import stage_checkpoint
from wm.config import ControllerConfig, Params, load_params
from wm.controller import Controller, load_controller, save_controller
from wm.dream_fitness import DreamFitness
from wm.real_fitness import RealFitness
from wm.io import write_json
from wm.mdrnn import load_mdrnn
from wm.seeds import iteration_seed
from wm.vae import load_vae


@task(cache_policy=NO_CACHE)
def real_episodes(fitness: RealFitness, episodes: list[tuple[np.ndarray, int]]) -> list[dict[str, float]]:
    """Return and steps of each (candidate, real episode seed) pair, played one after the other."""
    return [fitness.episode(params, seed) for params, seed in episodes]


@task(cache_policy=NO_CACHE)
def dream_population(fitness: DreamFitness, candidates: np.ndarray, seeds: list[int]) -> list[float]:
    """Mean dream return of every candidate: the population x seeds batch in one rollout."""
    return fitness.population(list(candidates), seeds)


def hazard_report(dream: DreamFitness) -> dict[str, float]:
    """With dream.hazard: calibrated, fit the dream's age offsets now, print them beside the hazards they came
    from, and return a summary for the metrics: the mean gap, in log hazard, between dream and rollouts."""
    fit = dream.age_fit()
    if fit is None:
        return {}
    print(f"the dream's hazard by age (deaths per 1,000 steps of random play), {len(fit.offsets)} bands of "
          f"{fit.band} steps; largest offset change per round: {', '.join(f'{c:.2f}' for c in fit.rounds)}")
    print(f"bands from {fit.fitted * fit.band} steps on share the offset of the last band before them")
    print(f"{'age':>6} {'rollouts':>9} {'deaths':>7} {'dream':>8} {'calibrated':>11} {'offset':>7}")
    for row, deaths in zip(fit.rows(), fit.real_deaths):  # "-": no episode lived a step of the band
        print(f"{row['age']:>6} {row['real']:>9.2f} {deaths:>7} {row['dream']:>8.2f} {row['calibrated']:>11.2f} "
              f"{row['offset']:>7.2f}".replace("nan", "  -"))
    def gap(dreamed: list[float]) -> float:  # over the bands fitted on their own
        return float(np.nanmean([abs(np.log(dreamed[i] / fit.real[i])) for i in range(fit.fitted)]))

    return {"hazard_gap_before": gap(fit.dream_before), "hazard_gap_after": gap(fit.dream_after),
            "hazard_offset_first": fit.offsets[0], "hazard_offset_last": fit.offsets[-1]}


def make_scorer(p: Params, cfg: ControllerConfig, vae: str, mdrnn: str, latents: str
                ) -> tuple[ScorePopulation, Callable[[], int], str, dict[str, float]]:
    """The population scorer for controller.mode, built once; a counter of the real-env steps it has used; a few
    words on where it scores; and, for a calibrated dream, a summary of its age offsets."""
    if cfg.mode == "dream":
        dream = DreamFitness(mdrnn, latents, cfg, p.dream, p.env.id, p.device, repeat_max=p.collect.repeat_max)
        where = f"M's dream at temperature {p.dream.temperature}, dropout {p.dream.dropout}"
        if p.dream.hazard == "calibrated":
            where += f", deaths calibrated by age in bands of {p.dream.hazard_band} steps"
        if p.dream.action_noise:
            where += f", a random action on {p.dream.action_noise:.0%} of its steps"
        if p.dream.member_pick == "dream" and p.mdrnn.members > 1:
            where += ", each dream in one member's world"
        report = hazard_report(dream)
        return (lambda cands, seeds: dream_population(dream, np.stack(cands), seeds)), lambda: 0, where, report
    real = RealFitness(vae, mdrnn, p.env, cfg, p.real.patience)
    used, n = [0], p.runner.episodes_per_task

    def score(cands: list[np.ndarray], seeds: list[int]) -> list[float]:
        # small tasks of (candidate, seed) episodes keep every worker busy even when episodes differ in length
        pairs = [(np.asarray(c), s) for c in cands for s in seeds]
        futures = [real_episodes.submit(real, task) for task in chunks(pairs, n)]
        results = [r for f in futures for r in f.result()]
        used[0] += sum(int(r["steps"]) for r in results)
        returns = np.array([r["return"] for r in results]).reshape(len(cands), len(seeds))
        return [float(x) for x in returns.mean(axis=1)]

    return score, lambda: used[0], "the real environment", {}


@flow(name="controller", log_prints=True)
def controller_flow(vae: str, mdrnn: str, latents: str, model: str, metrics: str, plot: str, checks: str,
                    init: str | None = None, iteration: str = "0", params_path: str = "params.yaml") -> dict:
    """Train C with CMA-ES; keep the CMA mean that scored best on the fixed check seeds (in the same world it
    trains in: the dream never consults the real env)."""
    p = load_params(params_path)
    k = int(iteration)
    cfg = p.controller
    if init is not None:  # iteration k >= 1: a shorter, narrower search around C_{k-1}
        cfg = cfg.model_copy(update={"generations": p.iterate.generations, "sigma0": p.iterate.sigma0})
    seed = iteration_seed(p.seed, k)
    z_dim, hidden = load_vae(vae).z_dim, load_mdrnn(mdrnn).hidden
    controller = Controller(cfg.arch, z_dim, hidden, cfg.hidden_units, p.env.id, cfg.z_input, cfg.action_repeat)
    x0 = load_controller(init).get_flat() if init else None
    fitness_section = p.dream if cfg.mode == "dream" else p.real
    stage = "controller" if k == 0 else f"controller_iter@{k}"
    config = {"seed": p.seed, "env": p.env.model_dump(), "controller": cfg.model_dump(),
              cfg.mode: fitness_section.model_dump(), "iteration": k, "collect_repeat_max": p.collect.repeat_max}
    checkpoint = stage_checkpoint(stage, config, [vae, mdrnn, latents, __file__] + ([init] if init else []))
    with stage_run(stage, config) as ml:
        score, real_steps, where, hazard = make_scorer(p, cfg, vae, mdrnn, latents)
        print(f"CMA-ES over {controller.num_params()} parameters ({cfg.arch}), population {cfg.population} "
              f"x {cfg.trials} trials, in {where}" + (f", from C of iteration {k - 1}" if init else ""))
        bar = tqdm(total=cfg.generations, desc=f"cma-es ({cfg.mode})", unit="gen")

        def on_generation(row: dict[str, float]) -> None:
            ml.log_metrics({k: v for k, v in row.items() if k != "generation"}, step=int(row["generation"]))
            bar.update(1)
            bar.set_postfix(best=f"{row['best']:.0f}", mean=f"{row['mean']:.0f}")

        result = train_cmaes(controller.num_params(), cfg, score, seed, on_generation, x0, real_steps, checkpoint)
        bar.close()
        for row in result.checks:
            ml.log_metric("check_mean_return", row["check_mean_return"], step=int(row["generation"]))
        controller.set_flat(result.best_params)
        save_controller(model, controller)
        out = {"mode": cfg.mode, "params": controller.num_params(), "best_check_mean_return": result.best_score,
               "final_best": result.history[-1]["best"], "final_mean": result.history[-1]["mean"],
               "generations": len(result.history), "seconds": sum(r["seconds"] for r in result.history),
               "real_steps": result.real_steps, "iteration": k, **hazard}
        print(f"chosen C: check return {result.best_score:.1f} ({cfg.mode})")
        ml.log_metrics({k: float(v) for k, v in out.items() if not isinstance(v, str)})
        write_json(metrics, out)
        write_json(plot, result.history)
        write_json(checks, result.checks)
        register_weights(CONTROLLER, model, stage, p.model_dump(),
                         f"C ({cfg.arch}, {controller.num_params()} parameters) trained by CMA-ES in {where}: "
                         f"{cfg.generations} generations x {cfg.population} candidates x {cfg.trials} trials "
                         f"(seed {p.seed}, iteration {k}); the chosen CMA mean returned {result.best_score:.1f} on "
                         f"{cfg.eval_episodes} check episodes.")
        checkpoint.clear()
    return out
