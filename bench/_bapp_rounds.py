"""Interleaved Offline rounds of benchmark_app and the harness, as the benches comparing the two run them.

``add_round_args`` / ``parse_round_args``: the options every such bench takes (rounds, duration,
system and its engine overrides, quiet wait); ``bench_system``: the profile both tools run with;
``run_rounds``: the rounds, then the compiled properties and commands of the last one.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from typing import Callable

import yaml

from bench._bapp import BappResult
from bench._common import WORK
from bench._rounds import Quiet, Round, offline_rounds
from common.errors import HarnessError
from harness.profile import load_profile
from pipeline.flows import TestSpec, run_test
from records.results import RunResult
from sut.config import SystemProfile

KEY_PROPERTIES = ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING", "INFERENCE_PRECISION_HINT",
                  "PERFORMANCE_HINT", "PERFORMANCE_HINT_NUM_REQUESTS", "ENABLE_HYPER_THREADING",
                  "SCHEDULING_CORE_TYPE", "EXECUTION_MODE_HINT")


def add_round_args(p: argparse.ArgumentParser, duration: int) -> None:
    """Rounds, duration, system and its engine overrides, quiet wait: what an interleaved comparison takes."""
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=int, default=duration, help=f"seconds per run, each tool (default {duration})")
    p.add_argument("--system", default="host", help="profile name or .yaml (default host)")
    for name in ("streams", "threads", "requests", "batch"):
        p.add_argument(f"--{name}", type=int, help=f"override the profile's engine {name}")
    p.add_argument("--quiet-wait", type=float, default=20, help="wait up to S s for an idle machine (0: no)")
    p.add_argument("--busy-threshold", type=float, default=0.15,
                   help="other load (cores) that marks a round busy, out of the 'clean' medians")


def parse_round_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, refusing fewer than one round or second."""
    args = p.parse_args(argv)
    if args.rounds < 1 or args.duration < 1:
        p.error("--rounds and --duration must be >= 1")
    return args


def bench_system(args: argparse.Namespace) -> tuple[str, SystemProfile]:
    """The ``--system`` to run with: the given one, or a YAML copy with the overrides applied."""
    base = load_profile(args.system)
    changes = {k: v for k, v in {"num_streams": args.streams, "num_threads": args.threads,
                                 "infer_requests": args.requests, "batch_size": args.batch}.items()
               if v is not None}
    if not changes:
        return args.system, base
    e = dataclasses.replace(base.engine, **changes)  # re-validated by EngineConfig
    profile = dataclasses.replace(base, name=f"bench-{base.name}-s{e.num_streams}t{e.num_threads}"
                                  f"r{e.infer_requests}b{e.batch_size}", engine=e)
    path = WORK / "profiles" / f"{profile.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in profile.to_dict().items() if v or k == "description"}
    path.write_text("# Written by bench/_bapp_rounds.py: a bench's engine overrides\n"
                    + yaml.safe_dump(data, sort_keys=False))
    if load_profile(str(path)).engine != e:  # both tools must get the same numbers
        raise HarnessError(f"{path} does not load back to {e}")
    return str(path), profile


def compare(bapp: dict[str, str], ours: dict[str, str]) -> None:
    """The compiled properties that matter, side by side."""
    print(f"{'compiled property (last round)':<32} {'benchmark_app':<30} ours")
    for k in KEY_PROPERTIES:
        b, o = bapp.get(k, "-"), str(ours.get(k, "-"))
        print(f"  {k:<30} {b:<30} {o}{'' if b == o else '   <- differs'}")


def run_rounds(args: argparse.Namespace, reference: Callable[[int], BappResult], spec: TestSpec
               ) -> tuple[list[Round], list[tuple[BappResult, RunResult]]]:
    """``args.rounds`` interleaved rounds of ``reference`` (benchmark_app) and the harness's ``spec``
    test: the per-round table, then the compiled properties and commands of the last round."""
    rounds: list[Round] = []
    runs: list[tuple[BappResult, RunResult]] = []
    for row, bapp, ours in offline_rounds(args.rounds, reference, lambda i: run_test(spec, quiet=True),
                                          Quiet(args.quiet_wait, args.busy_threshold), args.busy_threshold):
        rounds.append(row)
        runs.append((bapp, ours))
    print()
    compare(runs[-1][0].properties, runs[-1][1].compiled_properties)
    print(f"\ncommands (last round):\n  {shlex.join(runs[-1][0].command)}\n  "
          f"{shlex.join(['mlperf-cpu', *spec.argv()])}")
    return rounds, runs
