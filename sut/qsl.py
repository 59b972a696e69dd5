"""LoadGen query sample library over the preprocessed uint8 cache.

LoadGen calls ``load_samples`` with the indices it will use (1024 for a
performance run, chunks of 1024 in accuracy mode) before issuing, and
``unload_samples`` once every query over them has completed. Only the loaded
rows live in memory, so memory is bounded by the performance sample count,
not by the dataset size.
"""

from __future__ import annotations

import logging

import numpy as np

from dataset.cache import CacheInfo
from common.errors import EngineError

log = logging.getLogger(__name__)


class SampleLibrary:
    """Holds the loaded samples as one contiguous array plus an index -> row table."""

    def __init__(self, cache: CacheInfo, performance_count: int) -> None:
        self._cache = cache.open()
        self.total_count = cache.count
        self.performance_count = min(performance_count, cache.count)
        self._row_of = np.full(cache.count, -1, dtype=np.int64)
        self.data: np.ndarray = np.empty((0, *cache.sample_shape), dtype=np.uint8)

    def load_samples(self, indices: list[int]) -> None:
        """LoadGen thread, before any query over ``indices``: copy their rows into RAM, in order."""
        idx = np.asarray(indices, dtype=np.int64)
        self.data = np.ascontiguousarray(self._cache[idx])
        self._row_of[:] = -1
        self._row_of[idx] = np.arange(len(idx))
        log.debug("loaded %d samples (%.1f MB)", len(idx), self.data.nbytes / 1e6)

    def unload_samples(self, indices: list[int]) -> None:
        """LoadGen thread, after every query over ``indices`` completed: free the rows."""
        self._row_of[np.asarray(indices, dtype=np.int64)] = -1
        if not (self._row_of >= 0).any():
            self.data = np.empty((0, *self.data.shape[1:]), dtype=np.uint8)

    def rows_for(self, indices: np.ndarray) -> np.ndarray:
        """Rows in ``data`` of the given sample indices; an unloaded index is an error."""
        if len(indices) and (indices.min() < 0 or indices.max() >= self.total_count):
            raise EngineError(f"sample index out of range 0..{self.total_count - 1}")
        rows = self._row_of[indices]
        if len(rows) and rows.min() < 0:
            bad = int(indices[np.argmin(rows)])
            raise EngineError(f"sample index {bad} was issued but not loaded")
        return rows
