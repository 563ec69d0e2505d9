"""What makes the dream hard to cheat: train M and C under one variant, report C's dream score and real score.

Reads a built project's V and latents (e.g. iteration k's `data/iter<k>/latents.npz`), so every row of a run sees the
same real data and counts the same real-env steps. For each variant it trains M from scratch (mdrnn knobs from
--params, with the variant's overrides), trains C by CMA-ES in M's dream (controller knobs from --params), and plays
C for --episodes real episodes on the evaluation seeds. No real return feeds back into training.

Variants (comma list, --variants): mse (regressed reward, no dropout), tile_w5 (new-tile classifier with the reward
steps weighted 5x), tile (the classifier, unweighted, so P(new tile) stays calibrated), tile_drop (tile plus dropout
0.05 in training and a per-dream mask of 0.1), tile_drop_tau13 (the same at tau 1.3), tile_drop_ens5 (tile_drop
with 5 Ms trained from seeds seed .. seed+4: each dream step's z comes from a random member, the reward is their mean),
tile_drop_ens5_pen1 (the same, paid the mean minus 1 x the members' standard deviation: a disagreement penalty).

With --mdrnn, no M is trained: every row uses that M, and the variants are --set overrides of the controller and
dream sections (`--set controller.arch=v_only,controller.max_steps=150 --set dream.temperature=1.3` gives two rows).
--members adds more trained Ms beside it (as does an --mdrnn file that holds an ensemble, mdrnn.members > 1): every
row's dream is then that ensemble (C reads --mdrnn's h; each dream step's z comes from a random member, the reward
and P(done) are the members' mean; `--set dream.disagreement=1` pays the mean minus 1 x their standard deviation,
`--set dream.ensemble_done=max` draws deaths from the highest P(done)). The env is --params' (CarRacing or Take Cover).

Usage: python bench/dream_ablation.py --params params/dream.yaml --vae models/vae.safetensors
       --latents data/iter0/latents.npz [--variants tile,tile_drop] [--episodes 10] [--generations 20]
       python bench/dream_ablation.py ... --mdrnn models/iter0/mdrnn.safetensors --set controller.arch=v_only
       python bench/dream_ablation.py --params params/doom.yaml ... --mdrnn M0 --members M1 M2 --set "" --episodes 100
Prints one markdown table row per variant.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

from wm.agent import load_agent, run_episode  # noqa: E402
from wm.cmaes import train_cmaes  # noqa: E402
from wm.config import EnvConfig, load_params  # noqa: E402
from wm.controller import Controller, save_controller  # noqa: E402
from wm.dream_fitness import DreamFitness  # noqa: E402
from wm.io import load_npz  # noqa: E402
from wm.mdrnn import load_mdrnn, save_mdrnn  # noqa: E402
from wm.seeds import eval_seeds  # noqa: E402
from wm.train_mdrnn import train_mdrnn  # noqa: E402

VARIANTS = {
    "mse": ({"reward": "regress", "reward_weight": 1.0, "dropout": 0.0}, {"dropout": 0.0, "temperature": 1.0}),
    "tile_w5": ({"reward": "tile", "reward_weight": 5.0, "dropout": 0.0}, {"dropout": 0.0, "temperature": 1.0}),
    "tile": ({"reward": "tile", "reward_weight": 1.0, "dropout": 0.0}, {"dropout": 0.0, "temperature": 1.0}),
    "tile_drop": ({"reward": "tile", "reward_weight": 1.0, "dropout": 0.05}, {"dropout": 0.1, "temperature": 1.0}),
    "tile_drop_tau13": ({"reward": "tile", "reward_weight": 1.0, "dropout": 0.05}, {"dropout": 0.1, "temperature": 1.3}),
    "tile_drop_ens5": ({"reward": "tile", "reward_weight": 1.0, "dropout": 0.05}, {"dropout": 0.1, "temperature": 1.0}),
    "tile_drop_ens5_pen1": ({"reward": "tile", "reward_weight": 1.0, "dropout": 0.05},
                            {"dropout": 0.1, "temperature": 1.0}),
}
ENSEMBLES = {"tile_drop_ens5": (5, 0.0), "tile_drop_ens5_pen1": (5, 1.0)}  # variant -> (members, disagreement)


def play(args: tuple[str, str, str, dict, int, int]) -> float:
    """One real evaluation episode (in a worker process)."""
    import torch

    torch.set_num_threads(1)
    vae, mdrnn, controller, env, seed, steps = args
    env_cfg = TypeAdapter(EnvConfig).validate_python(env)
    return run_episode(load_agent(vae, mdrnn, controller), env_cfg, seed, steps)["return"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params/dream.yaml")
    ap.add_argument("--vae", required=True)
    ap.add_argument("--latents", required=True)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--generations", type=int, default=None, help="override controller.generations")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mdrnn", default=None, help="use this M in every row; rows are the --set overrides")
    ap.add_argument("--set", action="append", default=[], help="controller./dream. overrides for one row, comma list")
    ap.add_argument("--members", nargs="*", default=[], help="with --mdrnn: more Ms, for an ensemble dream")
    ap.add_argument("--keep", default=None, help="a folder to keep each row's C (row<i>_c.safetensors) and its "
                    "CMA-ES log, checks and real returns (row<i>_log.json) in")
    a = ap.parse_args()
    if a.members and not a.mdrnn:
        raise SystemExit("--members needs --mdrnn (the M whose h C reads)")
    p = load_params(a.params)
    data = load_npz(a.latents)
    real_steps = int(np.sum(data["lengths"]))
    cfg = p.controller.model_copy(update={"mode": "dream", **({"generations": a.generations} if a.generations else {})})
    print(f"{len(data['lengths'])} rollouts, {real_steps:,} real steps; CMA-ES pop {cfg.population} x {cfg.trials} "
          f"trials x {cfg.generations} generations; {a.episodes} real episodes per row; seed {p.seed}")
    print("| variant | dream score (check mean) | real score (mean ± std) | real-env steps | seconds |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        rows = a.set if a.mdrnn else a.variants.split(",")
        for name in rows:
            t0 = time.perf_counter()
            if a.mdrnn:  # the given M; the row's overrides change C and the dream only
                c_cfg, d_cfg = cfg, p.dream
                for item in filter(None, name.split(",")):
                    key, value = item.split("=", 1)
                    section, field = key.split(".", 1) if "." in key else (key, "")
                    if section == "controller":
                        c_cfg = c_cfg.model_copy(update={field: type(getattr(c_cfg, field))(value)})
                    elif section == "dream":
                        d_cfg = d_cfg.model_copy(update={field: type(getattr(d_cfg, field))(value)})
                    else:
                        raise SystemExit(f"--set {key}: with --mdrnn, only controller.* and dream.*")
                m_path, paths = a.mdrnn, [a.mdrnn, *a.members]
            else:
                c_cfg = cfg
                m_over, d_over = VARIANTS[name]
                members, disagreement = ENSEMBLES.get(name, (1, 0.0))
                d_cfg = p.dream.model_copy(update={**d_over, "disagreement": disagreement})
                models = [train_mdrnn(data, p.mdrnn.model_copy(update=m_over), p.seed + i, progress=False).model
                          for i in range(members)]
                paths = [str(Path(tmp) / f"{name}_m{i}.safetensors") for i in range(members)]
                for path, model in zip(paths, models):
                    save_mdrnn(path, model)
                m_path = paths[0]  # C reads the first M's h, in the dream and in the real env
            mdrnn = load_mdrnn(m_path)
            fitness = DreamFitness(m_path, a.latents, c_cfg, d_cfg, p.env.id, p.device, members=tuple(paths[1:]))
            c = Controller(c_cfg.arch, mdrnn.z_dim, mdrnn.hidden, c_cfg.hidden_units, p.env.id, c_cfg.z_input,
                           c_cfg.action_repeat)
            result = train_cmaes(c.num_params(), c_cfg, fitness.population, p.seed)
            c.set_flat(result.best_params)
            c_path = str(Path(tmp) / f"row{rows.index(name)}_c.safetensors")
            save_controller(c_path, c)
            jobs = [(a.vae, m_path, c_path, p.env.model_dump(), s, p.evaluate.max_steps)
                    for s in eval_seeds(a.episodes)]
            with ProcessPoolExecutor(a.workers) as pool:
                scores = np.asarray(list(pool.map(play, jobs)))
            print(f"| {name} | {result.best_score:.1f} | {scores.mean():.1f} ± {scores.std():.1f} | {real_steps:,} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)
            if a.keep:
                Path(a.keep).mkdir(parents=True, exist_ok=True)
                save_controller(str(Path(a.keep) / f"row{rows.index(name)}_c.safetensors"), c)
                log = {"history": result.history, "checks": result.checks, "real": scores.tolist()}
                (Path(a.keep) / f"row{rows.index(name)}_log.json").write_text(json.dumps(log))

if __name__ == "__main__":
    main()
