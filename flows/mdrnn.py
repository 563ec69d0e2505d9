"""Stage `mdrnn`: train M (with reward and done heads) on the encoded rollouts; mdrnn.members > 1 trains an
ensemble of Ms from consecutive seeds, saved in the one file (wm.mdrnn.save_mdrnn)."""
from __future__ import annotations

from ops.names import MDRNN
from ops.registry import register_weights
from ops.tracking import log_history, stage_run
from prefect import flow
from wm.checkpoint import stage_checkpoint
from wm.config import load_params
from wm.device import resolve_device
from wm.io import load_npz, write_json
from wm.mdrnn import load_ensemble, save_mdrnn
from wm.seeds import iteration_seed
from wm.train_mdrnn import train_ensemble


@flow(name="mdrnn", log_prints=True)
def mdrnn_flow(latents: str, model: str, metrics: str, plot: str, init: str | None = None, iteration: str = "0",
               params_path: str = "params.yaml") -> dict:
    """Fit the MDN-RNN, write weights, held-out metrics and the loss curve.

    An iteration k >= 1 passes `init` (M_{k-1}) and fine-tunes it for iterate.mdrnn_epochs on every rollout so far
    (fewer with mdrnn.patience).
    """
    p = load_params(params_path)
    k = int(iteration)
    cfg = p.mdrnn if init is None else p.mdrnn.model_copy(update={"epochs": p.iterate.mdrnn_epochs})
    stage = "mdrnn" if k == 0 else f"mdrnn_iter@{k}"
    config = {"seed": p.seed, "mdrnn": cfg.model_dump(), "iteration": k}
    with stage_run(stage, config) as ml:
        data = load_npz(latents)
        checkpoint = stage_checkpoint(stage, config, [latents, __file__] + ([init] if init else []))
        previous = load_ensemble(init) if init else []
        results = train_ensemble(data, cfg, iteration_seed(p.seed, k), init=previous, checkpoint=checkpoint,
                                 device=resolve_device(p.device))
        result = results[0]  # member 0: the M whose h C reads; its figures are the stage's
        save_mdrnn(model, result.model, [r.model for r in results[1:]])
        log_history(ml, result.history, "epoch")
        last = result.history[-1]
        out = {"train_" + k.removeprefix("train_"): v for k, v in last.items() if k.startswith("train_")}
        out.update({f"heldout_{k}": v for k, v in result.heldout.items()})
        out["epochs_run"] = len(result.history)
        for m, r in enumerate(results[1:], 1):  # the other members of an ensemble (mdrnn.members > 1)
            out[f"member{m}_train_loss"] = r.history[-1]["train_loss"]
            out.update({f"member{m}_heldout_{k}": v for k, v in r.heldout.items() if k in ("loss", "nll_per_dim")})
        if result.best_epoch is not None:  # mdrnn.patience: the weights are this epoch's, the held-out figures too
            out["best_epoch"] = result.best_epoch
        write_json(metrics, out)
        write_json(plot, result.history)
        nll = out.get("heldout_nll_per_dim")
        per_dim = " per dimension" if cfg.mixture == "per_dim" else ""
        kept = f" (kept epoch {result.best_epoch})" if result.best_epoch else ""
        ensemble = f"an ensemble of {cfg.members}, " if cfg.members > 1 else ""
        register_weights(MDRNN, model, stage, p.model_dump(),
                         f"M (LSTM {cfg.hidden}, {cfg.gaussians} mixtures{per_dim}, {cfg.reward} reward head, "
                         f"{ensemble}iteration {k}) trained {len(result.history)} epochs{kept}"
                         f"{' from M of iteration ' + str(k - 1) if init else ''} on "
                         f"{len(data['lengths'])} encoded rollouts ({len(data['mu']):,} steps, seed {p.seed}); "
                         + (f"held-out NLL {nll:.2f} per latent dimension." if nll is not None else "no held-out set."))
        checkpoint.clear()
    return out
