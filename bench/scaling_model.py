"""Scaling model: how many cores the harness itself needs on a big machine, from two measurements here.

Inputs, measured on this host:
  1. the harness's serial CPU cost per sample (``bench/_cpu_split.py``, as ``harness_ceiling``
     prints it, on the null model: dispatch + responses + QuerySamplesComplete + LoadGen's own
     thread; the parts that run under one Python interpreter's lock, so one instance can spend at
     most one core on them);
  2. each model's INT8 throughput per core (the pool on one single-thread stream, batch 16, two
     requests; untrained weights: speed only).
Output, per model and machine size N (8 ... 256 cores): the model's throughput if every core ran
inference (N x per-core rate), the harness CPU that throughput costs (rate x serial cost), and the
instances (processes, each with its own interpreter) needed so that no instance's serial work
exceeds ``--budget`` of a core. Offline batches are views of the bank (nothing is copied; a
batch that must be copied is copied on the dispatcher thread and counted in its serial cost).

    bench/run.sh scaling_model [--models resnet50,decinet_s] [--seconds 8]

It is a model, not a measurement of a big machine: per-core rates of a big server differ from
this host's (another ISA, AMX or not, memory bandwidth); rerun it there, or scale the per-core
column by the ratio of published per-core figures.
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import UNTRAINED, WORK, WORKSPACE, require_train_extra

require_train_extra(__file__)

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from bench._cpu_split import cpu_split  # noqa: E402
from bench._null_model import build_null_model  # noqa: E402
from harness.tune import measure_throughput  # noqa: E402
from pipeline.flows import demo_calibration, prepare_model  # noqa: E402
from sut.config import EngineConfig  # noqa: E402

MACHINES = (8, 32, 64, 128, 256)
SERIAL_PARTS = ("feed", "dispatch", "responses", "loadgen_complete", "loadgen_main")


def serial_us_per_sample(seconds: float) -> tuple[float, dict[str, float]]:
    """The harness's per-sample CPU on its serial (one-interpreter) path, from the null model."""
    model_dir = build_null_model(WORK / "scaling" / "null")
    split = cpu_split(model_dir, EngineConfig(2, 2, 4, 16), seconds, WORK / "scaling" / "cpu_split")
    return sum(split[p] for p in SERIAL_PARTS), split


def per_core_rate(model: str, seconds: float) -> float:
    """INT8 samples/s of ``model`` on one core (one single-thread stream, batch 16, two requests)."""
    model_dir = prepare_model(model, "int8", WORKSPACE, demo_calibration(WORKSPACE, 100))
    return measure_throughput(model_dir, EngineConfig(1, 1, 2, 16), seconds)


def table(model: str, rate: float, serial_us: float, budget: float) -> list[str]:
    """Markdown rows: cores, throughput, harness cores, instances."""
    rows = []
    for cores in MACHINES:
        total = cores * rate
        harness_cores = total * serial_us / 1e6
        instances = max(1, math.ceil(harness_cores / budget))
        rows.append(f"| {model} | {cores} | {total:,.0f} | {harness_cores:.2f} | {instances} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure the serial cost and the per-core rates, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,decinet_s", help="registered architectures (INT8)")
    p.add_argument("--seconds", type=float, default=8.0, help="measuring time per figure")
    p.add_argument("--budget", type=float, default=0.5,
                   help="share of one core an instance's serial path may use (default 0.5: headroom)")
    p.add_argument("--json", type=Path, help="also write the figures and their record (docs/performance.md) here")
    args = p.parse_args(argv)
    serial_us, split = serial_us_per_sample(args.seconds)
    print(f"harness serial CPU per sample: {serial_us:.2f} us "
          f"({', '.join(f'{k} {split[k]:.2f}' for k in SERIAL_PARTS)}; null model, {split['samples_per_s']:.0f} "
          "samples/s)")
    lines = ["| model | cores | samples/s if every core infers | harness cores (serial path) | instances |",
             "|---|---|---|---|---|"]
    rates = {}
    for model in args.models.split(","):
        rate = rates[model] = per_core_rate(model, args.seconds)
        print(f"{model}: {rate:.1f} INT8 samples/s per core on this host ({UNTRAINED})")
        lines += table(model, rate, serial_us, args.budget)
    print("\n".join(lines))
    if args.json:
        from bench._record import Value, figure, write_json

        write_json(args.json, {"serial_us_per_sample": serial_us, "split": split, "per_core_rate": rates}, [figure(
            "scaling_model", 1e6 / rate / serial_us, Value("one core's INT8 inference", 1e6 / rate, "us/sample"),
            Value("harness serial path", serial_us, "us/sample"), name=f"{model} int8",
            ratio_is="cores one Python interpreter can feed: inference time per sample on one core / the "
                     "harness's serial time per sample", note="untrained weights: speed only")
            for model, rate in rates.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
