"""The inference pool: one compiled model and N infer requests over S pinned streams.

Callers gather a batch straight into an idle request's input tensor with
``submit``; when the request finishes, OpenVINO calls back on one of its
threads and the pool hands the batch's sample ids and its top-1 output (a view
of the request's own output tensor, valid until the callback returns) to the
``on_done`` function it was built with. The pool knows nothing of LoadGen.

Known limitations: one pool per process (one NUMA node); the batch is static,
so a partial last batch costs a full batch of compute.
"""

from __future__ import annotations

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

DoneFn = Callable[[np.ndarray, np.ndarray], None]
FailFn = Callable[[np.ndarray, BaseException], None]

_WARMUP_IDS = np.empty(0, dtype=np.uint64)
_REAP_S = 0.05  # how often in-flight requests are checked for a failure
_PRECISION_TYPES = {"f32": ov.Type.f32, "bf16": ov.Type.bf16}


@dataclass(frozen=True)
class CompiledInfo:
    """What the device chose, read back after compiling (not what was asked for)."""

    properties: dict[str, str]
    input_shape: tuple[int, ...]
    compile_ms: float


def compile_model(core: ov.Core, model_dir: Path, card: ModelCard, cfg: EngineConfig,
                  cache_dir: Path | None = None) -> tuple[ov.CompiledModel, CompiledInfo]:
    """Read ``model.xml``, fix its batch, check it against the card and compile it on CPU.

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
    info = CompiledInfo(read_properties(compiled), tuple(compiled.inputs[0].shape), compile_ms)
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
    if out.get_element_type() != ov.Type.i32:
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

    ``submit`` is called from one dispatcher thread; ``on_done``/``on_fail`` run on
    OpenVINO's callback threads. Every batch submitted reaches exactly one of them.
    """

    def __init__(self, compiled: ov.CompiledModel, num_requests: int,
                 on_done: DoneFn, on_fail: FailFn) -> None:
        self._requests = [compiled.create_infer_request() for _ in range(num_requests)]
        port = compiled.inputs[0]
        # Our own arrays, shared with OpenVINO, so the gather writes where inference reads.
        self._inputs = [np.zeros(tuple(port.shape), dtype=np.uint8) for _ in self._requests]
        for request, array in zip(self._requests, self._inputs):
            request.set_input_tensor(ov.Tensor(array, shared_memory=True))
        self._pending: list[np.ndarray | None] = [None] * num_requests
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._in_flight = 0
        self._lock = threading.Condition()
        self._on_done = on_done
        self._on_fail = on_fail
        self.error: BaseException | None = None
        for slot, request in enumerate(self._requests):
            request.set_callback(self._complete, slot)
            self._idle.put(slot)
        threading.Thread(target=_reap_loop, args=(weakref.ref(self),), name="pool-reaper", daemon=True).start()

    @property
    def batch_size(self) -> int:
        """Samples per request (the static batch)."""
        return int(self._inputs[0].shape[0])

    def submit(self, source: np.ndarray, rows: np.ndarray, ids: np.ndarray) -> None:
        """Gather ``source[rows]`` into an idle request's input and start it.

        Blocks until a request is idle. ``len(rows) <= batch_size``; a short batch
        leaves stale rows whose outputs are never reported.
        """
        slot = self._idle.get()
        dst = self._inputs[slot]
        n = len(rows)
        # mode="clip" lets numpy write straight into the tensor; rows were range-checked by the caller.
        np.take(source, rows, axis=0, out=dst[:n], mode="clip")
        with self._lock:  # started under the lock, so _reap_failed never sees a previous run's failure
            self._pending[slot] = ids
            self._in_flight += 1
            try:
                self._requests[slot].start_async()
                return
            except Exception as exc:  # noqa: BLE001 - any failure must still complete the ids
                error = exc
        self._finish(slot, error)

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
            if ids is None:  # not ours (a synchronous infer), or already finished
                return
            self._pending[slot] = None
        try:
            if error is None and len(ids):
                try:
                    top1 = self._requests[slot].get_output_tensor().data.reshape(-1)
                    self._on_done(ids, top1[: len(ids)])
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
                self._lock.notify_all()

    def warmup(self, source: np.ndarray, batches: int, measure_s: float = 0.0) -> float:
        """Run ``batches`` untimed batches of ``source`` rows, then keep the pool busy for
        ``measure_s`` seconds and return the samples/s of that part (0.0 if not measured).

        Outputs are discarded. The untimed part lets every stream allocate its scratch
        memory and JIT its kernels before anything is timed.
        """
        bs = self.batch_size
        rows = np.arange(bs) % len(source)
        for _ in range(batches):
            self.submit(source, rows, _WARMUP_IDS)
        self.drain()
        if measure_s <= 0:
            return 0.0
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < measure_s:
            self.submit(source, rows, _WARMUP_IDS)
            done += 1
        self.drain()
        return done * bs / (time.perf_counter() - start)

    def drain(self, timeout_s: float | None = None) -> None:
        """Wait until no request is in flight."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout=timeout_s):
                raise EngineError(f"{self._in_flight} inference requests still running after {timeout_s} s")


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
