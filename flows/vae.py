"""Stage `vae`: train V on every collected frame."""
from __future__ import annotations

from flows.registry import register_weights
from flows.tracking import log_history, stage_run
from prefect import flow
from wm.collect import load_frames
from wm.config import load_params
from wm.io import write_json
from wm.models import save_vae
from wm.train_vae import train_vae

ROLLOUTS = "data/rollouts"
MODEL = "models/vae.safetensors"


@flow(name="vae", log_prints=True)
def vae_flow(params_path: str = "params.yaml") -> dict:
    """Load frames, fit the VAE, write weights, metrics and the loss curve."""
    p = load_params(params_path)
    with stage_run("vae", {"seed": p.seed, "vae": p.vae.model_dump()}) as ml:
        frames = load_frames(ROLLOUTS, p.vae.max_frames, p.seed)
        print(f"training the VAE on {len(frames)} frames")
        result = train_vae(frames, p.vae, p.seed)
        save_vae(MODEL, result.model)
        log_history(ml, result.history, "epoch")
        last = result.history[-1]
        metrics = {"frames": int(len(frames)), **{k: v for k, v in last.items() if k != "epoch"}}
        write_json("metrics/vae.json", metrics)
        write_json("plots/vae.json", result.history)
        register_weights("wm-vae", MODEL, "vae", params_path)
    return metrics

