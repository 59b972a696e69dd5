"""Offline batch order: as many batches as possible read consecutive bank rows.

The pool feeds a batch whose rows are consecutive as a view of the bank and copies any other
(``sut.engine``). An Offline query may be answered in any order, and LoadGen draws its samples
with replacement from the loaded set, so each bank row appears about ``n / M`` times. Ordering
the query so that every batch takes one sample from each of ``batch`` consecutive rows makes
nearly every batch a view: a window slides over the rows and, at each position, takes as many
whole batches as its least-used row still has samples (simulated: 97 % of 448k samples over
1,024 rows at batch 16, 88 % of 60k; an accuracy run, every row once, 100 %). What is left goes
last, sorted by row.
"""

from __future__ import annotations

import numpy as np


def view_order(rows: np.ndarray, batch: int) -> np.ndarray:
    """A permutation of ``range(len(rows))``: taken in order and cut into ``batch``-sized
    batches, the leading batches each cover ``batch`` consecutive rows (ascending); the rest
    follow sorted by row."""
    rows = np.asarray(rows, dtype=np.int64)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if len(rows) == 0 or batch == 1:
        return np.argsort(rows, kind="stable")
    by_row = np.argsort(rows, kind="stable")  # positions grouped by row
    low = int(rows.min())
    counts = np.bincount(rows - low)
    start = np.concatenate(([0], np.cumsum(counts)[:-1]))  # first position of each row in by_row
    left = counts.copy()
    taken = np.zeros_like(counts)
    runs = []
    for first in range(len(counts) - batch + 1):
        k = int(left[first:first + batch].min())
        if k:
            window = slice(first, first + batch)
            # k batches: column j is batch j, one position per row of the window
            grid = start[window, None] + taken[window, None] + np.arange(k)[None, :]
            runs.append(by_row[grid.T.ravel()])
            taken[window] += k
            left[window] -= k
    rest = np.repeat(start + taken, left) + _ranks(left)
    runs.append(by_row[rest])
    return np.concatenate(runs)


def _ranks(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for each count c, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
