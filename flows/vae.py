"""Stage `vae`: train V on the collected frames."""
from __future__ import annotations

from ops.names import VAE
from ops.registry import register_weights
from ops.tracking import log_history, stage_run
from prefect import flow
from wm.checkpoint import stage_checkpoint
from wm.config import load_params
from wm.device import resolve_device
from wm.io import write_json
from wm.frames import FrameSource
from wm.rollouts import list_rollouts
from wm.train_vae import train_vae
from wm.vae import save_vae


@flow(name="vae", log_prints=True)
def vae_flow(rollouts: str, model: str, metrics: str, plot: str, params_path: str = "params.yaml") -> dict:
    """Load frames, fit the VAE, write weights, metrics and the loss curve."""
    p = load_params(params_path)
    config = {"seed": p.seed, "vae": p.vae.model_dump()}
    with stage_run("vae", config) as ml:
        source = FrameSource.from_dir(rollouts, p.vae.holdout, p.vae.max_frames, p.seed)
        frames = source.train_frames()
        print(f"training the VAE on {frames:,} frames of {len(source.lengths)} rollouts, streamed through a "
              f"buffer of {p.vae.buffer:,} frames and {p.vae.workers} reader processes")
        checkpoint = stage_checkpoint("vae", config, [rollouts, __file__])
        device = resolve_device(p.device)
        print(f"training the VAE on {device}")
        result = train_vae(source, p.vae, p.seed, checkpoint=checkpoint, device=device)
        save_vae(model, result.model)
        log_history(ml, result.history, "epoch")
        last = result.history[-1]
        out = {"frames": frames, **{k: v for k, v in last.items() if k != "epoch"}}
        write_json(metrics, out)
        write_json(plot, result.history)
        recon = out.get("val_recon", out["train_recon"])
        register_weights(VAE, model, "vae", p.model_dump(),
                         f"V (z = {p.vae.z_dim}) trained {p.vae.epochs} epochs on {frames:,} frames of "
                         f"{len(list_rollouts(rollouts))} {p.collect.policy} rollouts (seed {p.seed}); "
                         f"held-out reconstruction error {recon:.1f} (summed squared error per frame).")
        checkpoint.clear()
    return out
