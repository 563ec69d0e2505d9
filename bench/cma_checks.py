"""Does the check that picks C pick what the real game prefers? Every checked CMA mean, scored three ways.

CMA-ES in the dream scores its mean every `controller.eval_every` generations on `controller.eval_episodes` check
dreams and keeps the best-checked mean as C. This reruns that training exactly as the `controller` stage does (the
same V, M, latents, params and seeds, so the checks and the chosen C are the stage's, bit for bit on one CPU model),
keeps every checked mean, and scores each on `--dreams` held-out dreams (seeds no check or generation uses) and in
the real env over `--episodes` evaluation episodes. Nothing here feeds back into training: the real scores are a
diagnostic of the picking rule, never a fitness.

A progress bar follows CMA-ES generation by generation (the population's mean and best dream return, sigma). Then
it prints one markdown row per check (check score, held-out dream score, with `--other-mdrnn` the score in another
M's dream, real score ± its standard error) and, with `--out`, writes them as JSON. A picker that followed the game
would choose the row with the best real score; the stage chooses the best check.

`--real-at` limits the scored rows to some checked generations (the other checks only record the CMA mean, with no
dream). `--average A-B` adds a row for the average of the CMA means checked at generations A to B (parameter
averaging, as SWA does for SGD); with `--eval-every 1` that is every generation's mean.

Usage: python bench/cma_checks.py --params params.yaml --vae models/vae.safetensors
       --latents data/iter0/latents.npz --mdrnn models/iter0/mdrnn.safetensors [--episodes 100] [--dreams 128]
       [--generations 120 --eval-every 20] [--real-at 60,120] [--average 61-120] [--set population=64]
       [--other-mdrnn M2] [--out checks.json]
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
import yaml  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from tqdm import tqdm  # noqa: E402
from dream_ablation import play  # noqa: E402
from paired_eval import mean_se  # noqa: E402
from wm.cmaes import train_cmaes  # noqa: E402
from wm.config import ControllerConfig, load_params  # noqa: E402
from wm.controller import Controller, save_controller  # noqa: E402
from wm.dream_fitness import DreamFitness  # noqa: E402
from wm.io import atomic_path  # noqa: E402
from wm.mdrnn import load_mdrnn  # noqa: E402
from wm.seeds import check_seeds, eval_seeds  # noqa: E402

HELD_OUT = 1_000  # held-out dreams use check_seeds(seed + HELD_OUT, n): a key no stage derives a seed from


def controller_config(cfg: ControllerConfig, generations: int | None, eval_every: int | None,
                      sets: list[str]) -> ControllerConfig:
    """`cfg` in dream mode with the command line's overrides, validated by the params schema."""
    update: dict[str, object] = {"mode": "dream"}
    if generations:
        update["generations"] = generations
    if eval_every:
        update["eval_every"] = eval_every
    for kv in sets:
        key, sep, value = kv.partition("=")
        if not sep:
            raise ValueError(f"--set {kv!r}: expected KEY=VALUE")
        update[key] = yaml.safe_load(value)
    try:
        return ControllerConfig.model_validate({**cfg.model_dump(), **update})
    except ValidationError as e:
        raise ValueError(f"controller overrides: {e}") from None


def plan(generations: int, eval_every: int, real_at: str | None, averages: list[str]
         ) -> tuple[list[int], set[int], list[tuple[int, int]]]:
    """The checked generations, those to score (`--real-at`, default all) and the `--average` spans, checked."""
    checked = [g for g in range(1, generations + 1) if g % eval_every == 0 or g == generations]
    try:
        scored = set(checked) if not real_at else {int(g) for g in real_at.split(",")}
    except ValueError:
        raise ValueError(f"--real-at {real_at!r}: expected comma-separated generations") from None
    if not scored <= set(checked):
        raise ValueError(f"--real-at {sorted(scored - set(checked))}: not checked generations "
                         f"(checks every {eval_every} of {generations})")
    spans = []
    for span in averages:
        lo, sep, hi = span.partition("-")
        if not (sep and lo.isdigit() and hi.isdigit()):
            raise ValueError(f"--average {span!r}: expected A-B, e.g. 61-120")
        if not any(int(lo) <= g <= int(hi) for g in checked):
            raise ValueError(f"--average {span}: no checked generation in it (checks every {eval_every})")
        spans.append((int(lo), int(hi)))
    return checked, scored, spans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--vae", required=True)
    ap.add_argument("--latents", required=True)
    ap.add_argument("--mdrnn", required=True, help="M's file as the mdrnn stage wrote it (an ensemble if it holds one)")
    ap.add_argument("--episodes", type=int, default=100, help="real evaluation episodes per checked mean")
    ap.add_argument("--dreams", type=int, default=128, help="held-out dreams per checked mean")
    ap.add_argument("--generations", type=int, help="override controller.generations (the first ones are the stage's)")
    ap.add_argument("--eval-every", type=int, help="override controller.eval_every")
    ap.add_argument("--real-at", help="comma-separated checked generations to score (default: every check)")
    ap.add_argument("--average", action="append", default=[], metavar="A-B",
                    help="also score the average of the means checked at generations A..B (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a controller key, e.g. population=64 (repeatable)")
    ap.add_argument("--other-mdrnn", metavar="M2", help="also score each mean on the held-out dreams of M2, Ms trained "
                    "on the same latents that C never trained in (issue 9's held-out M)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="write the rows as JSON here")
    a = ap.parse_args()
    p = load_params(a.params)
    try:
        cfg = controller_config(p.controller, a.generations, a.eval_every, a.set)
        checked, real_at, spans = plan(cfg.generations, cfg.eval_every, a.real_at, a.average)
    except ValueError as e:
        ap.error(str(e))
    fitness = DreamFitness(a.mdrnn, a.latents, cfg, p.dream, p.env.id, p.device)
    other = DreamFitness(a.other_mdrnn, a.latents, cfg, p.dream, p.env.id, p.device) if a.other_mdrnn else None
    means: list[np.ndarray] = []

    def score(candidates, seeds):  # the checks are the calls with one candidate: keep what they score
        if len(candidates) == 1:
            means.append(np.asarray(candidates[0]).copy())
            if checked[len(means) - 1] not in real_at:
                return [float("nan")]  # recorded for --average only; a check never steers CMA-ES
        return fitness.population(candidates, seeds)

    mdrnn = load_mdrnn(a.mdrnn)
    c = Controller(cfg.arch, mdrnn.z_dim, mdrnn.hidden, cfg.hidden_units, p.env.id, cfg.z_input, cfg.action_repeat)
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.generations, desc="CMA-ES in the dream", unit="gen")

    def tick(row: dict[str, float]) -> None:
        bar.set_postfix(mean=f"{row['mean']:.1f}", best=f"{row['best']:.1f}", sigma=f"{row['sigma']:.3f}")
        bar.update(1)

    result = train_cmaes(c.num_params(), cfg, score, p.seed, on_generation=tick)
    bar.close()
    print(f"CMA-ES: {cfg.population} x {cfg.trials} x {cfg.generations}, seed {p.seed}, "
          f"{time.perf_counter() - t0:.0f} s; chosen check {result.best_score:.2f}")
    held_out = check_seeds(p.seed + HELD_OUT, a.dreams)
    rows = []
    print(f"| generation | check ({cfg.eval_episodes} dreams) | held-out dream ({a.dreams}) | "
          + (f"M2's dream ({a.dreams}) | " if other else "") + f"real ({a.episodes} episodes) ± SE | chosen |")
    print("|---|---|---|---|---|" + ("---|" if other else ""))
    todo = [(chk, m) for chk, m in zip(result.checks, means) if int(chk["generation"]) in real_at]
    for lo, hi in spans:
        picked = [m for g, m in zip(checked, means) if lo <= g <= hi]
        avg = np.mean(picked, axis=0)
        check = float(np.mean(fitness.population([avg], check_seeds(p.seed, cfg.eval_episodes))))
        todo.append(({"generation": f"avg {lo}-{hi} ({len(picked)} means)", "check_mean_return": check}, avg))
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(a.workers) as pool:
        for n, (check, params) in enumerate(todo):
            dream = float(np.mean(fitness.population([params], held_out)))
            elsewhere = float(np.mean(other.population([params], held_out))) if other else None
            c.set_flat(params)
            path = str(Path(tmp) / f"c{n}.safetensors")
            save_controller(path, c)
            jobs = [(a.vae, a.mdrnn, path, p.env.model_dump(), s, p.evaluate.max_steps) for s in eval_seeds(a.episodes)]
            real = np.asarray(list(pool.map(play, jobs)))
            chosen = bool(np.array_equal(params, result.best_params))
            gen = check["generation"]
            row = {"generation": int(gen) if isinstance(gen, float) else gen, "check": check["check_mean_return"],
                   "held_out_dream": dream, "real": float(real.mean()), "real_se": mean_se(real.tolist())[1],
                   "chosen": chosen, "episodes": real.tolist()}
            if other:
                row["other_m_dream"] = elsewhere
            rows.append(row)
            print(f"| {row['generation']} | {row['check']:.1f} | {dream:.1f} | "
                  + (f"{elsewhere:.1f} | " if other else "")
                  + f"{row['real']:.1f} ± {row['real_se']:.1f} | {'yes' if chosen else ''} |", flush=True)
    if a.out:
        with atomic_path(a.out) as tmp_out:
            Path(tmp_out).write_text(json.dumps({"seed": p.seed, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
