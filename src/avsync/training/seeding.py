"""Seeds that are pure functions of where a draw happens, so that a resumed run draws the same.

:class:`SeededIndex` carries the seed of a training batch to the process that loads it: the
resumable loader marks each batch's first item with (seed, epoch, batch position), and the data set
wrapper (:class:`avsync.training.worker_deaths.CrashTracedDataset`) re-seeds the global RNGs with it
just before loading that item, in the main process or in whichever worker got the batch. The items
of a batch and its collate then draw from one stream that depends on the batch's position only, so
the batches are the same with 0 or N workers, after a worker restart and after a resume.
"""
from __future__ import annotations

import random

import numpy as np
import torch

from avsync.offsets import stable_hash

__all__ = ["derived_seed", "seed_all", "SeededIndex"]


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (independent of PYTHONHASHSEED)."""
    return stable_hash("/".join(str(p) for p in parts)) & (2**63 - 1)


def seed_all(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's legacy global RNG and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class SeededIndex(int):
    """A data set index that also says how to seed the RNGs before its item is loaded."""

    seed: int

    def __new__(cls, index: int, seed: int) -> "SeededIndex":
        out = super().__new__(cls, index)
        out.seed = int(seed)
        return out

    def __reduce__(self):  # to the worker processes, seed included
        return SeededIndex, (int(self), self.seed)
