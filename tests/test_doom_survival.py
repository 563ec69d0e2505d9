"""bench/doom_survival.py: survival curves of a policy in M's dream and in the real game, and its bad input."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from doom_survival import dream_alive, real_alive  # noqa: E402
from wm.io import save_npz  # noqa: E402
from wm.mdrnn import MDRNN, save_mdrnn  # noqa: E402


def _constant_hazard_m(p_done: float) -> MDRNN:
    """An M whose every output ignores its input: calibrated P(done) = p_done at every step, done logit below 0."""
    m = MDRNN(z_dim=4, action_dim=1, hidden=8, gaussians=2, reward_kind="survival", done_weight=10.0,
              mixture="per_dim").eval()
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.zero_()
        m.head.bias[-1] = math.log(p_done / (1 - p_done)) + math.log(10.0)  # the done logit, death-weighted
    return m


def test_real_share_alive_counts_episodes_longer_than_each_step() -> None:
    assert real_alive(np.array([1, 2, 3, 5]), 4).tolist() == [0.75, 0.5, 0.25, 0.25]


def test_a_constant_hazard_dream_survives_geometrically_and_never_crosses_the_threshold() -> None:
    sample, threshold = dream_alive([_constant_hazard_m(0.05)], torch.zeros(3, 4), None, temperature=1.15,
                                    dreams=16, max_steps=40, repeat_max=10, seed=0)
    assert np.allclose(sample, 0.95 ** np.arange(1, 41), rtol=1e-4)
    assert (threshold == 1.0).all()  # logit = log(0.05 / 0.95) + log 10 < 0


def test_an_ensemble_dream_kills_as_its_deadliest_member_or_their_mean() -> None:
    ensemble = [_constant_hazard_m(0.02), _constant_hazard_m(0.05)]
    for rule, hazard in (("max", 0.05), ("mean", 0.035)):
        sample, _ = dream_alive(ensemble, torch.zeros(3, 4), None, temperature=1.15, dreams=16, max_steps=40,
                                repeat_max=10, seed=0, ensemble_done=rule)
        assert np.allclose(sample, (1 - hazard) ** np.arange(1, 41), rtol=1e-4), rule


def test_the_script_prints_both_curves_draws_them_and_names_bad_input(tmp_path) -> None:
    mdrnn, latents, out = tmp_path / "m.safetensors", tmp_path / "latents.npz", tmp_path / "survival.png"
    save_mdrnn(mdrnn, _constant_hazard_m(0.01))
    n = 30 + 60 + 90
    save_npz(latents, mu=np.zeros((n, 4), np.float32), logsigma=np.zeros((n, 4), np.float32),
             actions=np.zeros((n, 1), np.float32), rewards=np.ones(n, np.float32), dones=np.zeros(n, np.float32),
             lengths=np.array([30, 60, 90]))
    run = [sys.executable, str(ROOT / "bench" / "doom_survival.py"), "--mdrnn", str(mdrnn), "--latents",
           str(latents), "--dreams", "8", "--max-steps", "100"]
    done = subprocess.run([*run, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[2:] if line.strip()}
    assert rows["50"][0] == "0.667" and rows["100"][0] == "0.000"  # real: 2 of 3 outlive step 50
    assert rows["50"][1] == f"{0.99 ** 50:.3f}" and rows["50"][2] == "1.000"
    assert rows["mean"][0] == "60.0"
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    bad = subprocess.run([*run, "--controller", str(mdrnn)], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--controller and --evaluate go together" in bad.stderr
