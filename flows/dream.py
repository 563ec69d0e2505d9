"""Stage `dream`: the dream's verdict on the trained C, in both modes: its dream score and a decoded dream video.

A diagnostic only: changing the dream's temperature reruns this stage, never CMA-ES (unless C trains in the dream).
"""
from __future__ import annotations

from ops.tracking import stage_run
from prefect import flow
from wm.config import load_params
from wm.controller import load_controller
from wm.diagnose import dream_frames, dream_score
from wm.dream_fitness import DreamFitness
from wm.io import write_json
from wm.vae import load_vae
from wm.video import write_gif


@flow(name="dream", log_prints=True)
def dream_flow(vae: str, mdrnn: str, latents: str, controller: str, video: str, metrics: str,
               params_path: str = "params.yaml") -> dict:
    """Score the trained C in M's dream on the check seeds and write one dream of it, decoded by V, as a GIF."""
    p = load_params(params_path)
    with stage_run("dream", {"seed": p.seed, "controller": p.controller.model_dump(),
                             "dream": p.dream.model_dump()}) as ml:
        fitness = DreamFitness(mdrnn, latents, p.controller, p.dream)
        c = load_controller(controller)
        score = dream_score(fitness, c, p.seed, p.controller.eval_episodes)
        frames, video_return, steps = dream_frames(fitness, c, load_vae(vae), p.seed)
        # CarRacing runs at 50 fps: every 2nd frame at 25 fps is real time. Native 64x64 keeps the file near 1 MB.
        write_gif(video, frames[::2], fps=25)
        out = {"temperature": p.dream.temperature, "dream_return": score, "episodes": p.controller.eval_episodes,
               "video_dream_return": video_return, "video_steps": steps}
        print(f"dream return of C at tau {p.dream.temperature}: {score:.1f} over {p.controller.eval_episodes} dreams")
        ml.log_metrics({k: float(v) for k, v in out.items()})
        ml.log_artifact(video, artifact_path="dream")
        write_json(metrics, out)
    return out
