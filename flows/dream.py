"""Stage `dream` (and `dream_iter@k`): the dream's verdict on C and pictures of how M sees the real world.

Writes C's dream score, one decoded dream of C, M's reward against the real reward along one real episode of the
agent, that episode next to M's open-loop dream of it (same first frame, same actions), and V's reconstructions.
A diagnostic only: it changes no model, so a new dream temperature reruns it and never CMA-ES in real mode.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ops.tracking import stage_run
from prefect import flow
from wm.agent import Agent
from wm.config import load_params
from wm.controller import load_controller
from wm.diagnose import (dream_frames, dream_score, open_loop_dream, predicted_done, predicted_rewards, real_trace,
                         recon_grid, side_by_side)
from wm.dream_fitness import DreamFitness
from wm.io import atomic_path, write_json
from wm.mdrnn import load_mdrnn
from wm.seeds import eval_seeds
from wm.vae import load_vae
from wm.video import write_gif


@flow(name="dream", log_prints=True)
def dream_flow(vae: str, mdrnn: str, latents: str, controller: str, video: str, metrics: str, rewards: str,
               side: str, recon: str, iteration: str = "0", params_path: str = "params.yaml") -> dict:
    """Score C in M's dream, write one dream as a GIF, and the real-vs-M diagnostics of one real episode."""
    p = load_params(params_path)
    k = int(iteration)
    with stage_run("dream" if k == 0 else f"dream_iter@{k}",
                   {"seed": p.seed, "controller": p.controller.model_dump(), "dream": p.dream.model_dump(),
                    "iteration": k}) as ml:
        fitness = DreamFitness(mdrnn, latents, p.controller, p.dream, p.env.id, p.device,
                               repeat_max=p.collect.repeat_max)
        c, v, m = load_controller(controller), load_vae(vae), load_mdrnn(mdrnn)
        score = dream_score(fitness, c, p.seed, p.controller.eval_episodes)
        frames, video_return, steps = dream_frames(fitness, c, v, p.seed)
        # every 2nd frame in real time (CarRacing runs at 50 fps, Doom at 35); native 64x64 keeps the file near 1 MB
        fps = 25 if p.env.id == "CarRacing-v3" else 18
        write_gif(video, frames[::2], fps=fps)

        trace = real_trace(Agent(v, m, c), p.env, eval_seeds(1)[0], p.evaluate.max_steps)
        predicted = predicted_rewards(m, v, trace)
        dreamed, dream_rewards = open_loop_dream(m, v, trace, p.dream.temperature, p.seed)
        real_r = trace["rewards"]
        write_json(rewards, [{"step": t, "real_reward": float(real_r[t]), "predicted_reward": float(predicted[t]),
                              "real_return": float(real_r[: t + 1].sum()),
                              "predicted_return": float(predicted[: t + 1].sum())} for t in range(len(real_r))])
        write_gif(side, side_by_side(trace["frames"], dreamed)[::2], fps=fps, scale=2)
        with atomic_path(recon) as tmp:
            Image.fromarray(recon_grid(v, trace["frames"])).resize((8 * 64 * 2, 2 * 64 * 2), Image.NEAREST).save(
                tmp, format="PNG")
        out = {"iteration": k, "temperature": p.dream.temperature, "dropout": p.dream.dropout,
               "dream_return": score, "episodes": p.controller.eval_episodes, "video_dream_return": video_return,
               "video_steps": steps, "real_episode_return": float(real_r.sum()),
               "m_predicted_return": float(predicted.sum()), "open_loop_dream_return": float(dream_rewards.sum()),
               "reward_corr": float(np.corrcoef(real_r, predicted)[0, 1]) if real_r.std() and predicted.std() else 0.0}
        if p.env.id == "CarRacing-v3":  # does M's reward tell the steps that reach a new tile?
            tile = real_r > 0
            out |= {"tile_steps": int(tile.sum()),
                    "predicted_on_tile_steps": float(predicted[tile].mean()) if tile.any() else None,
                    "predicted_on_other_steps": float(predicted[~tile].mean()) if (~tile).any() else None}
        else:  # Take Cover: does M's done head see the death coming, and only then?
            p_done = predicted_done(m, v, trace)
            out |= {"real_episode_died": bool(trace["dones"][-1]), "m_done_prob_last_step": float(p_done[-1]),
                    "m_done_prob_max_before": float(p_done[:-1].max()) if len(p_done) > 1 else None,
                    "m_done_steps_before": int((p_done[:-1] > 0.5).sum())}
        print(f"dream return of C at tau {p.dream.temperature}: {score:.1f} over {p.controller.eval_episodes} dreams; "
              f"one real episode returned {out['real_episode_return']:.1f}, M predicted "
              f"{out['m_predicted_return']:.1f} along it")
        ml.log_metrics({k_: float(v_) for k_, v_ in out.items() if isinstance(v_, (int, float))})
        for path in (video, side, recon):
            ml.log_artifact(path, artifact_path="dream")
        ml.log_artifact(rewards, artifact_path="dream")
        write_json(metrics, out)
    return out
