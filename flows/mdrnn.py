"""Stage `mdrnn`: train M (with reward and done heads) on the encoded rollouts."""
from __future__ import annotations

from flows.registry import register_weights
from flows.tracking import log_history, stage_run
from prefect import flow
from wm.config import load_params
from wm.io import load_npz, write_json
from wm.models import save_mdrnn
from wm.train_mdrnn import train_mdrnn

MODEL = "models/mdrnn.safetensors"


@flow(name="mdrnn", log_prints=True)
def mdrnn_flow(params_path: str = "params.yaml") -> dict:
    """Fit the MDN-RNN, write weights, held-out metrics and the loss curve."""
    p = load_params(params_path)
    with stage_run("mdrnn", {"seed": p.seed, "mdrnn": p.mdrnn.model_dump()}) as ml:
        result = train_mdrnn(load_npz("data/latents.npz"), p.mdrnn, p.seed)
        save_mdrnn(MODEL, result.model)
        log_history(ml, result.history, "epoch")
        last = result.history[-1]
        metrics = {"train_" + k.removeprefix("train_"): v for k, v in last.items() if k.startswith("train_")}
        metrics.update({f"heldout_{k}": v for k, v in result.heldout.items()})
        write_json("metrics/mdrnn.json", metrics)
        write_json("plots/mdrnn.json", result.history)
        register_weights("wm-mdrnn", MODEL, "mdrnn", params_path)
    return metrics

