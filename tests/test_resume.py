"""A training run stopped after an epoch or generation resumes from its checkpoint and ends with the weights an
uninterrupted run gives; a checkpoint made under other params or inputs is ignored."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import smoke_params
from wm.checkpoint import Checkpoint, fingerprint
from wm.cmaes import train_cmaes
from wm.collect import collect_rollout
from wm.config import CollectConfig, ControllerConfig, DreamConfig, CarRacingConfig, MdrnnConfig, VaeConfig
from wm.controller import Controller
from wm.dream_fitness import DreamFitness
from wm.encode import encode_rollouts
from wm.io import load_npz
from wm.mdrnn import MDRNN, save_mdrnn
from wm.frames import FrameSource
from wm.train_mdrnn import train_ensemble, train_mdrnn
from wm.train_vae import train_vae
from wm.vae import ConvVAE

P = smoke_params()


class Killed(Exception):
    """Stands in for SIGKILL: the run stops right after a checkpoint is on disk."""


class KilledAfter(Checkpoint):
    """A checkpoint that stops the run after its n-th save."""

    def __init__(self, name: str, key: str, root: Path, saves: int) -> None:
        super().__init__(name, key, root)
        self.left = saves

    def save(self, tensors, state) -> None:
        super().save(tensors, state)
        self.left -= 1
        if self.left == 0:
            raise Killed


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Real frames of two short CarRacing rollouts, their latents (untrained V) and an untrained M."""
    root = tmp_path_factory.mktemp("resume")
    env, cfg = CarRacingConfig(**P["env"]), CollectConfig(**{**P["collect"], "rollouts": 2, "max_steps": 48})
    for i in range(2):
        collect_rollout(env, cfg, 0, i, root / "rollouts")
    torch.manual_seed(0)
    encode_rollouts(ConvVAE(P["vae"]["z_dim"]), root / "rollouts", root / "latents.npz", progress=False)
    save_mdrnn(root / "mdrnn.safetensors", MDRNN(P["vae"]["z_dim"], 3, 32, 2))
    frames = FrameSource.from_dir(root / "rollouts", P["vae"]["holdout"], None, 0)  # streamed, as the stage does
    return {"root": root, "frames": frames, "latents": load_npz(root / "latents.npz")}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_vae_resumes_to_the_uninterrupted_weights(data: dict, tmp_path: Path) -> None:
    cfg = VaeConfig(**{**P["vae"], "epochs": 3, "batch_size": 16})
    whole = train_vae(data["frames"], cfg, 0, progress=False)
    with pytest.raises(Killed):
        train_vae(data["frames"], cfg, 0, progress=False, checkpoint=KilledAfter("vae", "k", tmp_path, 2))
    resumed = train_vae(data["frames"], cfg, 0, progress=False, checkpoint=Checkpoint("vae", "k", tmp_path))
    assert _equal(whole.model.state_dict(), resumed.model.state_dict())
    assert resumed.history == whole.history


def test_mdrnn_resumes_to_the_uninterrupted_weights(data: dict, tmp_path: Path) -> None:
    cfg = MdrnnConfig(**{**P["mdrnn"], "epochs": 3, "hidden": 32, "gaussians": 2, "dropout": 0.1})
    whole = train_mdrnn(data["latents"], cfg, 0, progress=False)
    with pytest.raises(Killed):
        train_mdrnn(data["latents"], cfg, 0, progress=False, checkpoint=KilledAfter("mdrnn", "k", tmp_path, 1))
    resumed = train_mdrnn(data["latents"], cfg, 0, progress=False, checkpoint=Checkpoint("mdrnn", "k", tmp_path))
    assert _equal(whole.model.state_dict(), resumed.model.state_dict())
    assert resumed.history == whole.history and resumed.heldout == whole.heldout


def test_an_ensemble_resumes_without_training_a_finished_member_again(data: dict, tmp_path: Path, capsys) -> None:
    cfg = MdrnnConfig(**{**P["mdrnn"], "epochs": 2, "hidden": 32, "gaussians": 2, "members": 2})
    whole = train_ensemble(data["latents"], cfg, 0, progress=False)

    class KilledInMember1(Checkpoint):
        def part(self, k: int) -> Checkpoint:
            return KilledAfter(f"mdrnn.part{k}", self.key, tmp_path, 1) if k else self

    with pytest.raises(Killed):  # member 0 trained; member 1 killed after its first epoch
        train_ensemble(data["latents"], cfg, 0, progress=False, checkpoint=KilledInMember1("mdrnn", "k", tmp_path))
    capsys.readouterr()
    checkpoint = Checkpoint("mdrnn", "k", tmp_path)
    resumed = train_ensemble(data["latents"], cfg, 0, progress=False, checkpoint=checkpoint)
    said = capsys.readouterr().out
    assert "resuming after epoch 2 of 2" in said and "resuming after epoch 1 of 2" in said
    for a, b in zip(whole, resumed):
        assert _equal(a.model.state_dict(), b.model.state_dict()) and a.history == b.history
    checkpoint.clear()  # the stage's outputs are written: the member's part goes too
    assert not list(tmp_path.glob("*.safetensors"))


def test_cmaes_in_the_dream_resumes_to_the_uninterrupted_result(data: dict, tmp_path: Path) -> None:
    root = data["root"]
    cfg = ControllerConfig(**{**P["controller"], "mode": "dream", "population": 6, "generations": 5,
                              "eval_every": 2, "max_steps": 20})
    fitness = DreamFitness(str(root / "mdrnn.safetensors"), str(root / "latents.npz"), cfg, DreamConfig(**P["dream"]))
    n = Controller(cfg.arch, P["vae"]["z_dim"], 32, cfg.hidden_units).num_params()
    whole = train_cmaes(n, cfg, fitness.population, seed=3)
    with pytest.raises(Killed):
        train_cmaes(n, cfg, fitness.population, seed=3, checkpoint=KilledAfter("controller", "k", tmp_path, 3))
    scored: list[int] = []

    def counting(cands, seeds):
        scored.append(len(cands))
        return fitness.population(cands, seeds)

    resumed = train_cmaes(n, cfg, counting, seed=3, checkpoint=Checkpoint("controller", "k", tmp_path))
    assert np.array_equal(resumed.best_params, whole.best_params) and resumed.best_score == whole.best_score
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in whole.history]
    assert resumed.checks == whole.checks
    # only generations 4 and 5 were scored again (and the checks at 4 and at the last generation)
    assert scored == [6, 1, 6, 1]


def test_a_checkpoint_under_other_params_or_inputs_is_ignored(data: dict, tmp_path: Path) -> None:
    cfg = VaeConfig(**{**P["vae"], "epochs": 2, "batch_size": 16})
    rollouts = data["root"] / "rollouts"
    key = fingerprint({"vae": cfg.model_dump()}, [rollouts])
    with pytest.raises(Killed):
        train_vae(data["frames"], cfg, 0, progress=False, checkpoint=KilledAfter("vae", key, tmp_path, 1))
    assert Checkpoint("vae", key, tmp_path).load() is not None
    other = fingerprint({"vae": cfg.model_copy(update={"lr": 0.002}).model_dump()}, [rollouts])
    assert other != key and Checkpoint("vae", other, tmp_path).load() is None
    touched = next(rollouts.iterdir())
    touched.write_bytes(touched.read_bytes())  # rewritten input: a new mtime
    assert fingerprint({"vae": cfg.model_dump()}, [rollouts]) != key
