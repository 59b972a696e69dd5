"""Several instances of the inference pool, each a process pinned to its own cores, fed by ONE LoadGen.

``EngineConfig.instances = K > 1`` (Offline and Server; SingleStream/MultiStream keep one
instance): the parent process runs LoadGen, the QSL and ``MultiInstanceSUT``; K child
processes (``multiprocessing`` 'spawn') each compile the served model with the engine
settings (which are PER INSTANCE) and run their own ``InferencePool``.

- **Cores.** This process's allowed CPUs (``os.sched_getaffinity``) are ordered by
  (socket, physical core, CPU) from ``/sys/devices/system/cpu/cpu*/topology`` (SMT siblings
  next to each other) and the physical cores are split into K equal contiguous groups; each
  instance gets every CPU of its cores. With K = sockets every instance is one socket, however
  the CPUs are numbered (plain sorted numbers would split a 2-socket SMT machine numbered
  socket0-cores, socket1-cores, socket0-siblings, socket1-siblings across both sockets).
- **One bank.** The QSL's bank is POSIX shared memory (``SampleLibrary(shared=True)``): LoadGen
  loads each sample once, in the parent; every instance maps the same pages by name as its
  pool's bank, so a batch of consecutive rows is a view of the parent's copy (``sut.engine``).
- **Messages** (one duplex pipe per instance). Parent -> instance: ``b"W"`` + 7 pad bytes +
  uint64 ids[n] + int32 bank rows[n] (a whole Offline chunk or one Server query; the instance
  cuts it into batches, waiting at most ``max_wait_us`` to fill one); pickled control tuples
  ("warmup", ...), ("stop",). Instance -> parent: ``b"D"`` + 3 pad bytes + int32 labels[n] +
  uint64 ids[n] per finished batch (the labels sit at a fixed offset, so each reader thread
  receives into one buffer and answers LoadGen with responses built once that point into it);
  pickled ("ready", info), ("warm", qps), ("failed", ids, why), ("stopped",), ("error", ...).
- **Dispatch.** Offline: the query is ordered into batches of consecutive rows
  (``sut.batching``) and split at batch boundaries into K nearly equal chunks, one per instance.
  Server: each query goes, on LoadGen's issue thread, to the instance with the fewest
  samples outstanding.
- **Failures never hang LoadGen.** The parent tracks each instance's outstanding ids; a
  failed batch is completed with empty responses; if an instance dies (EOF on its pipe) every
  id it still held is completed with empty responses and the first error is kept
  (``first_error``: the runner exits 3). ``close`` stops the instances (join, then
  terminate/kill stragglers) and unlinks the shared bank; ``abort`` (signals, errors) kills
  them at once. An instance asks the kernel to SIGKILL it if the parent dies
  (``PR_SET_PDEATHSIG``) and ignores SIGINT (the parent handles it).
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from common import errors
from common.childproc import protect_children
from common.errors import ConfigError, EngineError, HarnessError
from sut.batching import view_order
from sut.config import EngineConfig

log = logging.getLogger(__name__)

_WORK = b"W" + bytes(7)  # + uint64 ids[n] + int32 rows[n]
_DATA = b"D" + bytes(3)  # + int32 labels[n] + uint64 ids[n]
_WORK_HEAD, _DATA_HEAD = len(_WORK), len(_DATA)
_ITEMSIZE = 4  # one int32 label per sample
_READY_TIMEOUT_S = 900.0  # spawn + import + compile of the slowest instance
_STOP_TIMEOUT_S = 30.0
_EMPTY_CHUNK = 1024  # samples per QuerySamplesComplete when answering a dead instance's ids
_PR_SET_PDEATHSIG = 1
LATENCY_SCENARIOS = ("SingleStream", "MultiStream")


# ----------------------------------------------------------------------------- cores
def _topology(cpu: int) -> tuple[int, int]:
    """(socket, core id) of a CPU; (0, cpu) where sysfs does not say."""
    base = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
    try:
        return int((base / "physical_package_id").read_text()), int((base / "core_id").read_text())
    except (OSError, ValueError):
        return 0, cpu


def split_cores(instances: int, threads_per_instance: int = 1,
                cpus: set[int] | None = None) -> list[list[int]]:
    """The CPUs of each instance: the allowed CPUs' physical cores, ordered by (socket, core),
    in ``instances`` equal contiguous groups, each with every CPU (SMT sibling) of its cores.

    Refused (``ConfigError``) when the cores do not split evenly or a group has fewer cores
    than the instance's ``num_threads``.
    """
    allowed = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    cores: dict[tuple[int, int], list[int]] = {}
    for cpu in allowed:
        cores.setdefault(_topology(cpu), []).append(cpu)
    ordered = [cores[key] for key in sorted(cores, key=lambda k: (k[0], k[1], cores[k][0]))]
    per, extra = divmod(len(ordered), instances)
    if per < threads_per_instance or per < 1:
        raise ConfigError(f"engine.instances ({instances}) x num_threads ({threads_per_instance}) needs that many "
                          f"physical cores; this process may run on {len(ordered)} (CPUs {allowed})")
    if extra:
        log.warning("%d physical cores do not split evenly into %d instances: %d left idle",
                    len(ordered), instances, extra)
    return [sorted(cpu for core in ordered[i * per:(i + 1) * per] for cpu in core) for i in range(instances)]


# ----------------------------------------------------------------------------- the instance process
def _instance_main(conn: Connection, index: int, cpus: list[int], spec: dict[str, Any]) -> None:
    """Entry point of an instance process (spawned: nothing of the parent's state is here)."""
    os.sched_setaffinity(0, cpus)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's close/abort still stops us
        pass
    if os.getppid() != spec["parent_pid"]:  # the parent died before the prctl
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=spec["log_level"], format=f"[instance {index}] %(levelname)s %(message)s")
    try:
        instance = _Instance(conn, spec)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", type(exc).__name__, str(exc) or type(exc).__name__))
        return
    instance.serve()


def _map_bank(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The parent's shared bank, mapped read-write by name (without registering it with a
    resource tracker: the parent owns and unlinks it)."""
    fd = os.open(f"/dev/shm/{name}", os.O_RDWR)
    try:
        buf = mmap.mmap(fd, int(np.prod(shape)))
    finally:
        os.close(fd)
    return np.frombuffer(buf, dtype=np.uint8).reshape(shape)


class _Instance:
    """One instance: its compiled model and pool over the shared bank, a receiver (``serve``, the
    main thread) and a dispatcher thread that cuts work into batches."""

    def __init__(self, conn: Connection, spec: dict[str, Any]) -> None:
        import openvino as ov

        from modelprep.card import load_card
        from sut.engine import InferencePool, compile_model

        self._conn = conn
        self._send_lock = threading.Lock()
        engine = EngineConfig(**spec["engine"])
        model_dir = Path(spec["model_dir"])
        bank = _map_bank(spec["shm_name"], tuple(spec["bank_shape"]))
        cache_dir = Path(spec["cache_dir"]) if spec["cache_dir"] else None
        self._compiled, info = compile_model(ov.Core(), model_dir, load_card(model_dir), engine, cache_dir)
        # Offline: the dispatcher answers its own batches, as OfflineSUT's does (sut.engine);
        # Server: OpenVINO's callbacks, so an arrival never waits behind the dispatcher.
        self.pool = InferencePool(self._compiled, engine.infer_requests, self._done, self._failed, bank,
                                  callbacks=not spec["offline"])
        self._max_wait_s = engine.max_wait_us / 1e6
        self._work: queue.SimpleQueue[tuple[np.ndarray, np.ndarray] | None] = queue.SimpleQueue()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="instance-dispatcher", daemon=True)
        self._dispatcher.start()
        self._send(("ready", {"pid": os.getpid(), "cpus": sorted(os.sched_getaffinity(0)),
                              "compile_ms": round(info.compile_ms, 1), "properties": info.properties}))

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _done(self, slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
        """The reporting thread (Offline: the dispatcher; Server: OpenVINO's callback): send the
        batch's labels and ids to the parent."""
        data = b"".join((_DATA, top1.astype(np.int32, copy=False).tobytes(), ids.tobytes()))
        with self._send_lock:
            self._conn.send_bytes(data)

    def _failed(self, ids: np.ndarray, error: BaseException) -> None:
        try:
            self._send(("failed", ids.tobytes(), str(error) or type(error).__name__))
        except OSError:  # the parent is gone; PDEATHSIG ends us
            pass

    def serve(self) -> None:
        """Receive work and control messages until told to stop (or the parent is gone)."""
        while True:
            try:
                buf = self._conn.recv_bytes()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone: nothing to answer to
            if buf[:_WORK_HEAD] == _WORK:
                n = (len(buf) - _WORK_HEAD) // 12
                ids = np.frombuffer(buf, np.uint64, n, _WORK_HEAD)
                rows = np.frombuffer(buf, np.int32, n, _WORK_HEAD + 8 * n)
                self._work.put((ids, rows))
                continue
            message = pickle.loads(buf)
            if message[0] == "warmup":
                try:
                    qps = self.pool.warmup(*message[1:])
                except Exception as exc:  # noqa: BLE001
                    self._send(("error", type(exc).__name__, str(exc)))
                    continue
                self._send(("warm", qps))
            elif message[0] == "stop":
                break
        self._work.put(None)
        self._dispatcher.join()
        self.pool.drain(timeout_s=_STOP_TIMEOUT_S)
        self._send(("stopped",))

    def _dispatch_loop(self) -> None:
        bs = self.pool.batch_size
        stopping = False
        while not stopping and (item := self._work.get()) is not None:
            ids, rows = item
            if len(ids) < bs:  # fill a short batch with what has arrived, waiting at most max_wait_us
                parts, n = [item], len(ids)
                deadline = time.perf_counter() + self._max_wait_s
                while n < bs:
                    try:
                        timeout = deadline - time.perf_counter()
                        more = self._work.get(timeout=timeout) if timeout > 0 else self._work.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    parts.append(more)
                    n += len(more[0])
                if len(parts) > 1:
                    ids = np.concatenate([p[0] for p in parts])
                    rows = np.concatenate([p[1] for p in parts])
            for k in range(0, len(ids), bs):
                try:
                    self.pool.submit(rows[k:k + bs], ids[k:k + bs])
                except Exception as exc:  # noqa: BLE001 - complete the rest, then go on
                    self._failed(ids[k:], exc)
                    break
            if not self.pool.callbacks and self._work.empty():  # nothing more to start: answer the rest
                self.pool.drain()


# ----------------------------------------------------------------------------- the parent side
class _Child:
    """The parent's view of one instance."""

    def __init__(self, index: int, proc: Any, conn: Connection, cpus: list[int], batch: int) -> None:
        self.index, self.proc, self.conn, self.cpus = index, proc, conn, cpus
        self.info: dict[str, Any] = {}
        self.outstanding: dict[int, None] = {}  # ids sent and not yet answered
        self.lock = threading.Lock()  # outstanding + dead
        self.send_lock = threading.Lock()
        self.dead = False
        self.stopping = False
        self.replies: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        # Results land in this one buffer; the responses point at its label slots, built once.
        self.buf = bytearray(max(1 << 16, _DATA_HEAD + 12 * batch))
        self._base = np.frombuffer(self.buf, dtype=np.uint8)  # pins the address of buf
        self.batch = batch
        self.responses: list[Any] = []
        self.reader: threading.Thread | None = None

    @property
    def label_address(self) -> int:
        return int(self._base.ctypes.data) + _DATA_HEAD


class MultiInstanceSUT:
    """Offline or Server over ``engine.instances`` pool processes fed from the QSL's shared bank.

    Construction starts the instances and waits until each has compiled its model (the compile
    happens there, in parallel). ``compiled_properties`` is instance 0's, ``instance_records``
    every instance's pid, CPUs and properties.
    """

    def __init__(self, scenario: str, qsl: Any, model_dir: Path, engine: EngineConfig,
                 cache_dir: Path | None = None, cpus: set[int] | None = None) -> None:
        import mlperf_loadgen as lg

        if scenario in LATENCY_SCENARIOS:
            raise ConfigError(f"{scenario} runs one query at a time: engine.instances must be 1 "
                              f"(got {engine.instances}); give the one instance every core instead")
        if qsl.shm_name is None:
            raise EngineError("several instances need the QSL's bank in shared memory (SampleLibrary(shared=True))")
        self._lg = lg
        self._qsl = qsl
        self._offline = scenario == "Offline"
        self._batch_size = engine.batch_size
        self.error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._closed = False
        self._aborted = False
        # A reader that saw its instance die waits for this before its thread ends: LoadGen keeps a
        # log buffer per thread that has completed samples, and one orphaned in the middle of a test
        # is a path its normal runs never take.
        self._released = threading.Event()
        self._next = 0
        self._children: list[_Child] = []
        groups = split_cores(engine.instances, engine.num_threads, cpus)
        spec = {"engine": asdict(engine), "offline": self._offline, "model_dir": str(model_dir),
                "shm_name": qsl.shm_name,
                "bank_shape": list(qsl.bank.shape), "cache_dir": str(cache_dir) if cache_dir else "",
                "parent_pid": os.getpid(), "log_level": max(logging.getLogger().getEffectiveLevel(), logging.WARNING)}
        # 'spawn' starts `python -c ...` with this process's environment: safe-path mode keeps the
        # working directory from shadowing the instance's modules (common.childproc).
        protect_children()
        ctx = mp.get_context("spawn")
        try:
            for index, group in enumerate(groups):
                ours, theirs = ctx.Pipe(duplex=True)
                proc = ctx.Process(target=_instance_main, args=(theirs, index, group, spec),
                                   name=f"mlperf-cpu-instance-{index}", daemon=True)
                proc.start()
                theirs.close()  # so the instance's death is EOF here
                self._children.append(_Child(index, proc, ours, group, engine.batch_size))
                log.info("instance %d: pid %d, CPUs %s", index, proc.pid, _ranges(group))
            for child in self._children:
                child.info = self._wait_ready(child)
                log.info("instance %d: compiled in %.0f ms", child.index, child.info["compile_ms"])
        except BaseException:
            self.abort()
            raise
        for child in self._children:
            child.responses = [lg.QuerySampleResponse(0, child.label_address + k * _ITEMSIZE, _ITEMSIZE)
                               for k in range(child.batch)]
            child.reader = threading.Thread(target=self._read_loop, args=(child,),
                                            name=f"instance-{child.index}-reader", daemon=True)
            child.reader.start()

    # ------------------------------------------------------------------ records
    @property
    def compiled_properties(self) -> dict[str, str]:
        """Instance 0's compiled properties (every instance compiles the same settings)."""
        return dict(self._children[0].info["properties"])

    @property
    def instance_records(self) -> list[dict[str, Any]]:
        """Per instance: index, pid, CPUs, compile time and compiled properties (for result.json)."""
        return [{"index": c.index, "pid": c.info.get("pid"), "cpus": c.cpus, "compile_ms": c.info.get("compile_ms"),
                 "compiled_properties": c.info.get("properties", {})} for c in self._children]

    @property
    def pids(self) -> list[int]:
        """The instance processes."""
        return [c.proc.pid for c in self._children]

    @property
    def pool(self) -> "MultiInstanceSUT":
        """What the runner warms up (``pool.warmup``): every instance, in parallel."""
        return self

    def first_error(self) -> BaseException | None:
        """The first failure of any instance or of dispatch, if any."""
        return self.error

    # ------------------------------------------------------------------ LoadGen
    def issue_query(self, ids: list[int], indices: list[int]) -> None:
        """LoadGen thread: Offline, K equal contiguous chunks; Server, the least-loaded instance."""
        sids = np.asarray(ids, dtype=np.uint64)
        try:
            rows = self._qsl.rows_for(np.asarray(indices, dtype=np.int64)).astype(np.int32, copy=False)
        except Exception as exc:  # noqa: BLE001 - complete them, then report
            self._keep(exc, f"dispatch of {len(sids)} samples failed: {exc}")
            self._complete_empty(sids.tolist())
            return
        if self._offline:
            bs = self._batch_size
            order = view_order(rows, bs)
            sids, rows = sids[order], rows[order]
            batches = -(-len(sids) // bs)
            bounds = np.minimum(np.linspace(0, batches, len(self._children) + 1).astype(int) * bs, len(sids))
            for child, lo, hi in zip(self._children, bounds[:-1], bounds[1:]):
                if hi > lo:
                    self._send_work(child, sids[lo:hi], rows[lo:hi])
        else:
            n = len(self._children)
            start, self._next = self._next, (self._next + 1) % n
            order = [self._children[(start + k) % n] for k in range(n)]
            child = min(order, key=lambda c: (c.dead, len(c.outstanding)))
            self._send_work(child, sids, rows)

    def flush_queries(self) -> None:
        """LoadGen thread: nothing is held back in the parent."""

    def _send_work(self, child: _Child, ids: np.ndarray, rows: np.ndarray) -> None:
        id_list = ids.tolist()
        with child.lock:
            dead = child.dead
            if not dead:
                child.outstanding.update(dict.fromkeys(id_list))
        if dead:  # its reader already answered everything it held; answer these here
            self._keep(EngineError(f"instance {child.index} is not running"), None)
            self._complete_empty(id_list)
            return
        try:
            with child.send_lock:
                child.conn.send_bytes(b"".join((_WORK, ids.tobytes(), rows.tobytes())))
        except (OSError, ValueError) as exc:  # the reader sees EOF and answers the outstanding ids
            self._keep(EngineError(f"instance {child.index}: sending work failed: {exc}"), None)

    def _read_loop(self, child: _Child) -> None:
        """Reader thread of one instance: answer LoadGen per finished batch; on EOF, answer the rest."""
        lg, conn, buf, responses = self._lg, child.conn, child.buf, child.responses
        while True:
            try:
                size = conn.recv_bytes_into(buf)
            except mp.BufferTooShort as exc:  # a control message larger than the buffer
                self._control(child, pickle.loads(exc.args[0]))
                continue
            except (EOFError, OSError):
                break
            if buf[:_DATA_HEAD] == _DATA:
                n = (size - _DATA_HEAD) // 12
                id_list = np.frombuffer(buf, np.uint64, n, _DATA_HEAD + _ITEMSIZE * n).tolist()
                with child.lock:
                    pop = child.outstanding.pop
                    for sid in id_list:
                        pop(sid, None)
                if self._aborted:
                    continue
                for response, sid in zip(responses, id_list):
                    response.id = sid
                lg.QuerySamplesComplete(responses if n == len(responses) else responses[:n])
            else:
                self._control(child, pickle.loads(bytes(buf[:size])))
        self._on_eof(child)
        self._released.wait()

    def _control(self, child: _Child, message: tuple) -> None:
        kind = message[0]
        if kind == "failed":
            id_list = np.frombuffer(message[1], np.uint64).tolist()
            with child.lock:
                for sid in id_list:
                    child.outstanding.pop(sid, None)
            self._keep(EngineError(f"instance {child.index}: {message[2]}"),
                       f"instance {child.index}: inference batch failed ({len(id_list)} samples): {message[2]}")
            self._complete_empty(id_list)
        elif kind == "error":
            self._keep(EngineError(f"instance {child.index}: {message[1]}: {message[2]}"), None)
            child.replies.put(None)
        else:  # warm, stopped
            child.replies.put(message)

    def _on_eof(self, child: _Child) -> None:
        """The instance is gone: answer every id it held with an empty response."""
        child.proc.join(timeout=5)
        with child.lock:
            child.dead = True
            left = list(child.outstanding)
            child.outstanding.clear()
        if not child.stopping or left:
            self._keep(EngineError(f"instance {child.index} (pid {child.proc.pid}) exited with code "
                                   f"{child.proc.exitcode} during the test; {len(left)} samples unanswered"), None)
        self._complete_empty(left)
        child.replies.put(None)

    def _complete_empty(self, id_list: list[int]) -> None:
        # In chunks the size of a normal answer, so LoadGen stays on the path every run takes (one
        # call of 100,000 samples, which it first counts done and only then logs, is not one).
        if self._aborted:
            return
        for start in range(0, len(id_list), _EMPTY_CHUNK):
            self._lg.QuerySamplesComplete([self._lg.QuerySampleResponse(sid, 0, 0)
                                           for sid in id_list[start:start + _EMPTY_CHUNK]])

    def _keep(self, error: BaseException, message: str | None) -> None:
        """Keep the first error; log it (later ones at debug level)."""
        with self._error_lock:
            first = self.error is None
            if first:
                self.error = error
        if not self._aborted:
            log.log(logging.ERROR if first else logging.DEBUG, "%s", message or error)

    # ------------------------------------------------------------------ warm-up, start, stop
    def warmup(self, batches: int, measure_s: float = 0.0, rows: int | None = None) -> float:
        """Every instance runs ``InferencePool.warmup`` at the same time; the sum of their samples/s."""
        for child in self._children:
            self._control_send(child, ("warmup", batches, measure_s, rows))
        total = 0.0
        for child in self._children:
            reply = child.replies.get()
            if reply is None or reply[0] != "warm":
                raise EngineError(f"warm-up failed: {self.error or f'instance {child.index} did not answer'}")
            total += float(reply[1])
        return total

    def _control_send(self, child: _Child, message: tuple) -> None:
        try:
            with child.send_lock:
                child.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError):
            pass  # a dead instance: its reader reports it

    def _wait_ready(self, child: _Child) -> dict[str, Any]:
        """The instance's ("ready", info), or the error it sent or died with."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not child.conn.poll(0.2):
            if not child.proc.is_alive():
                if child.conn.poll(0):  # it sent something before exiting
                    break
                raise EngineError(f"instance {child.index} (pid {child.proc.pid}) exited with code "
                                  f"{child.proc.exitcode} while starting")
            if time.monotonic() > deadline:
                raise EngineError(f"instance {child.index} not ready after {_READY_TIMEOUT_S:.0f} s")
        try:
            message = pickle.loads(child.conn.recv_bytes())
        except (EOFError, OSError):
            raise EngineError(f"instance {child.index} (pid {child.proc.pid}) exited while starting") from None
        if message[0] == "error":
            cls = getattr(errors, message[1], None)
            if isinstance(cls, type) and issubclass(cls, HarnessError):
                raise cls(message[2])
            raise EngineError(f"instance {child.index}: {message[1]}: {message[2]}")
        return message[1]

    def close(self) -> None:
        """After the test: stop every instance (it drains its pool), join them (terminate and then kill
        one that does not exit), and unlink the shared bank."""
        if self._closed:
            return
        self._closed = True
        for child in self._children:
            child.stopping = True
            self._control_send(child, ("stop",))
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for child in self._children:
            child.proc.join(timeout=max(0.1, deadline - time.monotonic()))
        self._reap(grace_s=2.0)
        self._released.set()
        for child in self._children:
            if child.reader is not None:
                child.reader.join(timeout=5)  # it saw EOF when the instance exited
            try:
                child.conn.close()
            except OSError:
                pass
        self._qsl.release()

    def abort(self) -> None:
        """Signals and errors: kill every instance now (no more LoadGen calls) and unlink the bank."""
        self._aborted = True
        self._closed = True
        self._released.set()
        for child in self._children:
            child.stopping = True
            if child.proc.is_alive():
                child.proc.kill()
        for child in self._children:
            child.proc.join(timeout=2.0)
        self._reap(grace_s=2.0)
        self._qsl.release()

    def _reap(self, grace_s: float) -> None:
        for child in self._children:
            if child.proc.is_alive():
                log.warning("instance %d (pid %d) did not stop: terminating it", child.index, child.proc.pid)
                child.proc.terminate()
                child.proc.join(timeout=grace_s)
            if child.proc.is_alive():
                child.proc.kill()
                child.proc.join(timeout=grace_s)


def _ranges(cpus: list[int]) -> str:
    """[0,1,2,5] -> '0-2,5'."""
    out, start = [], None
    for k, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if k + 1 == len(cpus) or cpus[k + 1] != cpu + 1:
            out.append(f"{start}-{cpu}" if cpu != start else str(cpu))
            start = None
    return ",".join(out)
