"""Train V on collected frames."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from wm.checkpoint import Checkpoint, restore_training, training_state
from wm.config import VaeConfig
from wm.frames import FrameSource, epoch_batches
from wm.vae import ConvVAE, to_input, vae_loss


@dataclass
class VaeResult:
    """The trained model and its per-epoch history."""

    model: ConvVAE
    history: list[dict[str, float]] = field(default_factory=list)
    holdout_frames: np.ndarray | None = None
    frames: int = 0  # frames that trained V per epoch


def _evaluate(model: ConvVAE, frames: torch.Tensor, cfg: VaeConfig, device: torch.device) -> tuple[float, float]:
    model.eval()
    rec_sum, kl_sum = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(frames), 256):
            x = to_input(frames[i:i + 256].to(device))
            mu, logvar = model.encode(x)
            _, rec, kl = vae_loss(model.decode(mu), x, mu, logvar, cfg.kl_tolerance)
            rec_sum += rec.item() * len(x)
            kl_sum += kl.item() * len(x)
    model.train()
    return rec_sum / len(frames), kl_sum / len(frames)


def train_vae(data: FrameSource | np.ndarray, cfg: VaeConfig, seed: int = 0, progress: bool = True,
              checkpoint: Checkpoint | None = None, device: torch.device | str = "cpu") -> VaeResult:
    """Fit a ConvVAE to uint8 frames (N, 64, 64, 3), streamed from `data` (an array is one rollout in memory).

    Frames are streamed through `vae.buffer` and `vae.workers` (wm.frames), so memory does not grow with the
    number of rollouts. On a CUDA `device` the batches train under bf16 autocast (`vae.bf16` decides it on the
    CPU); the returned model is on the CPU either way.

    With `checkpoint`, the state after each epoch is saved, and a run that finds one resumes after its epoch with the
    result an uninterrupted run gives (on the same CPU model).
    """
    if isinstance(data, FrameSource):
        source = data
    else:
        source = FrameSource.from_arrays([data], cfg.holdout, cfg.max_frames, seed)
    n_train = source.train_frames()
    if n_train < 2:
        raise ValueError(f"need at least 2 training frames to train the VAE, got {n_train}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    held = torch.from_numpy(source.held_out())
    # channels-last is ~10% faster for conv training on CPU (oneDNN); weights are saved contiguous
    device = torch.device(device)
    model = ConvVAE(cfg.z_dim).to(device, memory_format=torch.channels_last)
    bf16 = cfg.bf16 or device.type == "cuda"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: list[dict[str, float]] = []
    saved = checkpoint.load() if checkpoint else None
    if saved is not None:
        restore_training(model, opt, gen, *saved)
        history = saved[1]["history"]
        print(f"vae: resuming after epoch {len(history)} of {cfg.epochs} from {checkpoint.path}")
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        totals = np.zeros(3)
        batches = epoch_batches(source, cfg.batch_size, cfg.buffer, cfg.workers, epoch)
        bar = tqdm(batches, desc=f"vae epoch {epoch}/{cfg.epochs}", total=-(-n_train // cfg.batch_size),
                   disable=not progress, unit="batch")
        for batch in bar:
            batch = batch.to(device, non_blocking=True)
            x = to_input(batch).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                recon, mu, logvar = model(x)
            loss, rec, kl = vae_loss(recon, x, mu.float(), logvar.float(), cfg.kl_tolerance)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            totals += np.array([loss.item(), rec.item(), kl.item()]) * len(x)
            bar.set_postfix(loss=f"{loss.item():.1f}")
        loss, rec, kl = totals / n_train
        row = {"epoch": epoch, "train_loss": loss, "train_recon": rec, "train_kl": kl}
        if len(held):
            row["val_recon"], row["val_kl"] = _evaluate(model, held, cfg, device)
        history.append({k: float(v) for k, v in row.items()})
        if checkpoint and epoch < cfg.epochs:
            tensors, state = training_state(model, opt, gen)
            checkpoint.save(tensors, {**state, "history": history})
    shown = held[:8].numpy() if len(held) else next(iter(epoch_batches(source, 8, 8, 0, 0))).numpy()
    return VaeResult(model.to("cpu", memory_format=torch.contiguous_format).eval(), history, shown, n_train)
