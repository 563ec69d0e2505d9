"""MLflow overhead per stage: the tracking run itself, registering weights, and logging + registering wm-agent.

Works in a temporary directory (fresh sqlite store) with untrained paper-sized models.
Usage: python bench/registry_overhead.py [--keep DIR]   (--keep: work in DIR and leave the store there)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def timed(label: str, fn, rows: list[tuple[str, float]]):  # noqa: ANN001, ANN201
    """Run fn(), record its wall time under `label`, return its result."""
    t0 = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - t0))
    return out


def main() -> None:
    """Print the seconds each MLflow step adds to a stage."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", help="work in this new directory and keep it")
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    workdir = contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()
    with workdir as tmp:
        os.makedirs(tmp, exist_ok=True)
        os.chdir(tmp)
        for name in ("wm", "flows", "ops"):
            os.symlink(REPO / name, name)
        shutil.copy(REPO / "dvc.yaml", "dvc.yaml")
        shutil.copy(REPO / "params" / "smoke.yaml", "params.yaml")
        os.environ.pop("MLFLOW_TRACKING_URI", None)

        from wm.config import load_params
        from wm.controller import Controller, save_controller
        from wm.mdrnn import MDRNN, save_mdrnn
        from wm.vae import ConvVAE, save_vae

        # untrained stand-ins, written in this temporary directory only
        weights = {k: f"bench-{k}.safetensors" for k in ("vae", "mdrnn", "controller")}
        save_vae(weights["vae"], ConvVAE(32))
        save_mdrnn(weights["mdrnn"], MDRNN(32, 3, 256, 5))
        save_controller(weights["controller"], Controller("linear", 32, 256))
        params = load_params("params.yaml").model_dump()

        timed("import mlflow", lambda: __import__("mlflow"), rows)
        from ops.registry import register_agent, register_weights
        from ops.tracking import stage_run

        metrics = {"mean": 1.0, "std": 0.0, "seeds": [0], "episodes": 1}
        for attempt in ("new", "unchanged"):
            t0 = time.perf_counter()
            with stage_run("bench", {"seed": 0}):
                rows.append((f"stage_run open ({attempt} store)" if attempt == "new" else "stage_run open",
                             time.perf_counter() - t0))
                for k, path in weights.items():
                    timed(f"register_weights wm-{k} ({attempt})",
                          lambda: register_weights(f"wm-{k}", path, k, params, "benchmark stand-in"), rows)
                timed(f"register_agent ({attempt})",
                      lambda: register_agent(weights, {"env": "CarRacing-v3", "crop_rows": 84, "frame_size": 64}, metrics, params), rows)
                t1 = time.perf_counter()
            rows.append(("stage_run close", time.perf_counter() - t1))
        os.chdir(REPO)
    for label, seconds in rows:
        print(f"{label:44s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
