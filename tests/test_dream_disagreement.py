"""bench/dream_disagreement.py: how far an ensemble's Ms part about the next z along a policy's dreams."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from dream_disagreement import disagreement  # noqa: E402
from wm.io import save_npz  # noqa: E402
from wm.mdrnn import MDRNN, save_mdrnn  # noqa: E402


def _fixed_m(z_shift: float, p_done: float = 0.01) -> MDRNN:
    """An M that ignores its input: every mixture component's mean is z_shift, calibrated P(done) is p_done."""
    m = MDRNN(z_dim=4, action_dim=1, hidden=8, gaussians=2, reward_kind="survival", done_weight=10.0,
              mixture="per_dim").eval()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
        m.head.bias[: 2 * 4] = z_shift  # the K x z means come first
        m.head.bias[-1] = math.log(p_done / (1 - p_done)) + math.log(10.0)
    return m


def test_members_that_agree_have_no_disagreement_and_a_shift_shows_as_half_of_it() -> None:
    same, alive = disagreement([_fixed_m(0.0), _fixed_m(0.0)], torch.zeros(3, 4), None, 1.0, dreams=8,
                               max_steps=20, repeat_max=10, seed=0)
    assert np.allclose(same, 0.0)
    assert np.allclose(alive, 8 * 0.99 ** np.arange(20), rtol=1e-4)  # weighted by the chance to be alive
    apart, alive = disagreement([_fixed_m(0.0), _fixed_m(0.6)], torch.zeros(3, 4), None, 1.0, dreams=8,
                                max_steps=20, repeat_max=10, seed=0)
    assert np.allclose(apart / alive, 0.3, rtol=1e-5)  # two members 0.6 apart: a standard deviation of 0.3


def test_the_script_prints_a_row_per_policy_and_refuses_a_single_m(tmp_path) -> None:
    one, two, latents = tmp_path / "one.safetensors", tmp_path / "two.safetensors", tmp_path / "latents.npz"
    save_mdrnn(one, _fixed_m(0.0))
    save_mdrnn(two, _fixed_m(0.0), members=[_fixed_m(0.2)])
    save_npz(latents, mu=np.zeros((30, 4), np.float32), logsigma=np.zeros((30, 4), np.float32),
             actions=np.zeros((30, 1), np.float32), rewards=np.ones(30, np.float32), dones=np.zeros(30, np.float32),
             lengths=np.array([10, 20]))
    run = [sys.executable, str(ROOT / "bench" / "dream_disagreement.py"), "--latents", str(latents), "--dreams", "4",
           "--max-steps", "30"]
    done = subprocess.run([*run, "--mdrnn", str(two)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    row = done.stdout.splitlines()[3].split("|")
    assert row[1].strip() == "collection policy" and row[3].strip() == "0.1000"
    bad = subprocess.run([*run, "--mdrnn", str(one)], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "holds one M" in bad.stderr
