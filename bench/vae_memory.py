"""Peak memory of V's training at 1x, 10x and 100x the default dataset: streaming keeps it flat.

The default profile collects 100 rollouts of 500 frames. This writes `--distinct` synthetic rollout files of that
length (compressible frames, so that reading 10,000 of them stays quick) and hard-links them to 100, 1,000 and
10,000 names, so 100x costs no more disk than 1x. Each size then trains V in a fresh process, exactly as the `vae`
stage does (`FrameSource.from_dir` + `train_vae`, the profile's `vae` section), for one epoch capped at
`--frames` frames, and prints that process's peak RSS next to what the whole dataset would take in RAM.

    python bench/vae_memory.py                      # params.yaml's vae section
    python bench/vae_memory.py --params params/paper.yaml --scales 1 10
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wm.io import save_npz  # noqa: E402
from wm.rollouts import encode_meta, rollout_path  # noqa: E402

FRAME_BYTES = 64 * 64 * 3

CHILD = """
import resource, sys, time
sys.path.insert(0, {repo!r})
from wm.config import load_params
from wm.frames import FrameSource
from wm.train_vae import train_vae
p = load_params({params!r})
cfg = p.vae.model_copy(update={{"epochs": 1, "max_frames": {frames}}})
t = time.perf_counter()
source = FrameSource.from_dir({rollouts!r}, cfg.holdout, cfg.max_frames, p.seed)
result = train_vae(source, cfg, p.seed, progress=False)
print(result.frames, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def synthetic_rollout(path: Path, steps: int, seed: int) -> None:
    """A rollout file with the real layout: a road-grey field, a moving bright square, a little noise."""
    rng = np.random.default_rng(seed)
    frames = np.full((steps, 64, 64, 3), 105, np.uint8)
    for t in range(steps):
        x, y = (t * 3 + seed) % 56, (t * 5 + 2 * seed) % 56
        frames[t, y:y + 8, x:x + 8] = 230
        frames[t, 60:] = rng.integers(0, 255, (4, 64, 3), dtype=np.uint8)
    save_npz(path, frames=frames, actions=np.zeros((steps, 3), np.float32), rewards=np.zeros(steps, np.float32),
             dones=np.zeros(steps, np.float32), meta=encode_meta({"synthetic": True}))


def build(root: Path, rollouts: int, distinct: int, steps: int) -> Path:
    """A directory of `rollouts` names linking to `distinct` synthetic files."""
    sources = root / "distinct"
    if not sources.exists():
        for i in range(distinct):
            synthetic_rollout(rollout_path(sources, i), steps, i)
    out = root / f"x{rollouts}"
    out.mkdir()
    for i in range(rollouts):
        os.link(rollout_path(sources, i % distinct), rollout_path(out, i))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--rollouts", type=int, default=100, help="rollouts at 1x (the default profile's)")
    ap.add_argument("--steps", type=int, default=500, help="frames per rollout (the default profile's)")
    ap.add_argument("--distinct", type=int, default=100)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    ap.add_argument("--frames", type=int, default=4096, help="frames V trains on per run (vae.max_frames)")
    args = ap.parse_args()
    print(f"{'scale':>6} {'rollouts':>9} {'frames':>10} {'in RAM if loaded':>17} {'peak RSS':>10} {'wall':>7}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        peaks = []
        for scale in args.scales:
            n = args.rollouts * scale
            rollouts = build(Path(tmp), n, min(args.distinct, n), args.steps)
            code = CHILD.format(repo=str(REPO), params=args.params, frames=args.frames, rollouts=str(rollouts))
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{scale}x failed:\n{proc.stderr[-3000:]}")
            out = proc.stdout
            trained, seconds, peak_kb = out.split()[-3:]
            peaks.append(int(peak_kb) / 1024)
            dataset_gb = n * args.steps * FRAME_BYTES / 1e9
            print(f"{scale:>5}x {n:>9,} {n * args.steps:>10,} {dataset_gb:>14.1f} GB {peaks[-1]:>7,.0f} MB "
                  f"{time.perf_counter() - t:>6.0f}s", flush=True)
        print(f"peak RSS at {args.scales[-1]}x / at {args.scales[0]}x: {peaks[-1] / peaks[0]:.2f}")


if __name__ == "__main__":
    main()
