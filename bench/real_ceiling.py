"""How far can this V and M take a C at all? The same C trained by CMA-ES on real returns: a ceiling, not the product.

The dream-trained C reads V's z and M's h. If a C of the same shape, trained on real-game returns from the
dream-trained C (`--x0`) or from zero, scores far above it, the features are good enough and the dream is what holds
C back; if it cannot, V and M at this scale are the limit. The real returns here are a fitness on purpose: this is a
diagnostic beside the pipeline, never a stage, and no C it trains is registered.

CMA-ES (pycma) with `--population` candidates x `--trials` real episodes per generation (common seeds within a
generation, disjoint from the evaluation seeds), `--generations` generations from `--x0` at `--sigma0`; the final
CMA mean is then played on `--episodes` evaluation episodes, the ones the `evaluate` stage uses. With `--x0` that
start is played on them too, so the two are compared episode by episode.

Usage: python bench/real_ceiling.py --params params.yaml --vae models/vae.safetensors
       --mdrnn models/iter0/mdrnn.safetensors --x0 models/iter0/controller.safetensors
       [--population 16] [--trials 4] [--generations 30] [--sigma0 0.05] [--episodes 100] [--out ceiling.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402

from paired_eval import paired  # noqa: E402
from wm.cmaes import train_cmaes  # noqa: E402
from wm.config import load_params  # noqa: E402
from wm.controller import Controller, load_controller  # noqa: E402
from wm.io import atomic_path  # noqa: E402
from wm.mdrnn import load_mdrnn  # noqa: E402
from wm.real_fitness import RealFitness  # noqa: E402
from wm.seeds import eval_seeds  # noqa: E402


def _episode(job: tuple[RealFitness, np.ndarray, int]) -> dict[str, float]:
    fitness, params, seed = job
    return fitness.episode(params, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--vae", required=True)
    ap.add_argument("--mdrnn", required=True)
    ap.add_argument("--x0", help="start from this C (e.g. the dream-trained one); from zero without it")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--generations", type=int, default=30)
    ap.add_argument("--sigma0", type=float, default=0.05)
    ap.add_argument("--episodes", type=int, default=100, help="evaluation episodes for the start and the result")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="write the log and both evaluations as JSON here")
    a = ap.parse_args()
    p = load_params(a.params)
    cfg = p.controller.model_copy(update={"mode": "real", "population": a.population, "trials": a.trials,
                                          "generations": a.generations, "sigma0": a.sigma0,
                                          "eval_every": a.generations, "eval_episodes": 1})
    fitness = RealFitness(a.vae, a.mdrnn, p.env, cfg, None)
    evaluation = RealFitness(a.vae, a.mdrnn, p.env, cfg.model_copy(update={"max_steps": p.evaluate.max_steps}), None)
    mdrnn = load_mdrnn(a.mdrnn)
    c = Controller(cfg.arch, mdrnn.z_dim, mdrnn.hidden, cfg.hidden_units, p.env.id, cfg.z_input, cfg.action_repeat)
    x0 = load_controller(a.x0).get_flat() if a.x0 else None
    steps = [0]
    with ProcessPoolExecutor(a.workers) as pool:

        def score(candidates, seeds):  # every (candidate, seed) episode is one task; mean return per candidate
            jobs = [(fitness, np.asarray(x), s) for x in candidates for s in seeds]
            out = list(pool.map(_episode, jobs))
            steps[0] += sum(int(o["steps"]) for o in out)
            returns = np.asarray([o["return"] for o in out]).reshape(len(candidates), len(seeds))
            return returns.mean(axis=1).tolist()

        def evaluate(params: np.ndarray) -> np.ndarray:
            jobs = [(evaluation, params, s) for s in eval_seeds(a.episodes)]
            return np.asarray([o["return"] for o in pool.map(_episode, jobs)])

        def log(row: dict[str, float]) -> None:
            print(f"gen {int(row['generation'])}: mean {row['mean']:.1f} best {row['best']:.1f} sigma {row['sigma']:.4f} "
                  f"real steps {steps[0]:,} ({row['seconds']:.0f} s)", flush=True)

        t0 = time.perf_counter()
        result = train_cmaes(c.num_params(), cfg, score, p.seed, on_generation=log, x0=x0)
        train_s, train_steps = time.perf_counter() - t0, steps[0]
        final = np.asarray(result.best_params)  # the final CMA mean: the only check is at the last generation
        start_scores = evaluate(np.asarray(x0)) if x0 is not None else None
        final_scores = evaluate(final)
    print(f"CMA-ES on real returns: {a.population} x {a.trials} x {a.generations}, sigma0 {a.sigma0}, seed {p.seed}: "
          f"{train_steps:,} real steps, {train_s / 60:.1f} min")
    if start_scores is not None:
        d, d_se = paired(start_scores.tolist(), final_scores.tolist())
        print(f"start ({a.x0}): {start_scores.mean():.1f} ± {start_scores.std():.1f} over {a.episodes} episodes")
        print(f"after: {final_scores.mean():.1f} ± {final_scores.std():.1f}; paired difference {d:+.1f} ± {d_se:.1f}")
    else:
        print(f"after: {final_scores.mean():.1f} ± {final_scores.std():.1f} over {a.episodes} episodes")
    if a.out:
        with atomic_path(a.out) as tmp:
            Path(tmp).write_text(json.dumps({
                "seed": p.seed, "population": a.population, "trials": a.trials, "generations": a.generations,
                "sigma0": a.sigma0, "x0": a.x0, "real_steps": train_steps, "seconds": train_s,
                "history": result.history, "start": None if start_scores is None else start_scores.tolist(),
                "final": final_scores.tolist()}, indent=1))


if __name__ == "__main__":
    main()
