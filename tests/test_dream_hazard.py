"""The dream's hazard calibrated by age: offsets per age band end dreams where they say, and the fit makes the
collection policy die in the dream, band by band, about as often as it died in the (here synthetic) rollouts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import smoke_params
from flows.controller import hazard_report
from wm.actions import TAKECOVER
from wm.config import ControllerConfig, DreamConfig
from wm.controller import BatchedController, Controller
from wm.dream import Dream
from wm.dream_fitness import DreamFitness, real_lifetimes
from wm.dream_hazard import band_counts, fit_age_offsets
from wm.io import save_npz
from wm.mdrnn import MDRNN, save_mdrnn

Z, HIDDEN, MAX_STEPS, BAND = 8, 16, 40, 10
REAL_HAZARD = (0.002, 0.05, 0.1, 0.1)  # per step in bands of 10 steps: rising with age, as Take Cover's does


def flat_m(done_logit: float = -4.0) -> MDRNN:
    """A tiny Take Cover M whose done head says the same thing at every step: a flat hazard, as our dream's is."""
    torch.manual_seed(0)
    m = MDRNN(z_dim=Z, action_dim=1, hidden=HIDDEN, gaussians=2, reward_kind="survival", mixture="per_dim").eval()
    with torch.no_grad():
        m.head.weight[-1].zero_()
        m.head.bias[-1] = done_logit
    return m


def synthetic_rollouts(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lifetimes and deaths of n episodes under REAL_HAZARD, capped at MAX_STEPS."""
    rng = np.random.default_rng(seed)
    per_step = np.repeat(REAL_HAZARD, BAND)
    dies = rng.random((n, MAX_STEPS)) < per_step
    died = dies.any(axis=1)
    return np.where(died, dies.argmax(axis=1) + 1, MAX_STEPS), died


def test_band_counts_by_hand() -> None:
    deaths, exposure = band_counts(np.array([3, 5, 12]), np.array([True, False, True]), band=5, bands=3)
    assert deaths.tolist() == [1, 0, 1]  # the deaths at steps 2 and 11
    assert exposure.tolist() == [13, 5, 2]


@pytest.mark.parametrize("done", ["sample", "threshold"])
def test_age_offsets_end_dreams_in_the_band_they_say(done: str) -> None:
    m = flat_m(done_logit=0.5)  # without offsets every step's P(done) is 0.62, its logit above 0
    policy = BatchedController("linear", torch.zeros(2, Controller("linear", Z, HIDDEN, 1, TAKECOVER).num_params()),
                               Z, HIDDEN, 1, TAKECOVER)
    pool = torch.randn(5, Z)
    plain = Dream(m, pool, max_steps=30, done=done).rollout(policy, [1, 2, 3])
    assert int(plain.steps.max()) <= 10
    shifted = Dream(m, pool, max_steps=30, done=done, age_offsets=torch.tensor([-30.0, -30.0, 30.0]),
                    age_band=7).rollout(policy, [1, 2, 3])
    assert shifted.steps.tolist() == [[15, 15, 15]] * 2  # alive through steps 0..13, dead at step 14, the third band


def test_the_fit_matches_the_rollouts_hazard_band_by_band() -> None:
    lifetimes, died = synthetic_rollouts()
    dream = Dream(flat_m(), torch.randn(20, Z), temperature=1.0, max_steps=MAX_STEPS, done="sample")
    fit = fit_age_offsets(dream, lifetimes, died, TAKECOVER, repeat_max=10, band=BAND, dreams=1024)
    real, before, after = (np.array(x) for x in (fit.real, fit.dream_before, fit.dream_after))
    assert np.allclose(real, np.array(REAL_HAZARD) * 1000, rtol=0.25)  # the rollouts' hazard, measured
    assert np.abs(np.log(before / real)).max() > 2.0  # a flat 18 per 1,000 steps: nine times too high at first
    assert np.abs(np.log(after / real)).max() < 0.35
    assert fit.offsets[0] < fit.offsets[1] < fit.offsets[2]
    assert dream.age_offsets is not None and dream.age_offsets.tolist() == pytest.approx(fit.offsets)
    assert fit_age_offsets(Dream(flat_m(), dream.start_pool.z.clone(), temperature=1.0, max_steps=MAX_STEPS,
                                 done="sample"), lifetimes, died, TAKECOVER, 10, BAND, 1024).offsets == fit.offsets


def test_too_few_rollouts_to_calibrate_is_a_clear_error() -> None:
    dream = Dream(flat_m(), torch.randn(4, Z), max_steps=MAX_STEPS, done="sample")
    with pytest.raises(ValueError, match="too few to calibrate"):
        fit_age_offsets(dream, np.array([5, 7]), np.array([True, True]), TAKECOVER, 10, BAND)


def test_a_calibrated_dream_fitness_from_files(tmp_path) -> None:
    """DreamFitness with dream.hazard: calibrated fits the offsets on the saved rollouts and dreams with them."""
    lifetimes, died = synthetic_rollouts(600)
    rng = np.random.default_rng(1)
    dones = np.zeros(int(lifetimes.sum()), dtype=bool)
    dones[np.cumsum(lifetimes)[died] - 1] = True
    save_npz(tmp_path / "latents.npz", mu=rng.standard_normal((len(dones), Z)).astype(np.float32), lengths=lifetimes,
             dones=dones)
    assert [a.tolist() for a in real_lifetimes({"lengths": lifetimes, "dones": dones})] == [lifetimes.tolist(),
                                                                                             died.tolist()]
    save_mdrnn(tmp_path / "m.safetensors", flat_m())
    p = smoke_params()
    cfg = ControllerConfig(**{**p["controller"], "mode": "dream", "hidden_units": 5, "max_steps": MAX_STEPS})
    kw = dict(temperature=1.0, patience=None, dropout=0.0, start="first_frame", first_frame_share=0.0, done="sample",
              ensemble_done="max", disagreement=0.0, hazard_band=BAND, action_noise=0.0,
              member_pick="step")
    flat = [np.zeros(Controller("linear", Z, HIDDEN, 5, TAKECOVER).num_params(), np.float32)]
    files = (str(tmp_path / "m.safetensors"), str(tmp_path / "latents.npz"), cfg)
    model = DreamFitness(*files, DreamConfig(**kw, hazard="model"), TAKECOVER)
    calibrated = DreamFitness(*files, DreamConfig(**kw, hazard="calibrated"), TAKECOVER)
    assert model.age_fit() is None and hazard_report(model) == {}
    report = hazard_report(calibrated)
    assert report["hazard_gap_after"] < report["hazard_gap_before"] / 3
    assert calibrated.world().age_offsets is not None and model.world().age_offsets is None
    # this M's deaths ignore what C does, so C's calibrated dream lives as long as the rollouts did; M's own does not
    seeds = list(range(64))
    real_mean = lifetimes.mean()
    lived, lived_plain = calibrated.population(flat, seeds)[0], model.population(flat, seeds)[0]
    assert abs(lived - real_mean) < 2.0 < abs(lived_plain - real_mean)
