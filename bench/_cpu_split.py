"""The harness's CPU per sample, split by part: one in-process LoadGen Offline run through the real
``OfflineSUT`` (a bank of random rows instead of the image cache).

``time.thread_time`` around each part on the thread that runs it, plus per-thread CPU from
``/proc/self/task/*/stat`` for the rest, and how many batches were fed as views of the bank or
copied. ``harness_ceiling`` prints it; ``scaling_model`` takes the serial parts from it.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import RandomBankQSL
from sut.config import EngineConfig


def _task_cpu_s() -> dict[int, float]:
    """CPU seconds (utime + stime) of every thread of this process, by native thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _timed_sut_class(acc: dict[str, float], threads: dict[str, int]) -> type:
    """Step 1: OfflineSUT with thread_time around each part (same code, split for timing); totals
    go into ``acc``, the dispatcher's native thread id into ``threads``."""
    import mlperf_loadgen as lg

    from sut.sut import OfflineSUT

    lock = threading.Lock()

    class TimedSUT(OfflineSUT):
        """OfflineSUT with thread_time around each part (same code, split for timing)."""

        def issue_query(self, ids: list[int], indices: list[int]) -> None:
            t = time.thread_time()
            super().issue_query(ids, indices)
            acc["issue"] += time.thread_time() - t

        def _dispatch_loop(self) -> None:
            threads["dispatcher"] = threading.get_native_id()
            t = time.thread_time()
            super()._dispatch_loop()
            acc["dispatcher"] += time.thread_time() - t

        def _respond(self, slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
            t0 = time.thread_time()
            responses = self._responses[slot]
            for response, sid in zip(responses, ids.tolist()):
                response.id = sid
            part = responses if len(ids) == len(responses) else responses[: len(ids)]
            t1 = time.thread_time()
            lg.QuerySamplesComplete(part)
            t2 = time.thread_time()
            with lock:
                acc["set_ids"] += t1 - t0
                acc["complete"] += t2 - t1
                acc["samples"] += len(ids)

    return TimedSUT


def _timed_feed(sut: Any, acc: dict[str, float]) -> Any:
    """Step 2: the pool's view-or-copy step, timed on the dispatcher thread."""
    feed = sut.pool._input_for

    def timed_feed(slot: int, rows: np.ndarray) -> Any:
        t = time.thread_time()
        try:
            return feed(slot, rows)
        finally:
            acc["feed"] += time.thread_time() - t

    return timed_feed


def _settings(seconds: float, expected_qps: float, log_dir: Path) -> tuple[Any, Any]:
    """Step 3: LoadGen Offline PerformanceOnly settings for ``seconds``, logs in ``log_dir``."""
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(seconds * 1000)
    settings.min_query_count = 1
    settings.offline_expected_qps = expected_qps
    log_settings = lg.LogSettings()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_settings.log_output.outdir = str(log_dir)
    log_settings.enable_trace = False
    return settings, log_settings


def _per_sample(acc: dict[str, float], threads: dict[str, int], sut: Any, measured: dict[str, Any]) -> dict[str, float]:
    """Step 5: CPU microseconds per sample by part, from the timers and the per-thread CPU."""
    before, after, usage0, usage1 = measured["before"], measured["after"], measured["usage0"], measured["usage1"]
    samples = int(acc["samples"])
    total = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)

    us = 1e6 / samples
    dispatcher = after.get(threads["dispatcher"], 0.0) - before.get(threads["dispatcher"], 0.0)
    known = {threads["dispatcher"], threading.get_native_id()}
    other = sum(after[t] - before.get(t, 0.0) for t in after if t not in known)
    return {
        "samples": samples, "samples_per_s": samples / measured["wall"],
        "views": sut.pool.fed["view"], "copies": sut.pool.fed["copy"],
        "feed": acc["feed"] * us,
        "dispatch": (acc["dispatcher"] + acc["issue"] - acc["feed"] - acc["set_ids"] - acc["complete"]) * us,
        "responses": acc["set_ids"] * us,
        "loadgen_complete": acc["complete"] * us,
        "loadgen_main": (measured["main_s"] - acc["issue"]) * us,
        "dispatcher_proc": dispatcher * us,
        "other_threads": other * us,
        "process_total": total * us,
    }


def cpu_split(model_dir: Path, engine: EngineConfig, seconds: float, log_dir: Path,
              bank_rows: int = 1024) -> dict[str, float]:
    """One in-process LoadGen Offline run (PerformanceOnly, ``seconds``, its logs in ``log_dir``)
    through the real OfflineSUT over a bank of ``bank_rows`` random rows; CPU microseconds per
    sample by part."""
    import mlperf_loadgen as lg
    import openvino as ov

    from modelprep.card import load_card
    from sut.engine import compile_model

    card = load_card(model_dir)
    compiled, _ = compile_model(ov.Core(), model_dir, card, engine)
    acc = {"issue": 0.0, "set_ids": 0.0, "complete": 0.0, "dispatcher": 0.0, "feed": 0.0, "samples": 0}
    threads: dict[str, int] = {}
    qsl = RandomBankQSL(bank_rows, card.preprocess.sample_shape)
    sut = _timed_sut_class(acc, threads)(qsl, compiled, engine.infer_requests)
    timed_feed = _timed_feed(sut, acc)
    sut.pool.warmup(2 * engine.infer_requests, 1.0)
    settings, log_settings = _settings(seconds, max(1000.0, sut.pool.warmup(0, 2.0)), log_dir)

    # 4. the run, with per-thread and process CPU read on either side
    sut_h = lg.ConstructFastSUT(sut.issue_query, sut.flush_queries)
    qsl_h = lg.ConstructQSL(bank_rows, bank_rows, qsl.load_samples, qsl.unload_samples)
    before, usage0 = _task_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
    wall0, main0 = time.perf_counter(), time.thread_time()
    sut.pool.fed.update(view=0, copy=0)
    sut.pool._input_for = timed_feed
    lg.StartTestWithLogSettings(sut_h, qsl_h, settings, log_settings, "")
    sut.close()
    main_s, wall = time.thread_time() - main0, time.perf_counter() - wall0
    after, usage1 = _task_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
    lg.DestroyQSL(qsl_h)
    lg.DestroyFastSUT(sut_h)
    return _per_sample(acc, threads, sut, {"before": before, "after": after, "usage0": usage0, "usage1": usage1,
                                           "main_s": main_s, "wall": wall})


def print_split(s: dict[str, float]) -> None:
    """The CPU split, one line per part."""
    print(f"\nharness CPU per sample (one in-process LoadGen Offline run, "
          f"{s['samples']} samples, {s['samples_per_s']:.0f} samples/s):")
    rows = [
        (f"feed: bank views ({s['views']} batches) or copies ({s['copies']} batches)", s["feed"]),
        ("dispatch (issue_query + dispatcher: rows, order, submit, start_async, wait)", s["dispatch"]),
        ("responses (set .id on the request's response objects)", s["responses"]),
        ("LoadGen: QuerySamplesComplete", s["loadgen_complete"]),
        ("LoadGen: StartTest thread (query generation, bookkeeping)", s["loadgen_main"]),
        ("other threads (OpenVINO inference, LoadGen's own threads)", s["other_threads"]),
        ("whole process", s["process_total"]),
    ]
    for name, value in rows:
        print(f"  {name:<70} {value:7.2f} us")
    print("  (thread_time around each part on its own thread; 'other' from /proc/self/task/*/stat. The "
          "dispatcher thread also answers LoadGen, so feed, dispatch, responses and QuerySamplesComplete "
          "are all its time)")
