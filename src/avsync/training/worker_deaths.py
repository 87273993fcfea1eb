"""Training and evaluation go on when a DataLoader worker process dies.

A decoder can crash natively (a segfault or abort inside FFmpeg on one broken file, or the kernel
killing a worker): PyTorch then ends training with "DataLoader worker (pid N) exited unexpectedly",
hours into a run, without saying which file did it. :class:`ResumableTrainLoader` survives it:

* :class:`CrashTracedDataset` wraps the data set; in a worker it writes the index of the item it
  is loading into a slot of shared memory (one per worker) before loading, and clears it after.
  A worker that dies leaves the index of the item that killed it in its slot.
* :class:`SurvivingWorkersIter` iterates the loader; when a worker has died it names that item's
  file (the data set's ``record_of(i).path`` where it has one) in a warning and in the data set's
  failure report (``report.record``, reason ``worker_died``), adds the item to ``crashed`` —
  from then on the item is replaced by a fixed other item, like a clip that fails to decode —
  and starts new workers at the batch that was lost. Batch positions do not move, so exact resume
  (Lightning's batch count, the loader's ``consumed``) is unchanged; ``crashed`` is checkpointed.
* :class:`SurvivingDataLoader` does the same for any other loader — training under DDP, and every
  evaluation loader, in order (its own sampler or batch sampler, e.g.
  Lightning's distributed sampler under DDP): it records the batches it
  hands to the workers in this pass and, after a death, hands the undelivered ones out again
  before going on with the sampler, so the epoch keeps its batches and every rank its count.
* After ``max_worker_deaths`` deaths the run stops with an error listing every file that killed
  a worker (a data set full of such files needs cleaning, not endless restarts).

The worker PIDs are taken off PyTorch's SIGCHLD watch list: that handler raises the same error at
whatever line the main process is running (e.g. in the middle of an optimizer step), where it
cannot be recovered; the death is then found by the loader's own check (``is_alive``) while it
waits for the lost batch, made every 0.5 s instead of PyTorch's 5 s.
"""
from __future__ import annotations

import itertools
import logging
import signal
import time
import weakref
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from avsync.offsets import stable_hash
from avsync.training.seeding import SeededIndex, seed_all

log = logging.getLogger(__name__)

__all__ = ["CrashTracedDataset", "SurvivingDataLoader", "SurvivingWorkersIter", "WORKER_DIED"]

WORKER_DIED = "worker_died"  # reason code in the failure report


class CrashTracedDataset(Dataset):
    """``dataset`` with the item each worker is loading noted in shared memory, and the items
    that crashed a worker (``crashed``) replaced by fixed other items."""

    def __init__(self, dataset: Dataset, num_workers: int, seed: int):
        self.dataset, self.seed = dataset, int(seed)
        self.loading = torch.full((max(1, int(num_workers)),), -1, dtype=torch.int64).share_memory_()
        self.crashed: set[int] = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # record_of, report, stage ... of the wrapped data set
        if name.startswith("__") or name in ("dataset", "loading", "crashed", "seed"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int):
        if isinstance(index, SeededIndex):  # the first item of a batch of the resumable loader
            seed_all(index.seed)
        index = self.stand_in(int(index))
        info = get_worker_info()
        slot = None if info is None or info.id >= len(self.loading) else info.id
        if slot is not None:
            self.loading[slot] = index
        item = self.dataset[index]
        if slot is not None:
            self.loading[slot] = -1
        return item

    def stand_in(self, index: int) -> int:
        """``index``, or for an item that crashed a worker a fixed other item that has not."""
        n = len(self.dataset)
        if index not in self.crashed or len(self.crashed) >= n:
            return index
        j = (index + 1 + stable_hash(f"crashed#{self.seed}#{index}") % max(1, n - 1)) % n
        while j in self.crashed:
            j = (j + 1) % n
        return j

    def describe(self, index: int) -> tuple[str, str]:
        """(key, file) of item ``index``: the data set's record where it has one."""
        record_of = getattr(self.dataset, "record_of", None)
        if record_of is not None:
            try:
                record = record_of(index)
                return str(record.key), str(record.path)
            except Exception:  # noqa: BLE001 - naming the file is best effort
                pass
        return f"item {index}", f"item {index} of {type(self.dataset).__name__}"


def _how_it_died(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


STATUS_CHECK_SEC = 0.5  # how often a waiting loader checks that its workers live (PyTorch: 5 s)


def _unwatch(inner, loader) -> None:
    """Take the iterator's workers off PyTorch's SIGCHLD handler (see the module docstring), and
    have it check its workers every ``STATUS_CHECK_SEC`` while it waits for a batch (a check is one
    ``is_alive`` per worker), so a death is found in half a second rather than five."""
    if getattr(inner, "_worker_pids_set", False):
        torch.utils.data._utils.signal_handling._remove_worker_pids(id(inner))
        inner._worker_pids_set = False
    if not loader.timeout and hasattr(inner, "_try_get_data") and "_try_get_data" not in vars(inner):
        # through a weak reference: a bound method stored on the iterator would keep it (and its
        # workers) alive after Lightning drops it, until the garbage collector runs
        method, iterator = type(inner)._try_get_data, weakref.ref(inner)

        def check_often(timeout=STATUS_CHECK_SEC):
            return method(iterator(), timeout)

        inner._try_get_data = check_often


def _dead_workers(inner, wait_sec: float = 2.0) -> list:
    """(worker id, process) of the iterator's dead workers; waits up to ``wait_sec`` for a worker
    whose death broke a transfer (the connection resets before the process is reaped)."""
    workers = list(getattr(inner, "_workers", ()))
    deadline = time.monotonic() + wait_sec
    while True:
        dead = [(i, w) for i, w in enumerate(workers) if not w.is_alive()]
        if dead or not workers or time.monotonic() > deadline:
            return dead
        time.sleep(0.02)


class SurvivingWorkersIter:
    """The iterator of a :class:`ResumableTrainLoader` with workers: PyTorch's, restarted at the
    lost batch whenever a worker dies (see the module docstring)."""

    def __init__(self, loader, inner, start: int):
        self.loader, self.inner, self.position = loader, inner, int(start)
        _unwatch(inner, loader)

    def __iter__(self) -> "SurvivingWorkersIter":
        return self

    def __len__(self) -> int:
        return len(self.inner)

    def __next__(self):
        while True:
            try:
                batch = next(self.inner)
            except StopIteration:
                raise
            except Exception:  # noqa: BLE001 - "worker exited unexpectedly", or a reset connection when a
                # worker dies while the main process fetches a batch it had sent
                dead = _dead_workers(self.inner)
                if not dead:
                    raise
                self._survive(dead)
                continue
            self.position += 1
            return batch

    def _survive(self, dead) -> None:
        loader, traced = self.loader, self.loader.dataset
        for worker_id, process in dead:
            index = int(traced.loading[worker_id]) if worker_id < len(traced.loading) else -1
            how = _how_it_died(process)
            if index >= 0:
                key, path = traced.describe(index)
                traced.crashed.add(index)
                reason = (f"{WORKER_DIED}: the DataLoader worker loading this file died ({how}); "
                          "replaced by another item")
                report = getattr(traced.dataset, "report", None)
                if report is not None:
                    report.record(key, path, reason, getattr(traced.dataset, "stage", "train"))
                loader.worker_deaths.append(f"{path}: {how}")
            else:
                loader.worker_deaths.append(f"(no item being loaded, batch {self.position}): {how}")
            log.warning("DataLoader worker %d (pid %s) died (%s) while loading %s (batch %d of the epoch)",
                        worker_id, process.pid, how, traced.describe(index)[1] if index >= 0 else "no item",
                        self.position)
        if len(loader.worker_deaths) > loader.max_worker_deaths:
            self.inner._shutdown_workers()
            loader._iterator = None
            raise RuntimeError(
                f"{len(loader.worker_deaths)} DataLoader worker processes died (more than max_worker_deaths="
                f"{loader.max_worker_deaths}); these files crash the decoder natively, remove them or list them "
                "in skip_list:\n  " + "\n  ".join(loader.worker_deaths))
        log.warning("restarting the DataLoader workers at batch %d of the epoch", self.position)
        self.inner._shutdown_workers()
        loader._iterator = None
        traced.loading.fill_(-1)
        self.inner = loader.restart_at(self.position)
        _unwatch(self.inner, loader)


class _Replay:
    """The loader's batch sampler (or sampler), recording what it hands out in this pass so the
    batches not delivered when a worker died can be handed out again (:meth:`restart`)."""

    def __init__(self, base):
        self.base, self.sent, self.pending, self.live, self.resume = base, [], [], None, False

    def __len__(self) -> int:
        return len(self.base)

    def restart(self, delivered: int) -> None:
        """The next pass first hands out again the batches after the first ``delivered``, then
        goes on with this pass's sampler."""
        self.pending, self.sent, self.resume = self.sent[delivered:], self.sent[:delivered], True

    def __iter__(self):
        if not self.resume:
            self.sent, self.pending, self.live = [], [], iter(self.base)
        self.resume = False
        pending, self.pending = self.pending, []
        for batch in itertools.chain(pending, self.live):
            self.sent.append(batch)
            yield batch


class SurvivingDataLoader(DataLoader):
    """A ``DataLoader`` that survives a worker process that dies (see the module docstring):
    ``DataLoader``'s arguments, plus ``max_worker_deaths``. The item that killed a worker is
    replaced by a fixed other item and reported with reason ``worker_died`` — in evaluation too,
    exactly as the data sets already replace (and report) a clip that fails to decode, so an
    evaluation keeps its item count and names the file it could not score."""

    def __init__(self, dataset: Dataset, max_worker_deaths: int = 8, **kwargs: Any):
        if isinstance(dataset, CrashTracedDataset):  # re-instantiated (Lightning) from its own attributes
            dataset = dataset.dataset
        self.max_worker_deaths = int(max_worker_deaths)
        self.worker_deaths: list[str] = []
        self._replay = None
        traced = CrashTracedDataset(dataset, int(kwargs.get("num_workers", 0)), torch.initial_seed())
        super().__init__(traced, **kwargs)

    @property
    def _index_sampler(self):
        base = super()._index_sampler
        if self._replay is None or self._replay.base is not base:
            self._replay = _Replay(base)
        return self._replay

    def __iter__(self):
        inner = super().__iter__()
        if self.num_workers == 0:
            return inner
        return SurvivingWorkersIter(self, inner, 0)

    def restart_at(self, position: int):
        """A fresh worker pool that first delivers the batches of this pass after ``position``."""
        self._index_sampler.restart(position)
        return super().__iter__()
