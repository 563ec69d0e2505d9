"""The iterative procedure on the smoke profile: DVC foreach stages, incremental, purely in the dream."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smoke_story import smoke_story

ITERATION = ["explore", "encode_iter", "mdrnn_iter", "controller_iter", "dream_iter", "evaluate_iter"]


def stages(k: int, first: str = "explore") -> list[str]:
    """Iteration k's stages from `first` on."""
    return [f"{s}@{k}" for s in ITERATION[ITERATION.index(first):]]


@pytest.mark.e2e
def test_adding_an_iteration_runs_only_it_and_a_change_reruns_from_there(project: Path, prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    assert sorted(story.iterated.ran) == sorted(stages(1))
    assert story.iterated.ran[:4] == stages(1)[:4]  # in dependency order; nothing of iteration 0 reran
    # iterate.sigma0 changed: CMA-ES of iteration 1 and everything after it; not its rollouts nor M_1
    assert sorted(story.reiterated.ran) == sorted(stages(1, "controller_iter"))


@pytest.mark.e2e
def test_iterations_train_only_in_the_dream_and_count_real_steps(project: Path, prefect_server: str) -> None:
    project = smoke_story(project, prefect_server).project
    from wm.io import load_npz

    rows = json.loads((project / "plots" / "iter1" / "progress.json").read_text())
    assert [r["iteration"] for r in rows] == [0, 1] and all(r["mode"] == "dream" for r in rows)
    for k, row in enumerate(rows):
        lengths = load_npz(project / "data" / f"iter{k}" / "latents.npz")["lengths"]
        assert row["collected_steps"] == row["real_steps"] == int(np.sum(lengths))  # no real-env fitness at all
        assert row["fitness_steps"] == 0
        trained = project / "metrics" / (f"iter{k}" if k else ".") / "controller.json"
        assert json.loads(trained.read_text())["real_steps"] == 0
    assert rows[0]["collected_steps"] == 4 * 60  # smoke: 4 random rollouts of 60 steps
    assert rows[1]["collected_steps"] - rows[0]["collected_steps"] == json.loads(
        (project / "metrics" / "iter1" / "explore.json").read_text())["real_steps"]
    # the warm start: iteration 1's C came from C_0, in M_1's dream
    c1 = json.loads((project / "metrics" / "iter1" / "controller.json").read_text())
    assert c1["mode"] == "dream" and c1["iteration"] == 1
    fig = Image.open(project / "plots" / "iter1" / "score_vs_steps.png")
    assert fig.format == "PNG" and fig.size[0] > 400


@pytest.mark.e2e
def test_the_newest_iteration_is_champion_whatever_it_scores(project: Path, prefect_server: str) -> None:
    story = smoke_story(project, prefect_server)
    agents = story.reiterated.versions["wm-agent"]
    champion = agents[story.reiterated.aliases["wm-agent"]["champion"]]
    assert champion["dvc.stage"] == "evaluate_iter@1"
    assert champion["promotion_rule"] == "newest dream-trained iteration" and champion["promoted"] == "true"


@pytest.mark.e2e
def test_every_plot_renders(project: Path, prefect_server: str) -> None:
    plots = smoke_story(project, prefect_server).plots
    assert plots, "dvc plots show returned nothing"
    text = json.dumps(plots)
    assert '"errors"' not in text, text[:3000]
    for wanted in ("cmaes_fitness", "plots/iter1/progress.json", "plots/iter1/rewards.json",
                   "plots/iter1/vae_recon.png", "plots/controller_checks.json"):
        assert any(wanted in key for key in plots), (wanted, sorted(plots))
