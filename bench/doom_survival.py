"""Does M's dream kill as the real game does, step by step? Survival curves of one policy, dreamed and real.

Take Cover pays +1 per step alive, so a policy's return is how long it lives. This plays a policy in M's dream from
the real first frames (`--dreams` dreams, M's zero state, z drawn at `--temperature`) for the full `--max-steps`,
never stopping at a death, and follows the share still alive after each step under both rules of `dream.done`:
`sample` (each step survives with 1 - P(done), M's calibrated hazard) and `threshold` (a dream dies at the first
step whose done logit is above 0). It prints that share beside the real one at a few steps, and the mean lifetime.

The policy is the collection policy (a random action held for 1..`--repeat-max` steps), whose real lifetimes are
the random rollouts themselves (`--latents`), or with `--controller` a trained C, whose real lifetimes are the
episodes of an `evaluate.json` (`--evaluate`). Where the dreamed share alive stays above the real one, the dream
is easier than the game at that age: CMA-ES is paid there for surviving what would kill it.

Usage: python bench/doom_survival.py --mdrnn models/iter0/mdrnn.safetensors --latents data/iter0/latents.npz
       [--controller models/iter0/controller.safetensors --evaluate metrics/evaluate.json] [--temperature 1.15]
       [--dreams 512] [--out survival.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator, Sequence

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wm.actions import TAKECOVER, action_map  # noqa: E402
from wm.controller import Controller, load_controller  # noqa: E402
from wm.dream import initial_latents, pool_deaths  # noqa: E402
from wm.dream_hazard import RepeatPlay  # noqa: E402
from wm.io import atomic_path, load_npz  # noqa: E402
from wm.mdrnn import MDRNN, load_ensemble  # noqa: E402

AGES = (50, 100, 200, 300, 500, 1000, 1500, 2100)


def real_alive(lifetimes: np.ndarray, max_steps: int) -> np.ndarray:
    """Share of episodes alive after each step 1..max_steps (an episode of n steps is alive after steps < n)."""
    steps = np.arange(1, max_steps + 1)
    return (np.asarray(lifetimes)[None, :] > steps[:, None]).mean(axis=1)


@torch.no_grad()
def dream_steps(models: Sequence[MDRNN], starts: torch.Tensor, policy: Controller | None, temperature: float,
                dreams: int, max_steps: int, repeat_max: int, seed: int) -> Iterator[list[tuple]]:
    """Play one policy in an ensemble's dream as wm.dream does, never stopping at a death; yield each step's members'
    outputs [(z_next, heads, state), ...]. C reads the first M's state, and each step's z_{t+1} comes from a member
    drawn anew per dream and step. The collection policy plays when `policy` is None."""
    gen = torch.Generator().manual_seed(seed)
    play = RepeatPlay(TAKECOVER, dreams, repeat_max, seed)  # the collection policy, batched as the calibration plays it
    actions = action_map(TAKECOVER)
    z = starts[torch.randint(len(starts), (dreams,), generator=gen)]
    states = [m.initial_state(dreams) for m in models]
    for age in range(max_steps):
        if policy is None:
            action = actions.snap(play(z, z, z)[0])
        else:
            action = actions.snap(actions.to_env(policy(z, states[0][0][0], states[0][1][0])))
        uniform = torch.rand(dreams, models[0].picks, generator=gen)
        normal = torch.randn(z.shape, generator=gen)
        outs = [m.step(z, action, s, temperature, uniform, normal, age=age) for m, s in zip(models, states)]
        states = [state for _, _, state in outs]
        yield outs
        z = outs[0][0]
        if len(models) > 1:
            member = torch.randint(len(models), (dreams,), generator=gen)
            z = torch.stack([z_next for z_next, _, _ in outs])[member, torch.arange(dreams)]


def dream_alive(models: Sequence[MDRNN], starts: torch.Tensor, policy: Controller | None, temperature: float,
                dreams: int, max_steps: int, repeat_max: int, seed: int, ensemble_done: str = "max"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Share of dreams alive after each step under `sample` (mean of the product of 1 - P(done)) and under
    `threshold` (no done logit above 0 yet), each (max_steps,). Deaths never stop a dream here.

    With several Ms (an ensemble, as `mdrnn.members` trains it) the dream is theirs (`dream_steps`): P(done) and the
    done logit are the members' highest (`ensemble_done="max"`) or their mean."""
    survive, never = torch.ones(dreams), torch.ones(dreams, dtype=torch.bool)
    by_sample, by_threshold = np.empty(max_steps), np.empty(max_steps)
    for t, outs in enumerate(dream_steps(models, starts, policy, temperature, dreams, max_steps, repeat_max, seed)):
        survive *= 1.0 - pool_deaths([m.done_prob(heads) for m, (_, heads, _) in zip(models, outs)], ensemble_done)
        never &= pool_deaths([heads.done_logit for _, heads, _ in outs], ensemble_done) <= 0
        by_sample[t], by_threshold[t] = survive.mean().item(), never.float().mean().item()
    return by_sample, by_threshold


def plot(out: str, curves: dict[str, np.ndarray], title: str) -> str:
    """Share alive against steps, one line per curve, written atomically as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for (label, alive), style in zip(curves.items(), ("-", "--", ":")):
        ax.plot(np.arange(1, len(alive) + 1), alive, style, label=label, lw=2)
    ax.set_xlabel("step of the episode")
    ax.set_ylabel("share still alive")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mdrnn", required=True, help="M (safetensors), trained on Take Cover")
    ap.add_argument("--latents", required=True, help="the encoded random rollouts: dream starts, real lifetimes")
    ap.add_argument("--controller", help="a trained C; without it, the collection policy")
    ap.add_argument("--evaluate", help="C's evaluate.json: its real lifetimes (needed with --controller)")
    ap.add_argument("--temperature", type=float, default=1.15)
    ap.add_argument("--dreams", type=int, default=512)
    ap.add_argument("--max-steps", type=int, default=2100)
    ap.add_argument("--repeat-max", type=int, default=10, help="the collection policy's longest hold")
    ap.add_argument("--ensemble-done", choices=("max", "mean"), default="max",
                    help="an ensemble's deaths, as dream.ensemble_done (params/doom.yaml: max)")
    ap.add_argument("--first-only", action="store_true", help="of an ensemble, dream member 0 alone")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="a PNG of the three survival curves")
    ap.add_argument("--title", help="the PNG's title (default: the policy and tau)")
    args = ap.parse_args()
    if bool(args.controller) != bool(args.evaluate):
        ap.error("--controller and --evaluate go together (C's real lifetimes come from its evaluate.json)")
    if args.temperature <= 0 or args.dreams < 1 or args.max_steps < 1:
        ap.error("--temperature, --dreams and --max-steps must be positive")
    torch.set_num_threads(args.threads)
    models, latents = load_ensemble(args.mdrnn), load_npz(args.latents)
    mdrnn = models[0]
    if mdrnn.action_dim != 1:
        ap.error(f"{args.mdrnn} reads {mdrnn.action_dim} action values: this bench is for Take Cover's M")
    if args.first_only:
        models = models[:1]
    if len(models) > 1:
        print(f"{args.mdrnn} holds an ensemble of {len(models)} Ms: dreaming all of them, deaths from their "
              f"{'highest' if args.ensemble_done == 'max' else 'mean'} P(done) (--first-only: member 0 alone)")
    policy, label = None, "random play (the collection policy)"
    lifetimes = np.asarray(latents["lengths"])
    if args.controller:
        policy, label = load_controller(args.controller), "C"
        if policy.env != TAKECOVER or policy.z_dim != mdrnn.z_dim or policy.h_dim != mdrnn.hidden:
            ap.error(f"{args.controller} is not a Take Cover C for this M")
        scores = json.loads(Path(args.evaluate).read_text()).get("scores")
        if not scores:
            ap.error(f"{args.evaluate} has no per-episode `scores`")
        lifetimes = np.asarray(scores, dtype=np.float64)
    real = real_alive(lifetimes, args.max_steps)
    sample, threshold = dream_alive(models, initial_latents(latents), policy, args.temperature, args.dreams,
                                    args.max_steps, args.repeat_max, args.seed, args.ensemble_done)
    curves = {f"real ({len(lifetimes)} episodes)": real, f"dream, done: sample ({args.dreams} dreams)": sample,
              f"dream, done: threshold ({args.dreams} dreams)": threshold}
    print(f"{label}, tau {args.temperature:g}: share alive after each step")
    print(f"{'step':>6} " + " ".join(f"{k.split(' (')[0]:>22}" for k in curves))
    for age in [a for a in AGES if a <= args.max_steps]:
        print(f"{age:>6} " + " ".join(f"{c[age - 1]:>22.3f}" for c in curves.values()))
    # mean lifetime = 1 + sum over steps of the share alive after it (capped at max_steps)
    print(f"{'mean':>6} " + " ".join(f"{1 + c[:-1].sum():>22.1f}" for c in curves.values()))
    if args.out:
        title = args.title or f"Take Cover, {label}: alive in the dream and in the game (tau {args.temperature:g})"
        print("wrote", plot(args.out, curves, title))


if __name__ == "__main__":
    main()
