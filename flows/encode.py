"""Stage `encode` (and `encode@k`): turn rollouts into per-frame (mu, logsigma) with the trained V; an iteration
appends its new rollouts to the previous iteration's latents."""
from __future__ import annotations

from ops.tracking import stage_run
from prefect import flow
from wm.config import load_params
from wm.device import resolve_device
from wm.encode import encode_rollouts
from wm.io import load_npz, write_json
from wm.vae import load_vae


@flow(name="encode", log_prints=True)
def encode_flow(rollouts: str, vae: str, out: str, metrics: str, previous: str | None = None,
                params_path: str = "params.yaml") -> dict:
    """Encode the rollouts into one latents file, after the `previous` latents file's rollouts if one is given."""
    p = load_params(params_path)
    with stage_run("encode", {"device": p.device}) as ml:
        model = load_vae(vae).to(resolve_device(p.device))
        result = encode_rollouts(model, rollouts, out, previous=load_npz(previous) if previous else None)
        ml.log_metrics(result)
        write_json(metrics, result)
    return result
