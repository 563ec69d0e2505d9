"""Where torch work runs: `device: auto` picks the GPU when torch sees one (CUDA), else the CPU.

V and M training, encoding and the dream follow it. On the CPU every result is the same as before the setting
existed; on a GPU, kernels (and bf16 autocast in V's training) give other bits, as another CPU model does.
The agent in the real env (evaluate, explore, real-env CMA-ES) stays on the CPU: it encodes one frame per step, a
batch of one, where a GPU's launch latency would cost more than it saves.
"""
from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """The torch device for a `device` setting: auto, cpu or cuda (an error if cuda is asked for and absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda, but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                         "use device: auto or cpu, or install a CUDA build of torch")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)
