"""LoadGen query sample library over the preprocessed uint8 cache.

LoadGen calls ``load_samples`` with the indices it will use (the performance sample
count, 1024 by default, for a performance run; chunks of at most that many in accuracy
mode) before issuing, and ``unload_samples`` once every query over them has completed.
The loaded rows are written in place into ONE bank array of that capacity, allocated
once for the life of the process: every infer request reads its samples from this
array's memory (a batch of consecutive rows is a view of it, see ``sut.engine``), so it is
never replaced. Memory is bounded by the performance sample count, not by the dataset size.

With ``shared=True`` (several instances, ``sut.instances``) the bank lives in POSIX shared
memory (``multiprocessing.shared_memory``, named ``mlperf-cpu-bank-<pid>-<token>``): the
samples are loaded once, here, and every instance process maps the same pages by name.
``release`` unlinks it (idempotent); the runner calls it on every way out of a test.
"""

from __future__ import annotations

import logging
import os
import secrets
from multiprocessing import shared_memory

import numpy as np

from dataset.cache import CacheInfo
from common.errors import EngineError

log = logging.getLogger(__name__)


class _SharedBank(shared_memory.SharedMemory):
    """The bank's segment. Kept for the life of the process: the bank array views its buffer,
    so ``close`` would fail (and the base class would try it when collected); the OS unmaps it
    at exit. The name is unlinked by ``SampleLibrary.release``."""

    unlinked = False

    def __del__(self) -> None:
        pass


class SampleLibrary:
    """The loaded samples as rows of one fixed bank array, plus an index -> row table."""

    def __init__(self, cache: CacheInfo, performance_count: int, shared: bool = False) -> None:
        self._cache = cache.open()
        self.total_count = cache.count
        self.performance_count = min(performance_count, cache.count)
        self._row_of = np.full(cache.count, -1, dtype=np.int32)
        shape = (self.capacity, *cache.sample_shape)
        self._shm: _SharedBank | None = None
        if shared:
            # Like np.zeros, a fresh shm segment is zero pages that are touched only when written.
            name = f"mlperf-cpu-bank-{os.getpid()}-{secrets.token_hex(4)}"
            self._shm = _SharedBank(name=name, create=True, size=int(np.prod(shape)))
            self.bank: np.ndarray = np.ndarray(shape, dtype=np.uint8, buffer=self._shm.buf)
        else:
            self.bank = np.zeros(shape, dtype=np.uint8)
        self.load_error: BaseException | None = None

    @property
    def shm_name(self) -> str | None:
        """The shared-memory name of the bank (None: a private bank)."""
        return self._shm.name if self._shm is not None else None  # SharedMemory.name drops the "/"

    def release(self) -> None:
        """Unlink a shared bank so no /dev/shm entry outlives the run (idempotent; the mapping
        itself stays valid in this process and in any instance still holding it)."""
        shm = self._shm
        if shm is None or shm.unlinked:
            return
        shm.unlinked = True
        try:
            shm.unlink()
        except FileNotFoundError:
            pass

    @property
    def capacity(self) -> int:
        """Rows in the bank: the most samples LoadGen loads at once (compile the model for it)."""
        return self.performance_count

    def load_samples(self, indices: list[int]) -> None:
        """LoadGen thread, before any query over ``indices``: copy their rows into the bank, in order.

        Each distinct sample gets one row: LoadGen pads a MultiStream set with the first
        ``samples_per_query - 1`` indices again, so a set can be longer than the capacity while
        its distinct samples never are. Never raises (an exception here would crash LoadGen):
        a failed load leaves the samples unloaded, and the dispatch of their queries fails
        with this error and completes them with empty responses.
        """
        try:
            idx = np.asarray(indices, dtype=np.int64)
            uniq, first = np.unique(idx, return_index=True)
            if len(uniq) < len(idx):
                idx = idx[np.sort(first)]  # first occurrences, in LoadGen's order
            if len(idx) > len(self.bank):
                raise EngineError(f"LoadGen loaded {len(idx)} distinct samples at once; the bank holds "
                                  f"{len(self.bank)} (the performance sample count)")
            self._row_of[:] = -1
            np.take(self._cache, idx, axis=0, out=self.bank[: len(idx)])
            self._row_of[idx] = np.arange(len(idx), dtype=np.int32)
        except Exception as exc:  # noqa: BLE001 - reported when the samples are issued
            log.error("loading %d samples failed: %s", len(indices), exc)
            self.load_error = exc
            return
        log.debug("loaded %d samples (%.1f MB)", len(idx), self.bank[: len(idx)].nbytes / 1e6)

    def unload_samples(self, indices: list[int]) -> None:
        """LoadGen thread, after every query over ``indices`` completed: forget their rows
        (the bank itself stays: the infer requests hold its memory)."""
        self._row_of[np.asarray(indices, dtype=np.int64)] = -1

    def rows_for(self, indices: np.ndarray) -> np.ndarray:
        """Bank rows (int32) of the given sample indices; an unloaded index is an error."""
        if len(indices) and (indices.min() < 0 or indices.max() >= self.total_count):
            raise EngineError(f"sample index out of range 0..{self.total_count - 1}")
        rows = self._row_of[indices]
        if len(rows) and rows.min() < 0:
            bad = int(indices[np.argmin(rows)])
            why = f" (loading failed: {self.load_error})" if self.load_error is not None else ""
            raise EngineError(f"sample index {bad} was issued but not loaded{why}")
        return rows
