"""Stage `mdrnn`: train M (with reward and done heads) on the encoded rollouts."""
from __future__ import annotations

from ops.names import MDRNN
from ops.registry import register_weights
from ops.tracking import log_history, stage_run
from prefect import flow
from wm.config import load_params
from wm.io import load_npz, write_json
from wm.mdrnn import save_mdrnn
from wm.train_mdrnn import train_mdrnn


@flow(name="mdrnn", log_prints=True)
def mdrnn_flow(latents: str, model: str, metrics: str, plot: str, params_path: str = "params.yaml") -> dict:
    """Fit the MDN-RNN, write weights, held-out metrics and the loss curve."""
    p = load_params(params_path)
    with stage_run("mdrnn", {"seed": p.seed, "mdrnn": p.mdrnn.model_dump()}) as ml:
        data = load_npz(latents)
        result = train_mdrnn(data, p.mdrnn, p.seed)
        save_mdrnn(model, result.model)
        log_history(ml, result.history, "epoch")
        last = result.history[-1]
        out = {"train_" + k.removeprefix("train_"): v for k, v in last.items() if k.startswith("train_")}
        out.update({f"heldout_{k}": v for k, v in result.heldout.items()})
        write_json(metrics, out)
        write_json(plot, result.history)
        nll = out.get("heldout_nll_per_dim")
        register_weights(MDRNN, model, "mdrnn", p.model_dump(),
                         f"M (LSTM {p.mdrnn.hidden}, {p.mdrnn.gaussians} mixtures) trained {p.mdrnn.epochs} epochs on "
                         f"{len(data['lengths'])} encoded rollouts ({len(data['mu']):,} steps, seed {p.seed}); "
                         + (f"held-out NLL {nll:.2f} per latent dimension." if nll is not None else "no held-out set."))
    return out
