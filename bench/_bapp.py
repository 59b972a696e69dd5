"""OpenVINO's ``benchmark_app`` with the engine settings of a ``sut.config.EngineConfig``.

    from bench._bapp import run_benchmark_app
    r = run_benchmark_app(model_dir / "model.xml", profile.engine, card.inference_precision, 20)
    r.throughput_fps, r.latency.median_ms, r.properties["NUM_STREAMS"], r.command

The command mirrors ``sut.engine.compile_model``: no performance hint, explicit
streams / threads / pinning / infer requests / precision, and the model's input
fixed to ``[batch, C, H, W]`` (the prepared IR's u8 NCHW input; benchmark_app
fills it with random data). Throughput and latency come from benchmark_app's own
JSON report (``-report_type no_counters -json_stats``). The compiled-model
properties are only ever printed (step 8), so they are read from its log.

benchmark_app reports ONE latency percentile per run: the median by default, or
the ``-latency_percentile`` asked for (then ``median_ms`` is None).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from common.childproc import child_environment
from common.errors import HarnessError
from sut.config import EngineConfig


class BenchmarkAppError(HarnessError):
    """benchmark_app is missing, failed, or wrote no report."""


@dataclass(frozen=True)
class Latency:
    """Per-inference latency of one run, in ms (one batch per inference)."""

    percentile: int  # which percentile ``percentile_ms`` is (50 = median)
    percentile_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float

    @property
    def median_ms(self) -> float | None:
        """The median, when the run reported it (no other percentile asked for)."""
        return self.percentile_ms if self.percentile == 50 else None


@dataclass(frozen=True)
class BappResult:
    """One benchmark_app run."""

    throughput_fps: float
    latency: Latency
    properties: dict[str, str] = field(default_factory=dict)  # compiled model (step 8)
    command: list[str] = field(default_factory=list)
    log: Path | None = None  # full output, kept when an ``out_dir`` was given
    report: dict = field(default_factory=dict)  # benchmark_app's benchmark_report.json


def benchmark_app_exe() -> str:
    """The venv's ``benchmark_app`` (next to this Python), else the one on PATH."""
    local = Path(sys.executable).parent / "benchmark_app"
    found = str(local) if local.is_file() else shutil.which("benchmark_app")
    if not found:
        raise BenchmarkAppError("benchmark_app not found: install openvino into the venv")
    return found


def input_shape(model_xml: Path, batch: int) -> list[int]:
    """``[batch, *rest]`` of the IR's single input (the rest must be static)."""
    import openvino as ov

    model = ov.Core().read_model(str(model_xml))
    if len(model.inputs) != 1:
        raise BenchmarkAppError(f"{model_xml}: expected 1 input, found {len(model.inputs)}")
    dims = list(model.inputs[0].get_partial_shape())[1:]
    if not all(d.is_static for d in dims):
        raise BenchmarkAppError(f"{model_xml}: input {model.inputs[0].get_partial_shape()} is not static "
                                "beyond the batch")
    return [batch, *(d.get_length() for d in dims)]


def benchmark_app_command(model_xml: Path, engine: EngineConfig, precision: str, seconds: float,
                          report_dir: Path, extra: Sequence[str] = (),
                          latency_percentile: int | None = None, cache_dir: Path | None = None) -> list[str]:
    """The command line; ``extra`` goes last (benchmark_app lets a later flag win)."""
    shape = input_shape(model_xml, engine.batch_size)
    layout = "NCHW" if len(shape) == 4 else "N" + "?" * (len(shape) - 1)
    cmd = [benchmark_app_exe(), "-m", str(model_xml), "-d", "CPU", "-hint", "none", "-api", "async",
           "-nstreams", str(engine.num_streams), "-nthreads", str(engine.num_threads),
           "-pin", "YES" if engine.pinning else "NO", "-nireq", str(engine.infer_requests),
           "-shape", f"[{','.join(map(str, shape))}]", "-layout", f"[{layout}]",
           "-infer_precision", precision, "-t", str(max(1, round(seconds))),
           "-report_type", "no_counters", "-json_stats", "-report_folder", str(report_dir)]
    if latency_percentile is not None:
        cmd += ["-latency_percentile", str(latency_percentile)]
    if cache_dir is not None:
        cmd += ["-cdir", str(cache_dir)]
    return cmd + list(extra)


_PROPERTY = re.compile(r"^\[ INFO \]\s{3}([A-Z][A-Z0-9_]*): (.*)$")
_TYPE_REPR = re.compile(r"^<Type: '(\w+)'>$")
_TYPE_NAMES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "uint8_t": "u8", "int8_t": "i8"}


def step8_properties(text: str) -> dict[str, str]:
    """The compiled-model properties benchmark_app prints in step 8, with types spelt like
    ``RunResult.compiled_properties`` (``f32``, not ``<Type: 'float32'>``)."""
    out: dict[str, str] = {}
    in_step8 = False
    for line in text.splitlines():
        if line.startswith("[Step "):
            in_step8 = line.startswith("[Step 8/")
        elif in_step8 and (m := _PROPERTY.match(line)):
            value = m.group(2).strip()
            t = _TYPE_REPR.match(value)
            out[m.group(1)] = _TYPE_NAMES.get(t.group(1), t.group(1)) if t else value
    return out


def parse_report(report: dict, percentile: int) -> tuple[float, Latency]:
    """Throughput and latency from ``benchmark_report.json``'s ``execution_results``."""
    res = report.get("execution_results") or {}
    if "error" in res:
        raise BenchmarkAppError(f"benchmark_app: {res['error']}")
    key = "latency (ms)" if percentile == 50 else f"latency ({percentile} percentile) (ms)"
    try:
        return float(res["throughput"]), Latency(percentile, float(res[key]), float(res["avg latency"]),
                                                  float(res["min latency"]), float(res["max latency"]))
    except (KeyError, ValueError) as exc:
        raise BenchmarkAppError(f"benchmark_app report lacks {exc}: {sorted(res)}") from None


def run_benchmark_app(model_xml: Path, engine: EngineConfig, precision: str, seconds: float,
                      extra: Sequence[str] = (), latency_percentile: int | None = None, *,
                      cache_dir: Path | None = None, out_dir: Path | None = None) -> BappResult:
    """Run benchmark_app for about ``seconds`` with ``engine``'s settings at ``precision``.

    ``cache_dir`` is OpenVINO's compiled-model cache (pass the harness's to share blobs);
    ``out_dir`` keeps the report and the full log (else a temporary directory is used).
    A non-zero exit or a missing report raises ``BenchmarkAppError`` with the last log line.
    """
    percentile = 50 if latency_percentile is None else latency_percentile
    with tempfile.TemporaryDirectory(prefix="bapp-") as tmp:
        report_dir = Path(out_dir) if out_dir is not None else Path(tmp)
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "benchmark_report.json").unlink(missing_ok=True)  # never read a stale one
        cmd = benchmark_app_command(Path(model_xml), engine, precision, seconds, report_dir, extra,
                                    latency_percentile, cache_dir)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_environment(),
                              timeout=10 * seconds + 600, check=False)
        log = report_dir / "benchmark_app.log"
        log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}")
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        if proc.returncode != 0:
            errors = [ln for ln in lines if "ERROR" in ln] or lines
            raise BenchmarkAppError(f"benchmark_app exit {proc.returncode}: "
                                    f"{errors[-1].strip() if errors else 'no output'}"
                                    + (f" (log: {log})" if out_dir is not None else ""))
        report_path = report_dir / "benchmark_report.json"
        if not report_path.is_file():
            raise BenchmarkAppError(f"benchmark_app wrote no {report_path.name}")
        report = json.loads(report_path.read_text())
        fps, latency = parse_report(report, percentile)
        return BappResult(fps, latency, step8_properties(proc.stdout), cmd,
                          log if out_dir is not None else None, report)
