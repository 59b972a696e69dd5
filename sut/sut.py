"""The Offline system under test: LoadGen queries -> batches -> the inference pool.

``issue_query`` runs on a LoadGen thread: it only queues the query and
returns. One dispatcher thread cuts each query into batches, looks the rows up
in the QSL and gathers them straight into idle infer requests. Completion runs
on OpenVINO's callback threads and answers LoadGen with responses that point
into the request's own output tensor (LoadGen copies them before returning).
Every id taken is completed, with an empty response if inference failed, so a
failure can never hang LoadGen; the error is kept and the runner fails the test.
"""

from __future__ import annotations

import logging
import queue
import threading

import mlperf_loadgen as lg
import numpy as np
import openvino as ov

from sut.engine import InferencePool
from sut.qsl import SampleLibrary

log = logging.getLogger(__name__)

_ITEMSIZE = 4  # one int32 top-1 label per sample


class OfflineSUT:
    """Feeds LoadGen queries through an ``InferencePool``."""

    def __init__(self, qsl: SampleLibrary, compiled: ov.CompiledModel, num_requests: int) -> None:
        self._qsl = qsl
        self._pool = InferencePool(compiled, num_requests, self._respond, self._respond_failed)
        self._work: queue.SimpleQueue[tuple[np.ndarray, np.ndarray] | None] = queue.SimpleQueue()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatcher", daemon=True)
        self.error: BaseException | None = None
        self._dispatcher.start()

    @property
    def pool(self) -> InferencePool:
        """The inference pool (for warm-up and draining)."""
        return self._pool

    def issue_query(self, ids: list[int], indices: list[int]) -> None:
        """LoadGen thread: queue the query and return at once."""
        self._work.put((np.asarray(ids, dtype=np.uint64), np.asarray(indices, dtype=np.int64)))

    def flush_queries(self) -> None:
        """LoadGen thread: nothing is held back, so there is nothing to flush."""

    def close(self) -> None:
        """Stop the dispatcher after the queued work and wait for in-flight inference."""
        self._work.put(None)
        self._dispatcher.join()
        self._pool.drain()

    def first_error(self) -> BaseException | None:
        """The first failure in dispatch or inference, if any."""
        return self.error or self._pool.error

    def _dispatch_loop(self) -> None:
        bs = self._pool.batch_size
        while (item := self._work.get()) is not None:
            ids, indices = item
            done = 0
            try:
                rows = self._qsl.rows_for(indices)
                data = self._qsl.data
                for done in range(0, len(ids), bs):
                    self._pool.submit(data, rows[done:done + bs], ids[done:done + bs])
                done = len(ids)
            except Exception as exc:  # noqa: BLE001 - complete the rest, then report
                log.error("dispatch failed at sample %d of the query: %s", done, exc)
                if self.error is None:
                    self.error = exc
                self._respond_failed(ids[done:], exc)

    def _respond(self, ids: np.ndarray, top1: np.ndarray) -> None:
        """OpenVINO callback thread: answer LoadGen with pointers into ``top1``."""
        base = top1.ctypes.data
        responses = [lg.QuerySampleResponse(int(sid), base + k * _ITEMSIZE, _ITEMSIZE)
                     for k, sid in enumerate(ids.tolist())]
        lg.QuerySamplesComplete(responses)

    def _respond_failed(self, ids: np.ndarray, error: BaseException) -> None:
        """Complete ``ids`` with empty responses so LoadGen never waits on a failed sample."""
        if len(ids):
            lg.QuerySamplesComplete([lg.QuerySampleResponse(int(sid), 0, 0) for sid in ids.tolist()])
