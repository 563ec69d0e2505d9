"""Stage `encode`: turn every rollout into per-frame (mu, logsigma) with the trained V."""
from __future__ import annotations

from ops.tracking import stage_run
from prefect import flow
from wm.config import load_params
from wm.encode import encode_rollouts
from wm.io import write_json
from wm.vae import load_vae


@flow(name="encode", log_prints=True)
def encode_flow(rollouts: str, vae: str, out: str, metrics: str, params_path: str = "params.yaml") -> dict:
    """Encode the rollouts into one latents file."""
    load_params(params_path)
    with stage_run("encode", {}) as ml:
        result = encode_rollouts(load_vae(vae), rollouts, out)
        ml.log_metrics(result)
        write_json(metrics, result)
    return result
