"""Shapes, parameter counts and the MDN loss checked against a hand computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wm.controller import Controller, to_env_action
from wm.mdrnn import MDRNN, gmm_nll, sample_next_z
from wm.vae import ConvVAE, vae_loss


def test_vae_shapes_and_kl_floor() -> None:
    vae = ConvVAE(32)
    x = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        recon, mu, logvar = vae(x)
    assert recon.shape == (5, 3, 64, 64) and mu.shape == (5, 32) and logvar.shape == (5, 32)
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0
    # a posterior equal to the prior has KL 0, so the loss is the reconstruction plus the floor 0.5 * 32
    zeros = torch.zeros(5, 32)
    loss, rec, kl = vae_loss(x, x, zeros, zeros, kl_tolerance=0.5)
    assert float(rec) == 0.0 and float(kl) == 0.0 and float(loss) == pytest.approx(16.0)


@pytest.mark.parametrize(("arch", "expected"), [("linear", 867), ("hidden", 1443), ("v_only", 99)])
def test_controller_parameter_counts(arch: str, expected: int) -> None:
    c = Controller(arch, z_dim=32, h_dim=256, hidden_units=40)
    assert c.num_params() == expected
    flat = np.arange(expected, dtype=np.float64) / expected
    assert np.allclose(c.set_flat(flat).get_flat(), flat, atol=1e-6)
    out = c(torch.zeros(4, 32), torch.zeros(4, 256))
    assert out.shape == (4, 3)


def test_env_action_ranges() -> None:
    a = to_env_action(torch.tensor([-1.0, -1.0, 1.0]))
    assert a.tolist() == [-1.0, 0.0, 1.0]


def test_mdrnn_shapes() -> None:
    m = MDRNN(z_dim=32, action_dim=3, hidden=256, gaussians=5)
    (mus, log_sigmas, logit_pi, reward, done), (h, c) = m(torch.zeros(2, 7, 32), torch.zeros(2, 7, 3))
    assert mus.shape == (2, 7, 5, 32) and log_sigmas.shape == (2, 7, 5, 32)
    assert logit_pi.shape == (2, 7, 5) and reward.shape == (2, 7) and done.shape == (2, 7)
    assert h.shape == (1, 2, 256) and c.shape == (1, 2, 256)


def test_gmm_nll_matches_hand_computation() -> None:
    # two components over a 2-d target; written out with plain math
    target = torch.tensor([[0.5, -1.0]])
    mus = torch.tensor([[[0.0, 0.0], [1.0, -1.0]]])
    sigmas = [[1.0, 2.0], [0.5, 0.5]]
    log_sigmas = torch.log(torch.tensor([sigmas]))
    weights = [0.25, 0.75]
    logit_pi = torch.log(torch.tensor([weights])) + 3.0  # any shift: logits are normalised

    def normal_pdf(x: float, mu: float, s: float) -> float:
        return math.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    likelihood = sum(
        w * normal_pdf(0.5, m[0], s[0]) * normal_pdf(-1.0, m[1], s[1])
        for w, m, s in zip(weights, [[0.0, 0.0], [1.0, -1.0]], sigmas)
    )
    got = gmm_nll(target, mus, log_sigmas, logit_pi)
    assert got.shape == (1,)
    assert float(got[0]) == pytest.approx(-math.log(likelihood), rel=1e-5)


def test_temperature_widens_samples() -> None:
    mus = torch.zeros(4096, 5, 8)
    mus[:, 1] += 3.0
    log_sigmas = torch.full((4096, 5, 8), math.log(0.5))
    logit_pi = torch.tensor([2.0, 0.0, -1.0, -1.0, -1.0]).expand(4096, 5)
    cold = sample_next_z(mus, log_sigmas, logit_pi, 0.5, torch.Generator().manual_seed(0))
    hot = sample_next_z(mus, log_sigmas, logit_pi, 1.5, torch.Generator().manual_seed(0))
    assert float(hot.std()) > float(cold.std())
