"""`device`: auto picks a CUDA GPU when torch sees one, else the CPU; cuda without a GPU is a clear error."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO
from wm.config import MdrnnConfig, ParamsError, VaeConfig, load_params
from wm.controller import BatchedController
from wm.device import resolve_device
from wm.dream import Dream
from wm.mdrnn import MDRNN
from wm.train_mdrnn import train_mdrnn
from wm.train_vae import train_vae

SMOKE = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())
HAS_CUDA = torch.cuda.is_available()


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu() -> None:
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_says_so() -> None:
    with pytest.raises(ValueError, match="device: cuda, but torch sees no CUDA GPU"):
        resolve_device("cuda")


def test_params_name_a_bad_device(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({**SMOKE, "device": "gpu"}))
    with pytest.raises(ParamsError, match="device: Input should be 'auto', 'cpu' or 'cuda'"):
        load_params(tmp_path / "p.yaml")


def _latents(n: int = 120) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"mu": rng.standard_normal((n, 4)).astype(np.float32), "logsigma": np.full((n, 4), -3.0, np.float32),
            "actions": rng.random((n, 3), np.float32), "rewards": rng.standard_normal(n).astype(np.float32),
            "dones": np.zeros(n, np.float32), "lengths": np.array([60, 60])}


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if HAS_CUDA else []))
def test_v_m_and_the_dream_run_on_the_device_and_hand_back_cpu_results(device: str) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (40, 64, 64, 3), dtype=np.uint8)
    vae = train_vae(frames, VaeConfig(**{**SMOKE["vae"], "batch_size": 16}), progress=False, device=device).model
    assert next(vae.parameters()).device.type == "cpu"
    cfg = MdrnnConfig(**{**SMOKE["mdrnn"], "hidden": 16, "gaussians": 2, "holdout": 0.0})
    m = train_mdrnn(_latents(), cfg, progress=False, device=device).model
    assert next(m.parameters()).device.type == "cpu"
    pool, flat = torch.randn(5, 4), torch.randn(3, (4 + 16) * 3 + 3)
    here = Dream(copy.deepcopy(m), pool, max_steps=10, device=device)
    result = here.rollout(BatchedController("linear", flat.to(device), 4, 16), [1, 2])
    assert result.returns.device.type == "cpu" and result.returns.shape == (3, 2)
    # the random numbers are drawn on the CPU on every device: only float kernels differ
    on_cpu = Dream(m, pool, max_steps=10).rollout(BatchedController("linear", flat, 4, 16), [1, 2])
    torch.testing.assert_close(result.returns, on_cpu.returns, atol=1e-3, rtol=1e-3)
