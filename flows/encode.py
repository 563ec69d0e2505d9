"""Stage `encode`: turn every rollout into per-frame (mu, logsigma) with the trained V."""
from __future__ import annotations

from flows.tracking import stage_run
from prefect import flow
from wm.config import load_params
from wm.encode import encode_rollouts
from wm.io import write_json
from wm.models import load_vae

OUT = "data/latents.npz"


@flow(name="encode", log_prints=True)
def encode_flow(params_path: str = "params.yaml") -> dict:
    """Encode data/rollouts into data/latents.npz."""
    load_params(params_path)
    with stage_run("encode", {}) as ml:
        metrics = encode_rollouts(load_vae("models/vae.safetensors"), "data/rollouts", OUT)
        ml.log_metrics(metrics)
        write_json("metrics/encode.json", metrics)
    return metrics

