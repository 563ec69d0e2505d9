"""V's training frames, streamed from the rollout files so that memory does not grow with the data.

Each rollout file is split once, by a generator seeded with (seed, file index): a `holdout` fraction of its frames
is held out, and of the rest a fixed share is kept so that at most `max_frames` frames train V. An epoch reads the
files in a fresh seeded order, pushes their kept frames through a shuffle buffer of `buffer` frames, and yields
uint8 batches. Peak memory is about `buffer` frames per worker plus one rollout file, whatever the number of files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from wm.rollouts import list_rollouts, rollout_steps

Loader = Callable[[], np.ndarray]
MAX_HELD = 4096  # held-out frames kept in memory for validation and V's reconstruction pictures


def _file_frames(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data["frames"]


@dataclass
class FrameSource:
    """Where V's frames come from: one loader and one length per rollout."""

    loaders: list[Loader]
    lengths: list[int]
    holdout: float
    max_frames: int | None
    seed: int

    @classmethod
    def from_dir(cls, rollouts: str | Path, holdout: float, max_frames: int | None, seed: int) -> "FrameSource":
        paths = list_rollouts(rollouts)
        if not paths:
            raise FileNotFoundError(f"{rollouts}: no rollout files (run the collect stage first)")
        loaders: list[Loader] = [lambda p=p: _file_frames(p) for p in paths]
        return cls(loaders, [rollout_steps(p) for p in paths], holdout, max_frames, seed)

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], holdout: float, max_frames: int | None = None,
                    seed: int = 0) -> "FrameSource":
        """In-memory frames, one array per rollout (tests, notebooks)."""
        return cls([lambda a=a: a for a in arrays], [len(a) for a in arrays], holdout, max_frames, seed)

    def split(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(train, held-out) frame indices of rollout `index`: fixed by the seed, the same in every epoch."""
        n = self.lengths[index]
        rng = np.random.default_rng([self.seed, 0, index])
        held = rng.random(n) < self.holdout
        train = np.flatnonzero(~held)
        keep = self.keep_fraction()
        if keep < 1.0:  # rounded up or down at random, so that even a share under one frame per file adds up
            count = int(np.floor(len(train) * keep + rng.random()))
            train = np.sort(rng.choice(train, count, replace=False))
        return train, np.flatnonzero(held)

    def keep_fraction(self) -> float:
        """The share of each file's training frames V sees, so that about `max_frames` train in all."""
        total = sum(self.lengths) * (1.0 - self.holdout)
        if self.max_frames is None or total <= self.max_frames:
            return 1.0
        return self.max_frames / total

    def train_frames(self) -> int:
        """How many frames train V per epoch."""
        return sum(len(self.split(i)[0]) for i in range(len(self.lengths)))

    def held_out(self, limit: int = MAX_HELD) -> np.ndarray:
        """Up to `limit` held-out frames, from files in a seeded order until there are enough (read once)."""
        parts, size = [], 0
        for index in np.random.default_rng([self.seed, 3]).permutation(len(self.loaders)):
            held = self.split(int(index))[1]
            if len(held) and size < limit:
                parts.append(self.loaders[index]()[held[:limit - size]])
                size += len(parts[-1])
        return np.concatenate(parts) if parts else np.zeros((0, 64, 64, 3), np.uint8)


class FrameStream(IterableDataset):
    """One epoch of shuffled uint8 batches; workers share the files out, each with its own buffer."""

    def __init__(self, source: FrameSource, batch_size: int, buffer: int, epoch: int) -> None:
        self.source, self.batch_size, self.buffer, self.epoch = source, batch_size, max(buffer, batch_size), epoch

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.source.seed, 2, self.epoch, worker])
        order = np.random.default_rng([self.source.seed, 1, self.epoch]).permutation(len(self.source.loaders))
        pending: list[np.ndarray] = []
        size = 0
        for index in order[worker::workers]:
            train = self.source.split(int(index))[0]
            if not len(train):
                continue
            pending.append(self.source.loaders[index]()[train])
            size += len(train)
            if size >= self.buffer:
                frames = np.concatenate(pending)
                frames = frames[rng.permutation(len(frames))]
                cut = (len(frames) // 2) // self.batch_size * self.batch_size or len(frames)
                yield from self._batches(frames[:cut])
                pending, size = [frames[cut:]], len(frames) - cut
        if size:
            frames = np.concatenate(pending)
            yield from self._batches(frames[rng.permutation(len(frames))])

    def _batches(self, frames: np.ndarray) -> Iterator[torch.Tensor]:
        for start in range(0, len(frames), self.batch_size):
            yield torch.from_numpy(np.ascontiguousarray(frames[start:start + self.batch_size]))


def epoch_batches(source: FrameSource, batch_size: int, buffer: int, workers: int, epoch: int) -> DataLoader:
    """A DataLoader over one epoch: `workers` processes read and shuffle while the main process trains."""
    return DataLoader(FrameStream(source, batch_size, buffer, epoch), batch_size=None, num_workers=workers,
                      prefetch_factor=4 if workers else None,
                      generator=torch.Generator().manual_seed(source.seed))  # leaves torch's global RNG alone
