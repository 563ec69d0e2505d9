"""V's streamed frames: every training frame once per epoch, a fixed held-out split, and memory set by the buffer."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from wm.frames import FrameSource, epoch_batches
from wm.io import save_npz
from wm.rollouts import encode_meta, rollout_path

FILES, STEPS = 60, 100


def _tagged(index: int, steps: int) -> np.ndarray:
    """Frames that name themselves: file index and step in the first pixels, the rest a flat grey."""
    frames = np.full((steps, 64, 64, 3), 90, np.uint8)
    frames[:, 0, 0, 0] = index
    frames[:, 0, 0, 1] = np.arange(steps)
    return frames


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("frames")
    for i in range(FILES):
        n = STEPS - i % 7  # rollouts of different lengths
        save_npz(rollout_path(out, i), frames=_tagged(i, n), actions=np.zeros((n, 3), np.float32),
                 rewards=np.zeros(n, np.float32), dones=np.zeros(n, np.float32), meta=encode_meta({}))
    return out


def _ids(batches) -> list[tuple[int, int]]:
    return [(int(f[0, 0, 0]), int(f[0, 0, 1])) for b in batches for f in b.numpy()]


def test_an_epoch_streams_every_training_frame_once_and_never_a_held_out_one(rollouts: Path) -> None:
    source = FrameSource.from_dir(rollouts, holdout=0.1, max_frames=None, seed=3)
    expected = {(i, int(t)) for i in range(FILES) for t in source.split(i)[0]}
    held = {(i, int(t)) for i in range(FILES) for t in source.split(i)[1]}
    assert held and not expected & held and len(expected | held) == sum(source.lengths)
    one = _ids(epoch_batches(source, 32, 600, 0, epoch=1))
    assert len(one) == len(expected) == source.train_frames() and set(one) == expected
    assert one == _ids(epoch_batches(source, 32, 600, 0, epoch=1))  # deterministic
    assert one != _ids(epoch_batches(source, 32, 600, 0, epoch=2))  # reshuffled every epoch
    # a 600-frame buffer holds about 6 rollouts, and one batch draws from several
    assert len({i for i, _ in one[:32]}) > 3
    two = _ids(epoch_batches(source, 32, 600, 2, epoch=1))  # two reader processes share the files out
    assert sorted(two) == sorted(one)
    assert {(int(f[0, 0, 0]), int(f[0, 0, 1])) for f in source.held_out()} <= held


def test_max_frames_keeps_a_fixed_share_of_every_rollout(rollouts: Path) -> None:
    source = FrameSource.from_dir(rollouts, holdout=0.0, max_frames=1200, seed=0)
    ids = _ids(epoch_batches(source, 50, 500, 0, epoch=1))
    assert abs(len(ids) - 1200) <= FILES and len({i for i, _ in ids}) == FILES
    assert set(ids) == set(_ids(epoch_batches(source, 50, 500, 0, epoch=2)))  # the same frames every epoch


def test_memory_is_set_by_the_buffer_not_by_the_number_of_rollouts(rollouts: Path) -> None:
    """60 files of ~100 frames are 7 MB of frames; a 128-frame buffer (1.5 MB) keeps the peak near it."""
    source = FrameSource.from_dir(rollouts, holdout=0.0, max_frames=None, seed=0)
    total = sum(source.lengths) * 64 * 64 * 3
    tracemalloc.start()
    count = sum(len(b) for b in epoch_batches(source, 32, 128, 0, epoch=1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == sum(source.lengths)
    assert peak < total / 2, f"peak {peak / 1e6:.1f} MB for {total / 1e6:.1f} MB of frames"
