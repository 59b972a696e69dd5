"""Feed designs without LoadGen: bare Python loops over the pool's settings, on the null model.

Reproduces the README's "Harness ceiling" table of feed designs, interleaved in rounds, on the
null 224x224 classifier ``harness_ceiling`` measures (``bench/_null_model.py``; 4 requests,
2 streams x 1 thread, batch 16, bank of 1024 random rows):

- ``pool-callbacks``: ``InferencePool(callbacks=True)``: each batch answered on OpenVINO's thread;
- ``pool``: ``InferencePool`` (the default): the submitting thread waits for the oldest request;
  batches walk consecutive rows, so every one is a view of the bank;
- ``pool-copy``: the same with random rows, so every batch is copied (``np.take``);
- ``fixed``: the submitting thread waits for the oldest request, each request keeping one fixed
  input tensor, as ``benchmark_app`` does (the upper bound: nothing is fed).

Prints samples/s per design and round, then the median per design.

    bench/run.sh feed_loops [--rounds 4] [--seconds 5]
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import run_main

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bench._null_model import NULL_MODEL, build_null_model
from sut.config import EngineConfig

ENGINE = EngineConfig(num_streams=2, num_threads=2, infer_requests=4, batch_size=16)
ROWS = 1024


def pool_loop(compiled, bank: np.ndarray, seconds: float, callbacks: bool, consecutive: bool) -> float:
    """Samples/s of an ``InferencePool`` kept busy for ``seconds``."""
    from sut.engine import InferencePool

    done = [0]

    def on_done(_slot: int, ids: np.ndarray, _out: np.ndarray) -> None:
        done[0] += len(ids)

    pool = InferencePool(compiled, ENGINE.infer_requests, on_done, lambda ids, err: None, bank, callbacks=callbacks)
    bs = ENGINE.batch_size
    rng = np.random.default_rng(1)
    ids = np.zeros(bs, np.uint64)  # non-empty: every batch is answered like a run's
    try:
        start, k = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            first = (k * bs) % (ROWS - bs + 1)
            rows = (np.arange(first, first + bs) if consecutive else rng.integers(0, ROWS, bs)).astype(np.int32)
            pool.submit(rows, ids)
            k += 1
        pool.drain()
        return done[0] / (time.perf_counter() - start)
    finally:
        pool.close()


def fixed_loop(compiled, bank: np.ndarray, seconds: float) -> float:
    """Samples/s with a fixed input per request, the oldest request awaited first (benchmark_app's feed)."""
    import openvino as ov

    bs, n = ENGINE.batch_size, ENGINE.infer_requests
    requests = [compiled.create_infer_request() for _ in range(n)]
    inputs = [np.ascontiguousarray(bank[k * bs:(k + 1) * bs]) for k in range(n)]
    for request, array in zip(requests, inputs):
        request.set_input_tensor(ov.Tensor(array, shared_memory=True))
    started, done = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        if started - done == n:
            requests[done % n].wait()
            done += 1
        requests[started % n].start_async()
        started += 1
    while done < started:
        requests[done % n].wait()
        done += 1
    return done * bs / (time.perf_counter() - start)


def benchmark(args: argparse.Namespace) -> int:
    """Build the null model, run every design in interleaved rounds, print the medians."""
    import openvino as ov

    from modelprep.card import load_card
    from sut.engine import compile_model

    model_dir = build_null_model(NULL_MODEL)
    compiled, info = compile_model(ov.Core(), model_dir, load_card(model_dir), ENGINE)
    print(f"model: {model_dir} (null 224x224); engine: {ENGINE}; "
          f"device: {ov.Core().get_property('CPU', 'FULL_DEVICE_NAME')}", flush=True)
    bank = np.random.default_rng(0).integers(0, 256, (ROWS, *info.input_shape[1:]), dtype=np.uint8)
    designs: dict[str, Callable[[], float]] = {
        "pool-callbacks": lambda: pool_loop(compiled, bank, args.seconds, callbacks=True, consecutive=True),
        "pool": lambda: pool_loop(compiled, bank, args.seconds, callbacks=False, consecutive=True),
        "pool-copy": lambda: pool_loop(compiled, bank, args.seconds, callbacks=False, consecutive=False),
        "fixed": lambda: fixed_loop(compiled, bank, args.seconds),
    }
    results: dict[str, list[float]] = {name: [] for name in designs}
    for run in designs.values():  # warm-up: every design once, untimed
        run()
    for r in range(1, args.rounds + 1):
        for name, run in designs.items():
            results[name].append(run())
        print(f"round {r}: " + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in results.items()), flush=True)
    for name, values in results.items():
        print(f"{name:15s} median {statistics.median(values):,.0f} samples/s "
              f"(range {min(values):,.0f}..{max(values):,.0f})")
    if args.json:
        from bench._record import Value, figure, write_json

        pool, fixed = statistics.median(results["pool"]), statistics.median(results["fixed"])
        write_json(args.json, {"engine": str(ENGINE), "samples_per_s": results}, [figure(
            "feed_loops", pool / fixed, Value("pool (default feed)", pool, "samples/s"),
            Value("fixed inputs (benchmark_app's feed)", fixed, "samples/s"), name="null model",
            ratio_is="the pool's default feed / fixed inputs, medians of interleaved rounds, no LoadGen",
            note="null model: the feed is what is measured")])
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per design per round (default 5)")
    p.add_argument("--json", type=Path, help="also write the figures and their record (docs/performance.md) here")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        p.error("--rounds must be >= 1 and --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
