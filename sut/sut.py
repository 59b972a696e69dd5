"""The systems under test, one per LoadGen scenario, all over the same inference pool and QSL.

- ``OfflineSUT``: ``issue_query`` queues the (huge) query and returns; one dispatcher thread
  orders it so that nearly every batch is consecutive rows of the QSL's bank (``sut.batching``),
  cuts it into batches and starts each on an idle infer request, whose input is then a view of
  those rows: nothing is copied (``sut.engine``). The same thread answers each batch when it
  needs its request again, and the rest when the query is all started: no Python runs on
  OpenVINO's threads.
- ``IssuingThreadSUT`` (SingleStream, MultiStream): the query goes into idle requests on LoadGen's
  own issue thread, which then waits for them and answers them itself, with no hop to another
  thread: in SingleStream every microsecond between ``issue_query`` and ``start_async`` and
  between the end of inference and ``QuerySamplesComplete`` is on the measured latency, and
  LoadGen issues the next query only after this one completed. A MultiStream query of 8
  samples becomes one batch-8 request or 8 batch-1 requests, whichever the engine settings say.
- ``ServerSUT``: Poisson arrivals are queued; a dispatcher sends a batch as soon as a request
  is idle, holding up to ``max_wait_us`` after the first waiting query to fill a batch. Per-query
  Server dispatch (batch 1, ``max_wait_us = 0``) uses ``IssuingThreadSUT`` with ``callbacks`` instead:
  started on the issue thread, answered on OpenVINO's callback thread (arrivals must not wait).

Every thread that issues a query (LoadGen's issue thread, a dispatcher) first calls the
``threads`` object's ``claim_issuer``, every thread that answers one its ``claim_carrier``: the
runner passes its host controls there (``hostctl``: a short scheduler slice, ``SCHED_FIFO`` for
the issuers, when the user asked for host tuning); by default they do nothing.

Answers point into the request's own output array (LoadGen copies them before returning).
Each request has a list of ``QuerySampleResponse`` objects built once, one per output element
at its fixed address; a batch only sets their ``.id`` and hands LoadGen the first n, so no
Python object is made per sample. Every id taken is completed, with an empty response if
inference failed, so a failure never hangs LoadGen; the first error is kept and the runner
fails the test.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Protocol

import mlperf_loadgen as lg
import numpy as np
import openvino as ov

from sut.batching import view_order
from sut.detection import FIELDS, DetectionPost
from sut.engine import InferencePool
from sut.qsl import SampleLibrary

log = logging.getLogger(__name__)

_ITEMSIZE = 4  # one int32 top-1 label per sample


class ThreadClaims(Protocol):
    """Per-thread settings the SUT's threads ask for (``hostctl.HostControls`` is one)."""

    def claim_issuer(self) -> None:
        """Called first by every thread that issues queries."""

    def claim_carrier(self) -> None:
        """Called by every thread that answers queries."""


class NoClaims:
    """The default ``ThreadClaims``: every thread runs as the process started it."""

    def claim_issuer(self) -> None:
        """Nothing to claim."""

    def claim_carrier(self) -> None:
        """Nothing to claim."""


class _PoolSUT:
    """What every scenario's SUT shares: the pool, the responses, the first error."""

    def __init__(self, qsl: SampleLibrary, compiled: ov.CompiledModel, num_requests: int,
                 post: DetectionPost | None = None, callbacks: bool = False,
                 threads: ThreadClaims | None = None) -> None:
        self._qsl = qsl
        self._threads = threads or NoClaims()
        self._pool = InferencePool(compiled, num_requests, self._respond, self._respond_failed, qsl.bank,
                                   callbacks=callbacks)
        # A detector's responses are made per batch by its post-processor (sut.detection); it needs
        # each id's QSL index, kept here from dispatch to completion.
        self._post = post
        self._index_of: dict[int, int] = {}
        # Per request: one response per output element, pointing at the request's fixed output array.
        # Plain lists: indexing lg.VectorQuerySampleResponse raised RecursionError in this binding.
        self._responses = [] if post is not None else [
            [lg.QuerySampleResponse(0, out.ctypes.data + k * _ITEMSIZE, _ITEMSIZE) for k in range(out.size)]
            for out in self._pool.outputs]
        self.error: BaseException | None = None

    @property
    def pool(self) -> InferencePool:
        """The inference pool (for warm-up and draining)."""
        return self._pool

    def flush_queries(self) -> None:
        """LoadGen thread: nothing is held back beyond ``max_wait_us``, so there is nothing to flush."""

    def close(self) -> None:
        """Wait for in-flight inference."""
        self._pool.drain()

    def claim_issuer(self) -> None:
        """Called first by every thread that issues queries (``ThreadClaims``)."""
        self._threads.claim_issuer()

    def progress(self) -> tuple[int, int]:
        """(inference batches finished, batches in flight): what the runner's watchdog reads."""
        return self._pool.progress()

    def first_error(self) -> BaseException | None:
        """The first failure in dispatch or inference, if any."""
        return self.error or self._pool.error

    def _submit_all(self, ids: np.ndarray, indices: np.ndarray, any_order: bool = False) -> None:
        """Cut ``ids``/``indices`` into batches and start each on an idle request; on failure,
        complete the rest with empty responses and keep the error. ``any_order`` (Offline): first
        reorder them so that nearly every batch is a view of the bank (``sut.batching``)."""
        bs = self._pool.batch_size
        done = 0
        try:
            rows = self._rows(ids, indices)
            if any_order:
                order = view_order(rows, bs)
                ids, rows = ids[order], rows[order]
            for done in range(0, len(ids), bs):
                self._pool.submit(rows[done:done + bs], ids[done:done + bs])
            done = len(ids)
        except Exception as exc:  # noqa: BLE001 - complete the rest, then report
            self._dispatch_failed(ids[done:], exc, f"at sample {done} of {len(ids)}")

    def _rows(self, ids: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Bank rows of ``indices``; a detector's post-processor also needs each id's QSL index."""
        rows = self._qsl.rows_for(indices)
        if self._post is not None:
            self._index_of.update(zip(ids.tolist(), indices.tolist()))
        return rows

    def _dispatch_failed(self, ids: np.ndarray, exc: BaseException, where: str) -> None:
        """Keep the first error and complete ``ids`` (never started) with empty responses."""
        log.error("dispatch failed %s: %s", where, exc)
        if self.error is None:
            self.error = exc
        self._respond_failed(ids, exc)

    def _respond(self, slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
        """Answer LoadGen with the slot's responses, which point into its output array (``top1`` is
        a view of it); only their ids change per batch. The slot is not reused before this
        returns, so its list is never shared."""
        self._threads.claim_carrier()
        if self._post is not None:
            self._respond_detections(ids, top1)
            return
        responses = self._responses[slot]
        for response, sid in zip(responses, ids.tolist()):
            response.id = sid
        lg.QuerySamplesComplete(responses if len(ids) == len(responses) else responses[: len(ids)])

    def _respond_detections(self, ids: np.ndarray, heads: np.ndarray) -> None:
        """Decode + NMS the batch's heads, answer with k x 7 float32 per sample. The responses
        point into ``packed``, which lives until QuerySamplesComplete (which copies them) has
        returned."""
        id_list = ids.tolist()
        indices = np.array([self._index_of.pop(sid) for sid in id_list], dtype=np.int64)
        per_sample = self._post(heads, indices)
        packed = np.concatenate(per_sample) if per_sample else np.empty((0, FIELDS), np.float32)
        row_bytes = packed.itemsize * FIELDS
        base, offset, responses = packed.ctypes.data, 0, []
        for sid, dets in zip(id_list, per_sample):
            responses.append(lg.QuerySampleResponse(sid, base + offset * row_bytes, len(dets) * row_bytes))
            offset += len(dets)
        lg.QuerySamplesComplete(responses)

    def _respond_failed(self, ids: np.ndarray, error: BaseException) -> None:
        """Complete ``ids`` with empty responses so LoadGen never waits on a failed sample."""
        self._threads.claim_carrier()
        for sid in ids.tolist() if self._post is not None else ():
            self._index_of.pop(sid, None)
        if len(ids):
            lg.QuerySamplesComplete([lg.QuerySampleResponse(sid, 0, 0) for sid in ids.tolist()])


class OfflineSUT(_PoolSUT):
    """Offline: one dispatcher thread feeds LoadGen's queries through the pool and answers them."""

    def __init__(self, qsl: SampleLibrary, compiled: ov.CompiledModel, num_requests: int,
                 post: DetectionPost | None = None, threads: ThreadClaims | None = None) -> None:
        super().__init__(qsl, compiled, num_requests, post, threads=threads)
        self._work: queue.SimpleQueue[tuple[np.ndarray, np.ndarray] | None] = queue.SimpleQueue()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatcher", daemon=True)
        self._dispatcher.start()

    def issue_query(self, ids: list[int], indices: list[int]) -> None:
        """LoadGen thread: queue the query and return at once."""
        self.claim_issuer()
        self._work.put((np.asarray(ids, dtype=np.uint64), np.asarray(indices, dtype=np.int64)))

    def close(self) -> None:
        """Stop the dispatcher after the queued work and wait for in-flight inference."""
        self._work.put(None)
        self._dispatcher.join()
        super().close()

    def _dispatch_loop(self) -> None:
        self.claim_issuer()
        while (item := self._work.get()) is not None:
            self._submit_all(*item, any_order=True)
            if self._work.empty():  # nothing more to start: answer what is still running
                self._pool.drain()


class IssuingThreadSUT(_PoolSUT):
    """SingleStream and MultiStream: the query is started, awaited and answered on LoadGen's
    issue thread itself (LoadGen issues the next query only after this one completed, so
    nothing waits behind it). With ``callbacks`` (per-query Server dispatch) it is only
    started there and answered on OpenVINO's callback thread.
    """

    def issue_query(self, ids: list[int], indices: list[int]) -> None:
        """LoadGen thread: put the query's samples into idle requests, start them and, without
        callbacks, wait for them and answer."""
        self.claim_issuer()
        self._submit_all(np.asarray(ids, dtype=np.uint64), np.asarray(indices, dtype=np.int64))
        if not self._pool.callbacks:
            self._pool.drain()


class ServerSUT(_PoolSUT):
    """Server: queued arrivals, sent in batches of up to the compiled batch size as requests go idle."""

    def __init__(self, qsl: SampleLibrary, compiled: ov.CompiledModel, num_requests: int,
                 max_wait_us: int = 0, post: DetectionPost | None = None,
                 threads: ThreadClaims | None = None) -> None:
        super().__init__(qsl, compiled, num_requests, post, callbacks=True, threads=threads)
        self._max_wait_s = max_wait_us / 1e6
        self._arrivals: queue.SimpleQueue[tuple[list[int], list[int]] | None] = queue.SimpleQueue()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="server-dispatcher", daemon=True)
        self._dispatcher.start()

    def issue_query(self, ids: list[int], indices: list[int]) -> None:
        """LoadGen thread: queue the arrival and return at once."""
        self.claim_issuer()
        self._arrivals.put((ids, indices))

    def close(self) -> None:
        """Stop the dispatcher after the queued arrivals and wait for in-flight inference."""
        self._arrivals.put(None)
        self._dispatcher.join()
        super().close()

    def _dispatch_loop(self) -> None:
        self.claim_issuer()
        bs = self._pool.batch_size
        stopping = False
        while not stopping:
            first = self._arrivals.get()
            if first is None:
                return
            ids, indices = list(first[0]), list(first[1])
            deadline = time.perf_counter() + self._max_wait_s
            # Fill the batch with what has already arrived; wait for more only up to the deadline.
            while len(ids) < bs:
                try:
                    timeout = deadline - time.perf_counter()
                    item = self._arrivals.get(timeout=timeout) if timeout > 0 else self._arrivals.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                ids += item[0]
                indices += item[1]
            self._submit_all(np.asarray(ids, dtype=np.uint64), np.asarray(indices, dtype=np.int64))
