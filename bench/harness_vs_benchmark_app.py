"""Harness vs benchmark_app: the same INT8 ResNet-50 IR, the same engine settings, interleaved.

Builds ResNet-50 v1.5 with UNTRAINED weights, exports it to ONNX once, prepares
an INT8 IR with the harness's own ``prepare`` (calibrated on the demo list),
then for each round runs OpenVINO's ``benchmark_app`` and the harness's LoadGen
Offline performance test one after the other, each in its own process, with
identical NUM_STREAMS / INFERENCE_NUM_THREADS / infer requests / batch /
pinning / precision hint. It prints per-round throughput, medians, the ratio
ours / benchmark_app, and the compiled properties both tools ended up with.

The weights are untrained and the demo images are tiny digits, so accuracy is
meaningless here: only speed is measured. Everything is written under
``work/bench/``.

    .venv/bin/python bench/harness_vs_benchmark_app.py [--rounds 3] [--duration 20]
        [--system host|NAME|path.yaml] [--streams S] [--threads T] [--requests R]
        [--batch B] [--target-qps Q] [--quiet-wait 20] [--json OUT]

On a shared machine, each run is preceded by a short wait for the other
processes to go quiet, and the CPU they used during each run is reported; rounds
where it exceeded ``--busy-threshold`` are left out of the "clean" medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make sut/, dataset/, models/ importable
    sys.path.insert(0, str(REPO))

from common.errors import HarnessError  # noqa: E402  (needs the path above)
from modelprep.card import load_card  # noqa: E402
from harness.profile import SystemProfile, load_profile  # noqa: E402

WORK = REPO / "work" / "bench"
PYTHON = sys.executable
ONNX_NAME = "resnet50_v15_untrained.onnx"
ONNX_OPSET = 17
INPUT_SIZE = 224
UNTRAINED_NOTE = "UNTRAINED weights (seeded random init): only speed is meaningful, not accuracy"
# Properties a reader compares first; everything else is listed only if the tools differ.
KEY_PROPERTIES = ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING",
                  "INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "SCHEDULING_CORE_TYPE",
                  "ENABLE_HYPER_THREADING", "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "KV_CACHE_PRECISION",
                  "EXECUTION_MODE_HINT")
# Differ by construction (names, paths), not by engine behaviour.
IGNORED_PROPERTIES = {"NETWORK_NAME", "CACHE_DIR", "LOADED_FROM_CACHE"}


# ----------------------------------------------------------------------------- records
@dataclass
class ToolRun:
    """One subprocess run of either tool."""

    tool: str
    samples_per_second: float
    wall_s: float
    foreign_cores: float
    command: list[str]
    log: str
    properties: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Round:
    """One interleaved round: benchmark_app first, then the harness."""

    index: int
    bapp: ToolRun
    ours: ToolRun

    @property
    def ratio(self) -> float:
        """ours / benchmark_app throughput."""
        return self.ours.samples_per_second / self.bapp.samples_per_second


# ----------------------------------------------------------------------------- subprocesses
@dataclass(frozen=True)
class Measured:
    """A finished subprocess: its output, wall time and how busy the rest of the machine was."""

    output: str
    wall_s: float
    foreign_cores: float  # CPU used by other processes (and hypervisor steal) during the run, in cores


def cpu_busy_s() -> float:
    """Machine-wide busy CPU seconds so far (user+nice+system+irq+softirq+steal, /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the tool runs), from getrusage."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def foreign_load(seconds: float = 1.0) -> float:
    """Cores busy with other work right now (sampled over ``seconds``; this process is idle)."""
    before = cpu_busy_s()
    time.sleep(seconds)
    return (cpu_busy_s() - before) / seconds


def wait_for_quiet(max_wait_s: float, threshold: float) -> None:
    """Wait (up to ``max_wait_s``) until other processes use less than ``threshold`` cores.

    Other people's jobs on a 2-core machine halve a run's throughput; waiting for a
    quiet moment is cheaper than a contaminated round.
    """
    deadline = time.monotonic() + max_wait_s
    while (load := foreign_load()) >= threshold and time.monotonic() < deadline:
        pass
    if load >= threshold:
        print(f"  (machine still busy: {load:.2f} cores used by other processes; running anyway)", flush=True)


def run_logged(cmd: Sequence[str], log_path: Path, timeout_s: float) -> Measured:
    """Run ``cmd`` from the repo root, save stdout+stderr to ``log_path``, measure foreign load.

    A failure exits with the log's tail, since a benchmark with a missing half is no result.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    busy0, own0, start = cpu_busy_s(), children_cpu_s(), time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout_s, check=False)
    wall = time.perf_counter() - start
    # Busy time not spent in our child = other processes + steal (+ this idle parent, ~0).
    foreign = max(0.0, (cpu_busy_s() - busy0) - (children_cpu_s() - own0)) / wall
    log_path.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}")
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise SystemExit(f"ERROR: command failed with exit code {proc.returncode} "
                         f"(full log: {log_path}):\n  {' '.join(cmd)}\n{tail}")
    return Measured(proc.stdout, wall, foreign)


def rel(path: Path) -> str:
    """``path`` relative to the repo root when it is inside it (shorter commands and logs)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- model and data
def ensure_demo(demo_dir: Path) -> Path:
    """Build (or reuse) the demo dataset; its images only feed calibration and the QSL."""
    run_logged([PYTHON, "-m", "dataset.demo", "--out", rel(demo_dir)], WORK / "logs" / "demo.log", 600)
    return demo_dir


def export_resnet50(out: Path) -> Path:
    """Export an untrained ResNet-50 v1.5 (seeded) to ONNX once; reuse the file afterwards.

    The ONNX carries an ``mlperf_cpu.card`` entry saying ``trained: false`` so the
    prepared model's card does not pass for a real ResNet-50.
    """
    if out.is_file():
        return out
    import io
    import warnings

    import onnx
    import torch

    import models
    from dataset.constants import TORCHVISION_MEAN, TORCHVISION_STD
    from common.model_metadata import CARD_METADATA_KEY as METADATA_KEY

    torch.manual_seed(0)
    net = models.create("resnet50").eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter needs no onnxscript (not installed) and folds BatchNorm.
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),), buf, dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          opset_version=ONNX_OPSET, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    card = {"name": "resnet50-untrained", "input_size": INPUT_SIZE, "num_classes": 1000,
            "mean": list(TORCHVISION_MEAN), "std": list(TORCHVISION_STD), "trained": False,
            "notes": UNTRAINED_NOTE}
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(card, sort_keys=True)
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(out)  # atomic: a killed export never leaves a file that looks complete
    return out


def prepare_int8(onnx_path: Path, demo_dir: Path) -> Path:
    """INT8 IR via the harness's own ``prepare`` (cached by the harness on source + settings)."""
    cmd = [PYTHON, "-m", "cli.main", "prepare", "--model", rel(onnx_path), "--precision", "int8",
           "--calib-list", rel(demo_dir / "cal_list.txt"), "--calib-dir", rel(demo_dir / "train"),
           "--out", rel(WORK / "models"), "--cache-dir", rel(WORK / "cache")]
    out = run_logged(cmd, WORK / "logs" / "prepare.log", 3600).output
    model_dir = Path(out.strip().splitlines()[-1])
    return model_dir if model_dir.is_absolute() else REPO / model_dir


# ----------------------------------------------------------------------------- engine settings
def bench_profile(system: str, streams: int | None, threads: int | None, requests: int | None,
                  batch: int | None) -> SystemProfile:
    """The ``--system`` profile with the command-line overrides applied (and re-validated)."""
    base = load_profile(system)
    changes = {k: v for k, v in {"num_streams": streams, "num_threads": threads,
                                 "infer_requests": requests, "batch_size": batch}.items() if v is not None}
    e = dataclasses.replace(base.engine, **changes)  # __post_init__ re-checks the combination
    name = f"bench-{base.name}-s{e.num_streams}t{e.num_threads}r{e.infer_requests}b{e.batch_size}"
    return dataclasses.replace(base, name=name, engine=e,
                               description=f"bench copy of {base.name!r} with {changes or 'no'} overrides")


def write_profile_yaml(profile: SystemProfile, directory: Path) -> Path:
    """Write ``profile`` as a YAML the harness's ``--system`` accepts, and check it loads back equal."""
    import yaml

    data = {"name": profile.name, "description": profile.description, "cores": profile.cores,
            "engine": dataclasses.asdict(profile.engine)}
    if profile.system:
        data["system"] = profile.system
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{profile.name}.yaml"
    path.write_text("# Written by bench/harness_vs_benchmark_app.py; safe to delete.\n"
                    + yaml.safe_dump(data, sort_keys=False))
    if load_profile(str(path)).engine != profile.engine:  # both tools must get the same numbers
        raise SystemExit(f"ERROR: {path} does not load back to {profile.engine}")
    return path


# ----------------------------------------------------------------------------- benchmark_app
def benchmark_app_exe() -> str:
    """The venv's ``benchmark_app`` console script (next to this Python), else the one on PATH."""
    local = Path(PYTHON).parent / "benchmark_app"
    found = str(local) if local.is_file() else shutil.which("benchmark_app")
    if not found:
        raise SystemExit("ERROR: benchmark_app not found (install openvino into the venv)")
    return found


def benchmark_app_cmd(xml: Path, profile: SystemProfile, duration_s: int, cache_dir: Path) -> list[str]:
    """benchmark_app with exactly the profile's engine settings, the card's execution
    precision and no hint (random uint8 input).

    ``-cdir`` is the harness's compiled-model cache, so both tools load the same blob.
    """
    e = profile.engine
    precision = load_card(xml.parent).inference_precision
    return [benchmark_app_exe(), "-m", rel(xml), "-d", "CPU", "-hint", "none",
            "-nstreams", str(e.num_streams), "-nthreads", str(e.num_threads),
            "-pin", "YES" if e.pinning else "NO", "-nireq", str(e.infer_requests),
            "-b", str(e.batch_size), "-infer_precision", precision,
            "-t", str(duration_s), "-api", "async", "-cdir", rel(cache_dir)]


_THROUGHPUT = re.compile(r"Throughput:\s+([0-9.]+)\s+FPS")
_PROPERTY = re.compile(r"^\[ INFO \]\s{3}([A-Z][A-Z0-9_]*): (.*)$")


def parse_throughput(text: str) -> float:
    """The ``Throughput: X FPS`` figure of a benchmark_app log."""
    match = _THROUGHPUT.search(text)
    if not match:
        raise SystemExit("ERROR: no 'Throughput: X FPS' line in benchmark_app output")
    return float(match.group(1))


def parse_step8_properties(text: str) -> dict[str, str]:
    """The compiled-model properties benchmark_app prints in step 8."""
    out: dict[str, str] = {}
    in_step8 = False
    for line in text.splitlines():
        if line.startswith("[Step "):
            in_step8 = line.startswith("[Step 8/")
        elif in_step8 and (m := _PROPERTY.match(line)):
            out[m.group(1)] = m.group(2).strip()
    return out


def run_benchmark_app(xml: Path, profile: SystemProfile, duration_s: int, label: str) -> ToolRun:
    """One benchmark_app run; its log goes to ``work/bench/logs``."""
    cmd = benchmark_app_cmd(xml, profile, duration_s, WORK / "cache" / "ov_cache")
    log_path = WORK / "logs" / f"{label}_benchmark_app.log"
    m = run_logged(cmd, log_path, 10 * duration_s + 600)
    return ToolRun("benchmark_app", parse_throughput(m.output), m.wall_s, m.foreign_cores, cmd,
                   rel(log_path), parse_step8_properties(m.output))


# ----------------------------------------------------------------------------- harness
def harness_cmd(model_dir: Path, profile_yaml: Path, dataset: Path, results: Path,
                duration_s: int, target_qps: float) -> list[str]:
    """``cli.main run --mode performance`` sized to last about ``duration_s``.

    ``--min-query-count 1`` because the round's mlperf.conf asks Offline for at least
    24576 samples, which alone would make a short run last minutes on 2 cores.
    """
    return [PYTHON, "-m", "cli.main", "run", "--mode", "performance", "--model", rel(model_dir),
            "--dataset", rel(dataset), "--system", rel(profile_yaml), "--results", rel(results),
            "--cache-dir", rel(WORK / "cache"), "--min-duration-ms", str(duration_s * 1000),
            "--min-query-count", "1", "--target-qps", f"{target_qps:.1f}"]


def find_result(results: Path) -> Path:
    """The single ``result.json`` under a per-run results directory."""
    found = sorted(results.rglob("result.json"))
    if len(found) != 1:
        raise SystemExit(f"ERROR: expected one result.json under {results}, found {len(found)}")
    return found[0]


def run_harness(model_dir: Path, profile_yaml: Path, dataset: Path, duration_s: int,
                target_qps: float, label: str) -> ToolRun:
    """One harness performance run in its own process; figures come from its result.json."""
    results = WORK / "results" / label
    shutil.rmtree(results, ignore_errors=True)  # a stale result.json must never be read back
    cmd = harness_cmd(model_dir, profile_yaml, dataset, results, duration_s, target_qps)
    log_path = WORK / "logs" / f"{label}_harness.log"
    m = run_logged(cmd, log_path, 20 * duration_s + 900)
    result_path = find_result(results)
    result = json.loads(result_path.read_text())
    if result.get("samples_per_second") is None:
        raise SystemExit(f"ERROR: {result_path} has no samples_per_second")
    extra = {k: result.get(k) for k in ("result_validity", "loadgen_wall_s", "effective_target_qps",
                                        "timings_ms")}
    extra["result_json"] = rel(result_path)
    properties = {k: str(v) for k, v in (result.get("compiled_properties") or {}).items()}
    return ToolRun("harness", float(result["samples_per_second"]), m.wall_s, m.foreign_cores, cmd,
                   rel(log_path), properties, extra)


# ----------------------------------------------------------------------------- properties
_TYPE_NAMES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "uint8_t": "u8", "int8_t": "i8"}
_TYPE_REPR = re.compile(r"^<Type: '(\w+)'>$")


def normalise(value: str) -> str:
    """One spelling per value: benchmark_app prints ``<Type: 'float32'>`` where we store ``f32``."""
    m = _TYPE_REPR.match(value)
    return _TYPE_NAMES.get(m.group(1), m.group(1)) if m else value


def compare_properties(bapp: dict[str, str],
                       ours: dict[str, str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(key rows: name, benchmark_app, ours) for KEY_PROPERTIES, and the other keys that differ."""
    rows = [(k, normalise(bapp.get(k, "-")), normalise(ours.get(k, "-"))) for k in KEY_PROPERTIES
            if k in bapp or k in ours]
    others = sorted((set(bapp) | set(ours)) - set(KEY_PROPERTIES) - IGNORED_PROPERTIES)
    diffs = [f"{k}: benchmark_app={normalise(bapp.get(k, '-'))} ours={normalise(ours.get(k, '-'))}"
             for k in others if normalise(bapp.get(k, "-")) != normalise(ours.get(k, "-"))]
    return rows, diffs


# ----------------------------------------------------------------------------- summary
def clean(r: Round, threshold: float) -> bool:
    """True if neither run of the round shared the machine with other busy processes."""
    return max(r.bapp.foreign_cores, r.ours.foreign_cores) < threshold


def summarise(rounds: list[Round]) -> dict[str, float]:
    """Medians and both ratio estimates (median of per-round ratios, ratio of medians)."""
    bapp = statistics.median(r.bapp.samples_per_second for r in rounds)
    ours = statistics.median(r.ours.samples_per_second for r in rounds)
    return {"rounds": len(rounds), "benchmark_app_median": round(bapp, 2), "ours_median": round(ours, 2),
            "median_of_ratios": round(statistics.median(r.ratio for r in rounds), 4),
            "ratio_of_medians": round(ours / bapp, 4),
            "min_ratio": round(min(r.ratio for r in rounds), 4),
            "max_ratio": round(max(r.ratio for r in rounds), 4)}


def print_header() -> None:
    """Column titles of the per-round table."""
    print(f"{'round':>5}  {'benchmark_app FPS':>18}  {'ours samples/s':>14}  {'ratio':>7}  {'LoadGen':<8}  "
          f"{'wall s bapp/ours':>16}  other load, cores bapp/ours", flush=True)


def print_round(r: Round, threshold: float) -> None:
    """One table row per round, printed as soon as the round ends."""
    v = r.ours.extra.get("result_validity") or "?"
    flag = "" if clean(r, threshold) else "  <-- machine busy, excluded from 'clean'"
    print(f"{r.index:>5}  {r.bapp.samples_per_second:>18.2f}  {r.ours.samples_per_second:>14.2f}  "
          f"{r.ratio:>7.3f}  {v:<8}  {r.bapp.wall_s:>7.1f} /{r.ours.wall_s:>6.1f}  "
          f"{r.bapp.foreign_cores:>8.2f} / {r.ours.foreign_cores:.2f}{flag}", flush=True)


def print_ratios(label: str, summary: dict[str, float]) -> None:
    """The medians and the two ratio estimates of one set of rounds."""
    print(f"{label}: benchmark_app {summary['benchmark_app_median']:.2f} FPS, ours "
          f"{summary['ours_median']:.2f} samples/s (medians of {summary['rounds']} rounds)\n"
          f"  ours / benchmark_app: median of per-round ratios {summary['median_of_ratios']:.3f} "
          f"(range {summary['min_ratio']:.3f}..{summary['max_ratio']:.3f}), "
          f"ratio of medians {summary['ratio_of_medians']:.3f}")


def print_properties(r: Round) -> None:
    """The compiled properties both tools reported, side by side."""
    rows, diffs = compare_properties(r.bapp.properties, r.ours.properties)
    print(f"\n{'compiled properties (last round)':<36} {'benchmark_app':<28} ours")
    for name, b, o in rows:
        print(f"  {name:<34} {b:<28} {o:<28}{'' if b == o else '  <-- differs'}")
    print("other properties that differ: " + ("; ".join(diffs) if diffs else "none"))


# ----------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--duration", type=int, default=20, help="seconds per run, each tool (default 20)")
    p.add_argument("--system", default="host", help="profile name or path to a .yaml (default host)")
    p.add_argument("--streams", type=int, help="override engine.num_streams")
    p.add_argument("--threads", type=int, help="override engine.num_threads")
    p.add_argument("--requests", type=int, help="override engine.infer_requests")
    p.add_argument("--batch", type=int, help="override engine.batch_size")
    p.add_argument("--target-qps", type=float,
                   help="harness target_qps; default: this round's benchmark_app FPS x --qps-margin; "
                        "0: the harness's own warm-up estimate")
    p.add_argument("--qps-margin", type=float, default=1.1,
                   help="target_qps = benchmark_app FPS x this (default 1.1: the run lasts about "
                        "--duration x 1.1 x bapp/ours seconds and still meets min_duration)")
    p.add_argument("--busy-threshold", type=float, default=0.15,
                   help="a run during which other processes used this many cores or more is "
                        "'busy' and its round is left out of the 'clean' medians (default 0.15)")
    p.add_argument("--quiet-wait", type=float, default=20,
                   help="before each run, wait up to this many seconds for the machine to be idle "
                        "(default 20; 0: do not wait)")
    p.add_argument("--label", help="subdirectory for this invocation's logs and results under "
                                   "work/bench/{logs,results} (default: the engine settings, e.g. "
                                   "bench-host-s2t2r4b16; a rerun with the same settings overwrites)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.duration < 1:
        p.error("--rounds and --duration must be >= 1")
    return args


def run_round(index: int, model_dir: Path, profile: SystemProfile, profile_yaml: Path,
              dataset: Path, args: argparse.Namespace) -> Round:
    """benchmark_app, then the harness aimed at the same duration; each after a quiet moment."""
    label = f"{args.label or profile.name}/round{index}"
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait, args.busy_threshold)
    bapp = run_benchmark_app(model_dir / "model.xml", profile, args.duration, label)
    qps = args.target_qps if args.target_qps is not None else bapp.samples_per_second * args.qps_margin
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait, args.busy_threshold)
    ours = run_harness(model_dir, profile_yaml, dataset, args.duration, qps, label)
    return Round(index, bapp, ours)


def to_json(args: argparse.Namespace, profile: SystemProfile, model_dir: Path, rounds: list[Round],
            summaries: dict[str, dict[str, float]], wall_s: float) -> dict[str, Any]:
    """Everything measured, for ``--json``."""
    rows, diffs = compare_properties(rounds[-1].bapp.properties, rounds[-1].ours.properties)
    return {"note": UNTRAINED_NOTE, "argv": sys.argv, "model_dir": rel(model_dir),
            "profile": profile.to_dict(), "duration_s": args.duration, "wall_s": round(wall_s, 1),
            "busy_threshold_cores": args.busy_threshold, **summaries,
            "rounds": [{"round": r.index, "ratio": round(r.ratio, 4), "clean": clean(r, args.busy_threshold),
                        "benchmark_app": dataclasses.asdict(r.bapp), "harness": dataclasses.asdict(r.ours)}
                       for r in rounds],
            "key_properties": [{"name": n, "benchmark_app": b, "ours": o} for n, b, o in rows],
            "other_property_differences": diffs}


def setup(args: argparse.Namespace) -> tuple[SystemProfile, Path, Path, Path]:
    """Profile YAML, demo data, ONNX and INT8 IR (all cached under work/bench)."""
    profile = bench_profile(args.system, args.streams, args.threads, args.requests, args.batch)
    profile_yaml = write_profile_yaml(profile, WORK / "profiles")
    demo = ensure_demo(WORK / "demo")
    model_dir = prepare_int8(export_resnet50(WORK / ONNX_NAME), demo)
    e = profile.engine
    print(f"model   : {rel(model_dir)} (INT8, uint8 NCHW input)")
    print(f"engine  : {e.num_streams} streams, {e.num_threads} threads, {e.infer_requests} requests, "
          f"batch {e.batch_size}, pinning {e.pinning}, precision hint {load_card(model_dir).inference_precision} "
          f"(profile {rel(profile_yaml)})", flush=True)
    return profile, profile_yaml, demo, model_dir


def report(rounds: list[Round], threshold: float) -> dict[str, dict[str, float]]:
    """Print the medians (all rounds, and clean rounds if some were busy) and the properties."""
    summaries = {"summary_all": summarise(rounds)}
    print()
    print_ratios("all rounds", summaries["summary_all"])
    quiet = [r for r in rounds if clean(r, threshold)]
    if quiet and len(quiet) < len(rounds):
        summaries["summary_clean"] = summarise(quiet)
        print_ratios(f"clean rounds (other load < {threshold} cores)", summaries["summary_clean"])
    elif not quiet:
        print(f"no clean round: every round shared the machine with other work (>= {threshold} cores)")
    print_properties(rounds[-1])
    return summaries


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a settings error (bad profile or override) is one ERROR line, exit code 2."""
    args = parse_args(argv)
    try:
        return benchmark(args)
    except HarnessError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code


def benchmark(args: argparse.Namespace) -> int:
    """Prepare once, run the interleaved rounds, print (and optionally save) the comparison."""
    start = time.perf_counter()
    print(f"NOTE: {UNTRAINED_NOTE}; the demo images only stand in for ImageNet.", flush=True)
    profile, profile_yaml, demo, model_dir = setup(args)
    print(f"setup   : {time.perf_counter() - start:.1f} s; "
          f"{args.rounds} rounds x 2 runs x ~{args.duration} s\n", flush=True)
    rounds: list[Round] = []
    print_header()
    for i in range(1, args.rounds + 1):
        rounds.append(run_round(i, model_dir, profile, profile_yaml, demo / "val", args))
        print_round(rounds[-1], args.busy_threshold)
    summaries = report(rounds, args.busy_threshold)
    wall = time.perf_counter() - start
    print("\ncommands (round 1):\n  " + " ".join(rounds[0].bapp.command) + "\n  "
          + " ".join(rounds[0].ours.command))
    print(f"logs: {rel(WORK / 'logs' / (args.label or profile.name))}/   wall time: {wall:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = to_json(args, profile, model_dir, rounds, summaries, wall)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
