"""The inference pool: one compiled model and N infer requests over S pinned streams.

``compile_model`` compiles the served IR as it is, with its batch fixed: the same graph that
``benchmark_app`` compiles. Every sample a request reads lives in ``bank``, one
``[M, *sample_shape]`` u8 array of M loaded samples (the QSL's, M = its capacity, the
performance sample count), and the feed avoids copying it:

- **A view.** When a batch's bank rows are consecutive (always for one sample; Offline orders
  its batches so that nearly all are, see ``sut.batching``), the request's input is a view of
  those bank rows (``ov.Tensor(shared_memory=True)``, made once per first row and kept):
  OpenVINO reads the samples where LoadGen's ``load_samples`` put them, and nothing is copied.
- **A copy.** Otherwise the rows are copied (``np.take``, which releases the GIL) into the
  request's own input array. The copy from host memory into the inference input stays SUT
  work, timed: it runs on the thread that submits the batch.

On a null model views feed nearly as fast as benchmark_app's fixed inputs and copies about half
as fast (``bench/feed_loops.py``; figures in docs/notes/2026-11-29-offline-feed.md).

A finished batch is reported by handing the request's slot, the batch's sample ids and
its top-1 output (a view of the request's own fixed output array, valid until ``on_done``
returns) to the ``on_done`` function the pool was built with. Who calls it is the pool's
``callbacks`` choice:

- ``callbacks=False`` (the default; Offline, SingleStream, MultiStream): the thread that
  submits also reports. When every request is busy, ``submit`` waits for the oldest one and
  reports it first; ``drain`` reports the rest. OpenVINO's stream threads never run Python:
  a Python callback holds its stream thread until it gets the GIL, and the stream idles
  meanwhile (slower with callbacks: docs/notes/2026-11-29-offline-feed.md).
- ``callbacks=True`` (Server): each request reports on OpenVINO's callback thread as it
  finishes, so an arrival never waits for the dispatcher to come back to a finished batch.

The pool knows nothing of LoadGen.

Known limitations: one pool per process (several pools, one per core set or socket: see
``sut.instances``); the batch is static,
so a partial last batch costs a full batch of compute.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

from modelprep.card import MODEL_FILE, ModelCard
from common.errors import EngineError, ModelError
from sut.config import EngineConfig

log = logging.getLogger(__name__)

DoneFn = Callable[[int, np.ndarray, np.ndarray], None]  # (slot, ids, top1[:len(ids)])
FailFn = Callable[[np.ndarray, BaseException], None]

_WARMUP_IDS = np.empty(0, dtype=np.uint64)
_REAP_S = 0.05  # how often in-flight requests are checked for a failure
_PRECISION_TYPES = {"f32": ov.Type.f32, "bf16": ov.Type.bf16}
# LoadGen's default performance sample count (records.rules.MIN_PERFORMANCE_SAMPLE_COUNT; sut
# may not import records): the bank size of a pool that is not fed by a QSL (tune, benches).
DEFAULT_BANK_ROWS = 1024


@dataclass(frozen=True)
class CompiledInfo:
    """What the device chose, read back after compiling (not what was asked for)."""

    properties: dict[str, str]
    input_shape: tuple[int, ...]  # the batch the served model sees: [batch, *sample_shape]
    compile_ms: float


def compile_model(core: ov.Core, model_dir: Path, card: ModelCard, cfg: EngineConfig,
                  cache_dir: Path | None = None) -> tuple[ov.CompiledModel, CompiledInfo]:
    """Read ``model.xml``, check it against the card, fix its batch and compile it on CPU.

    Only the properties the profile and the card name are set (like ``benchmark_app
    -hint none`` with explicit -nstreams/-nthreads/-pin/-infer_precision), so the same
    numbers give the same compiled model in both tools. The precision comes from the
    card: it is a property of the served model, not of the machine.
    """
    xml = Path(model_dir) / MODEL_FILE
    if not xml.is_file():
        raise ModelError(f"{xml}: model IR not found")
    model = core.read_model(xml)
    check_model_fits_card(model, card, str(xml))
    shape = list(card.preprocess.sample_shape)
    model.reshape({model.inputs[0]: ov.PartialShape([cfg.batch_size, *shape])})
    config: dict[str, Any] = {
        props.streams.num: cfg.num_streams,
        props.inference_num_threads: cfg.num_threads,
        hints.enable_cpu_pinning: cfg.pinning,
        hints.num_requests: cfg.infer_requests,  # benchmark_app -nireq sets it too
        hints.inference_precision: _PRECISION_TYPES[card.inference_precision],
    }
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        config[props.cache_dir] = str(cache_dir)
    start = time.perf_counter()
    try:
        compiled = core.compile_model(model, "CPU", config)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"{xml}: compile on CPU with {cfg} failed: {first}") from None
    compile_ms = (time.perf_counter() - start) * 1000
    info = CompiledInfo(read_properties(compiled), (cfg.batch_size, *shape), compile_ms)
    return compiled, info


def check_model_fits_card(model: ov.Model, card: ModelCard, origin: str) -> None:
    """Refuse an IR whose input or output does not match its card."""
    if len(model.inputs) != 1:
        raise ModelError(f"{origin}: expected 1 input, model has {len(model.inputs)}")
    pshape = model.inputs[0].get_partial_shape()
    want = card.preprocess.sample_shape
    if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
        raise ModelError(f"{origin}: input rank is {pshape.rank}, card needs 4 ({card.layout})")
    dims = [d.get_length() if d.is_static else -1 for d in pshape]
    if tuple(dims[1:]) != want:
        raise ModelError(
            f"{origin}: input shape {dims} does not fit card {card.layout} sample shape {list(want)}")
    if model.inputs[0].get_element_type() != ov.Type.u8:
        raise ModelError(f"{origin}: input type is {model.inputs[0].get_element_type()}, expected u8")
    out = model.outputs[0]
    if card.is_detector:
        dims = [d.get_length() if d.is_static else -1 for d in out.get_partial_shape()]
        if not out.get_element_type().is_real() or len(dims) != 3 or dims[1] != 4 + card.num_classes:
            raise ModelError(f"{origin}: output {out.get_element_type()}{dims} is not the card's detector head "
                             f"[N, {4 + card.num_classes}, anchors] (float)")
    elif out.get_element_type() != ov.Type.i32:
        raise ModelError(f"{origin}: output type is {out.get_element_type()}, expected i32 top-1")


def read_properties(compiled: ov.CompiledModel) -> dict[str, str]:
    """Every readable property of the compiled model, as strings (benchmark_app step 8)."""
    out: dict[str, str] = {}
    for name in compiled.get_property(props.supported_properties):
        if name == props.supported_properties:
            continue
        try:
            value = compiled.get_property(name)
        except RuntimeError:
            continue
        out[str(name)] = value.get_type_name() if isinstance(value, ov.Type) else str(value)
    return out


class InferencePool:
    """A fixed set of infer requests on one compiled model, handed out as they go idle.

    ``bank`` is the array every request reads its samples from (the QSL's, written in place
    by its ``load_samples``); without one the pool allocates its own of ``bank_rows`` rows,
    which callers fill with ``load``. ``submit`` and ``drain`` are called from one thread at a
    time; ``on_done``/``on_fail`` run on that thread, or with ``callbacks`` on OpenVINO's
    callback threads (module docstring). Every batch submitted reaches exactly one of them.
    """

    def __init__(self, compiled: ov.CompiledModel, num_requests: int, on_done: DoneFn, on_fail: FailFn,
                 bank: np.ndarray | None = None, callbacks: bool = False,
                 bank_rows: int = DEFAULT_BANK_ROWS) -> None:
        batch, *sample = (int(d) for d in compiled.input(0).shape)
        if bank is None:
            bank = np.zeros((bank_rows, *sample), dtype=np.uint8)
        if bank.shape[1:] != tuple(sample) or bank.dtype != np.uint8 or not bank.flags.c_contiguous or not len(bank):
            raise EngineError(f"bank {bank.dtype}{list(bank.shape)} does not fit the compiled model's "
                              f"u8[rows, {', '.join(map(str, sample))}] (contiguous, >= 1 row)")
        self.bank = bank
        self._loaded = 0  # rows of an own bank written by ``load``
        self._requests = [compiled.create_infer_request() for _ in range(num_requests)]
        out = compiled.outputs[0]
        # One top-1 per sample (the card check), or a detector's [batch, 4+classes, anchors] head; a
        # dynamic output gets [batch], and a model that then produces another shape fails at
        # inference, which the failure path reports.
        out_shape = tuple(out.shape) if out.get_partial_shape().is_static else (batch,)
        if int(np.prod(out_shape)) != batch and (len(out_shape) != 3 or out_shape[0] != batch):
            raise EngineError(f"output shape {list(out_shape)} is neither one top-1 per sample of batch {batch} "
                              f"nor a [{batch}, 4+classes, anchors] detector head")
        # Our own arrays, shared with OpenVINO (never copied by it): per request an input array
        # for batches that are copied, and an output array (fixed response addresses).
        self._copies = [np.zeros((batch, *sample), dtype=np.uint8) for _ in self._requests]
        self._copy_tensors = [ov.Tensor(array, shared_memory=True) for array in self._copies]
        self._views: dict[int, ov.Tensor] = {}  # first bank row -> tensor over rows first..first+batch-1
        self._inputs: list[ov.Tensor | None] = [None] * num_requests  # the tensor each request reads now
        self.fed = {"view": 0, "copy": 0}  # batches fed each way (tests and bench/harness_ceiling read it)
        self._consecutive = np.arange(batch, dtype=np.int64)
        self.outputs = [np.zeros(out_shape, dtype=out.get_element_type().to_dtype()) for _ in self._requests]
        # What on_done gets per sample: a top-1 label, or a detector's whole head.
        self._top1 = [array.reshape(-1) if array.size == batch else array for array in self.outputs]
        for request, output in zip(self._requests, self.outputs):
            request.set_output_tensor(ov.Tensor(output, shared_memory=True))
        self._pending: list[np.ndarray | None] = [None] * num_requests
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._in_flight = 0
        self._finished = 0  # batches finished, failed ones too (progress, for the runner's watchdog)
        self._lock = threading.Condition()
        self._on_done = on_done
        self._on_fail = on_fail
        self.callbacks = callbacks
        self._started: collections.deque[int] = collections.deque()  # in start order (callbacks=False)
        self.error: BaseException | None = None
        for slot, request in enumerate(self._requests):
            if callbacks:
                request.set_callback(self._complete, slot)
            self._idle.put(slot)
        if callbacks:  # without callbacks, wait() raises a failed request's error where it is awaited
            threading.Thread(target=_reap_loop, args=(weakref.ref(self),), name="pool-reaper", daemon=True).start()

    def close(self) -> None:
        """Release the requests: each holds its completion callback, a bound method of this pool,
        inside OpenVINO where Python's GC cannot see the cycle, so without this a pool, its bank and
        its compiled model are never freed (a search measuring hundreds of models ran out of memory)."""
        for request in self._requests:
            request.set_callback(_no_callback, None)
        self._requests = []

    @property
    def batch_size(self) -> int:
        """Samples per request (the static batch)."""
        return len(self._consecutive)

    def progress(self) -> tuple[int, int]:
        """(batches finished so far, batches in flight now): a hung request shows as work in
        flight that never finishes."""
        return self._finished, self._in_flight

    @property
    def num_requests(self) -> int:
        """Infer requests in the pool (slots ``0..num_requests-1``)."""
        return len(self._requests)

    def load(self, samples: np.ndarray) -> None:
        """Copy ``samples`` into the first rows of the bank in place (callers without a QSL:
        warm-up, tune). Only while nothing is in flight."""
        if len(samples) > len(self.bank) or samples.shape[1:] != self.bank.shape[1:]:
            raise EngineError(f"{list(samples.shape)} samples do not fit the bank {list(self.bank.shape)}")
        self.bank[: len(samples)] = samples
        self._loaded = len(samples)

    def submit(self, rows: np.ndarray, ids: np.ndarray) -> None:
        """Start an idle request on bank rows ``rows`` (1 to batch_size of them, each in
        ``0..M-1``: the caller checks). Blocks until a request is idle.

        A short batch leaves the rest of the request's input as it was; those outputs are never
        reported.
        """
        slot = self._take(rows)
        with self._lock:  # started under the lock, so _reap_failed never sees a previous run's failure
            self._pending[slot] = ids
            self._in_flight += 1
            try:
                self._requests[slot].start_async()
                if not self.callbacks:
                    self._started.append(slot)
                return
            except Exception as exc:  # noqa: BLE001 - any failure must still complete the ids
                error = exc
        self._finish(slot, error)

    def _take(self, rows: np.ndarray) -> int:
        """An idle request (blocking until one is) whose input holds the samples of ``rows``: a
        view of the bank if they are consecutive, else a copy into the request's own array."""
        n = len(rows)
        if not 0 < n <= len(self._consecutive):
            raise EngineError(f"a batch needs 1..{len(self._consecutive)} rows, got {n}")
        if not self.callbacks and self._idle.empty():
            self._wait_oldest()
        slot = self._idle.get()
        try:
            tensor = self._input_for(slot, rows)
            if self._inputs[slot] is not tensor:
                self._requests[slot].set_input_tensor(tensor)
                self._inputs[slot] = tensor
        except BaseException:
            self._idle.put(slot)
            raise
        return slot

    def _input_for(self, slot: int, rows: np.ndarray) -> ov.Tensor:
        """The tensor holding ``rows``' samples for request ``slot``: a kept view of the bank when
        they are consecutive (and a whole batch of rows fits from the first), else the request's
        own array with them copied in."""
        n, batch, first = len(rows), len(self._consecutive), int(rows[0])
        if (0 <= first <= len(self.bank) - batch and int(rows[-1]) - first == n - 1
                and (n == 1 or (rows == self._consecutive[:n] + first).all())):
            tensor = self._views.get(first)
            if tensor is None:
                tensor = self._views[first] = ov.Tensor(self.bank[first:first + batch], shared_memory=True)
            self.fed["view"] += 1
            return tensor
        self.fed["copy"] += 1
        # mode="clip" writes straight into ``out`` (the default "raise" buffers it); rows come
        # from the QSL's table, always inside the bank.
        np.take(self.bank, rows, axis=0, out=self._copies[slot][:n], mode="clip")
        return self._copy_tensors[slot]

    def _wait_oldest(self, timeout_s: float | None = None) -> bool:
        """callbacks=False: wait for the oldest started request and report it on this thread;
        False if it is still running after ``timeout_s``."""
        slot = self._started[0]
        error: BaseException | None = None
        try:
            if timeout_s is None:
                self._requests[slot].wait()
            elif not self._requests[slot].wait_for(max(0, int(timeout_s * 1000))):
                return False
        except RuntimeError as exc:  # the request's inference failed
            error = RuntimeError(_one_line(exc))
        self._started.popleft()
        self._finish(slot, error)
        return True

    def _complete(self, slot: int) -> None:
        """OpenVINO callback: report the batch's outputs, then make the request idle again."""
        self._finish(slot, None)

    def _reap_failed(self) -> None:
        """Finish every in-flight request whose inference raised: OpenVINO's Python binding never
        calls the callback of a failed request, so its slot would stay busy and its samples
        unanswered forever (LoadGen would hang)."""
        failed = []
        with self._lock:
            for slot, request in enumerate(self._requests):
                if self._pending[slot] is not None:
                    try:
                        request.wait_for(0)
                    except RuntimeError as exc:
                        failed.append((slot, RuntimeError(_one_line(exc))))
        for slot, error in failed:
            self._finish(slot, error)

    def _finish(self, slot: int, error: BaseException | None) -> None:
        with self._lock:  # the callback and _reap_failed must not both finish a slot
            ids = self._pending[slot]
            if ids is None:  # already finished (by the callback or by _reap_failed)
                return
            self._pending[slot] = None
        try:
            if error is None and len(ids):
                try:
                    self._on_done(slot, ids, self._top1[slot][: len(ids)])
                except Exception as exc:  # noqa: BLE001
                    error = exc
            if error is not None:
                # The first failure is the one reported; the rest (often every batch) go to debug.
                log.log(logging.ERROR if self.error is None else logging.DEBUG,
                        "inference batch failed (%d samples): %s", len(ids), error)
                if self.error is None:
                    self.error = error
                if len(ids):
                    self._on_fail(ids, error)
        finally:
            self._idle.put(slot)
            with self._lock:
                self._in_flight -= 1
                self._finished += 1
                self._lock.notify_all()

    def warmup(self, batches: int, measure_s: float = 0.0, rows: int | None = None) -> float:
        """Run ``batches`` untimed batches over the first ``rows`` bank rows (default: what
        ``load`` wrote, else the whole bank), then keep the pool busy for ``measure_s`` seconds
        and return the samples/s of that part (0.0 if not measured).

        Outputs are discarded. Consecutive batches walk through the rows, so a measurement
        reads the bank the way a run does. The untimed part lets every stream allocate its
        scratch memory and JIT its kernels before anything is timed.
        """
        bs = self.batch_size
        count = rows or self._loaded or len(self.bank)
        order = np.arange(max(count, bs) * bs, dtype=np.int32) % count  # a whole number of batches
        starts = range(0, len(order), bs)

        def batch(k: int) -> np.ndarray:
            return order[starts[k % len(starts)]:][:bs]

        for k in range(batches):
            self.submit(batch(k), _WARMUP_IDS)
        self.drain()
        if measure_s <= 0:
            return 0.0
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < measure_s:
            self.submit(batch(done), _WARMUP_IDS)
            done += 1
        self.drain()
        return done * bs / (time.perf_counter() - start)

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait until no request is in flight (callbacks=False: reporting each on this thread)."""
        if not self.callbacks:
            deadline = None if timeout_s is None else time.perf_counter() + timeout_s
            while self._started:
                left = None if deadline is None else max(0.0, deadline - time.perf_counter())
                if not self._wait_oldest(left):
                    raise EngineError(f"{len(self._started)} inference requests still running after {timeout_s} s")
            return
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout=timeout_s):
                raise EngineError(f"{self._in_flight} inference requests still running after {timeout_s} s")


def _no_callback(_request: object, _userdata: object) -> None:
    """Completion callback of a closed pool's requests."""


def _reap_loop(pool_ref: "weakref.ref[InferencePool]") -> None:
    """Pool thread: while the pool exists, look for failed requests every ``_REAP_S`` seconds."""
    while (pool := pool_ref()) is not None:
        with pool._lock:
            busy = pool._lock.wait_for(lambda: pool._in_flight > 0, timeout=1.0)
        if busy:
            pool._reap_failed()
        del pool
        time.sleep(_REAP_S)


def _one_line(exc: BaseException) -> str:
    """OpenVINO's multi-line message without its 'Exception from <file>' frames, as one line."""
    parts = [line.strip().removeprefix("Caught exception:").strip() for line in str(exc).splitlines()]
    text = " ".join(p for p in parts if p and not p.startswith("Exception from "))
    return text or type(exc).__name__
