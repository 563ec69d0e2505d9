"""Dream videos: decode imagined latents through V and write them as an animated GIF."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wm.io import atomic_path
from wm.vae import ConvVAE


@torch.no_grad()
def decode_latents(vae: ConvVAE, latents: torch.Tensor, batch: int = 256) -> np.ndarray:
    """Latents (N, z) to uint8 frames (N, 64, 64, 3)."""
    frames = [vae.decode(latents[i:i + batch]).clamp(0, 1) for i in range(0, len(latents), batch)]
    return (torch.cat(frames).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def write_gif(path: str | Path, frames: np.ndarray, fps: int = 25, scale: int = 1) -> Path:
    """Write uint8 frames (N, H, W, 3) as a looping GIF, enlarged `scale` times (nearest neighbour), atomically."""
    if len(frames) == 0:
        raise ValueError("no frames to write")
    images = [Image.fromarray(f) for f in frames]
    if scale != 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                       loop=0, optimize=False)
    return path
