"""Packaging finished runs into an MLPerf Inference round-v6.1 open-division tree, and checking one.

Layout written (benchmark folder ``resnet50``, which the checker maps to ``resnet``)::

    <out>/open/<Org>/systems/<system>.json
    <out>/open/<Org>/src/...                         git-tracked files of the project
    <out>/open/<Org>/results/<system>/resnet50/Offline/
        performance/run_1/mlperf_log_summary.txt, mlperf_log_detail.txt
        accuracy/mlperf_log_summary.txt, mlperf_log_detail.txt,
                 mlperf_log_accuracy.json (first and last 4 KiB), accuracy.txt (+ hash= line)
        measurements.json, user.conf, README.md

The accuracy log is cut and hashed the way the official ``truncate_accuracy_log.py``
does it: ``hash=<sha256 of the full file>`` is appended to accuracy.txt after a blank
line, and the log becomes its first 4096 bytes, ``\\n\\n...\\n\\n`` and its last 4096.

``package`` refuses (``SubmissionError``, one line naming the reason and the file) what
the official checker lets through or rejects: unfinished runs, an INVALID performance
run, non-official settings, LoadGen errors, runs of different models or engine settings,
and a system description missing a field. ``check_tree`` applies the same rules to a
tree on disk. ``allow_nonofficial`` (testing only) waives the settings rules and marks
the tree ``NOT_FOR_SUBMISSION``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from sut.errors import ConfigError, HarnessError
from sut.loadgen_logs import ACCURACY_LOG, DETAIL, SUMMARY, DetailLog, read_detail
from sut.profile import HOST, SystemProfile, physical_cores
from sut.runner import INCOMPLETE, OFFICIAL_ACCURACY_SAMPLES, OFFICIAL_MIN_DURATION_MS, RESULT_FILE, SCENARIO
from sut.userconf import builtin_mlperf_conf
from sut.system import (check_folder_name, describe_system, description_problems, distribution_version,
                        missing_fields)

log = logging.getLogger(__name__)

ROUND = "v6.1"
DIVISION = "open"
BENCHMARK_FOLDER = "resnet50"
MLPERF_MODEL = "resnet"  # the checker's name for the benchmark
_BENCHMARK_NAMES = ("resnet50", "resnet")
MIN_PERFORMANCE_SAMPLE_COUNT = 1024
MAX_ACCURACY_LOG_BYTES = 10 * 1024
TRUNCATE_KEEP_BYTES = 4096
TRUNCATE_SEPARATOR = b"\n\n...\n\n"
MAX_SOURCE_FILE_BYTES = 50 * 2**20  # the checker's per-file limit
NOT_FOR_SUBMISSION = "NOT_FOR_SUBMISSION.txt"
MEASUREMENT_KEYS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                    "weight_transformations")
SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")
# Card fields that identify the served model: two runs must agree on all of them.
MODEL_KEYS = ("source_sha256", "precision", "inference_precision", "name", "source", "calibration", "layout",
              "input_size", "mean", "std", "label_offset")
_ACCURACY_LINE = re.compile(r"^accuracy=([0-9.]+)%, good=(\d+), total=(\d+)\s*$")
_HASH_LINE = re.compile(r"^hash=([0-9a-fA-F]+)$")
_PROVENANCE = re.compile(r"## Provenance \(machine-readable\)\s*```json\n(.*?)\n```", re.S)
_OVERRIDE_FLAGS = {"min_duration_ms": "--min-duration-ms", "min_query_count": "--min-query-count",
                   "target_qps": "--target-qps", "performance_sample_count": "--performance-sample-count"}
_PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "int8": "int8"}


class SubmissionError(HarnessError):
    """A run or tree that must not be submitted; the message names the reason and the file."""


@dataclass(frozen=True)
class Problem:
    """One reason a run or tree cannot be submitted. ``settings``: waived by ``allow_nonofficial``."""

    path: Path
    message: str
    settings: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Packaged:
    """What ``package`` wrote."""

    tree: Path
    scenario_dir: Path
    system_json: Path
    official: bool
    waived: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- rules
@lru_cache(maxsize=1)
def builtin_seeds() -> dict[str, int]:
    """The round's seeds from the mlperf.conf compiled into the installed LoadGen."""
    import mlperf_loadgen

    try:
        conf = builtin_mlperf_conf().decode()
    except ConfigError as exc:
        raise SubmissionError(str(exc)) from None
    seeds = {m.group(1): int(m.group(2))
             for m in re.finditer(r"^\*\.\*\.(\w+_rng_seed)\s*=\s*(\d+)", conf, flags=re.M)}
    missing = [k for k in SEED_KEYS if k not in seeds]
    if missing:
        raise SubmissionError(f"{mlperf_loadgen.__file__}: built-in mlperf.conf sets no {missing}")
    return {k: seeds[k] for k in SEED_KEYS}


def _common_log_problems(detail: DetailLog, path: Path, test_mode: str, seeds: Mapping[str, int]) -> list[Problem]:
    out = [Problem(path, f"LoadGen error in the log: {e}") for e in detail.errors]
    if detail.get("effective_scenario") != SCENARIO:
        out.append(Problem(path, f"scenario is {detail.get('effective_scenario')!r}, not {SCENARIO}"))
    if detail.get("effective_test_mode") != test_mode:
        out.append(Problem(path, f"test mode is {detail.get('effective_test_mode')!r}, not {test_mode}"))
    for key in SEED_KEYS:
        found = detail.get(f"effective_{key}")
        if found != seeds[key]:
            out.append(Problem(path, f"{key} is {found}, not {seeds[key]} from LoadGen's built-in mlperf.conf "
                                     "(wrong LoadGen version for round " + ROUND + "?)", settings=True))
    return out


def performance_log_problems(detail: DetailLog, path: Path, seeds: Mapping[str, int] | None = None) -> list[Problem]:
    """The performance run's detail log: VALID, official duration and sample count, seeds, no errors."""
    out = _common_log_problems(detail, path, "PerformanceOnly", seeds or builtin_seeds())
    if detail.get("result_validity") != "VALID":
        out.append(Problem(path, f"performance run is {detail.get('result_validity') or 'without a result'}, "
                                 "not VALID"))
    duration = detail.get("effective_min_duration_ms") or 0
    if duration < OFFICIAL_MIN_DURATION_MS:
        out.append(Problem(path, f"min_duration {duration} ms < {OFFICIAL_MIN_DURATION_MS} ms", settings=True))
    count = detail.get("effective_performance_sample_count") or 0
    if count < MIN_PERFORMANCE_SAMPLE_COUNT:
        out.append(Problem(path, f"performance_sample_count {count} < {MIN_PERFORMANCE_SAMPLE_COUNT}",
                           settings=True))
    return out


def accuracy_log_problems(detail: DetailLog, path: Path, seeds: Mapping[str, int] | None = None) -> list[Problem]:
    """The accuracy run's detail log: all 50,000 samples, seeds, no errors."""
    out = _common_log_problems(detail, path, "AccuracyOnly", seeds or builtin_seeds())
    count = detail.get("effective_accuracy_sample_count", detail.get("qsl_reported_total_count"))
    if count != OFFICIAL_ACCURACY_SAMPLES:
        out.append(Problem(path, f"accuracy run over {count} samples, not {OFFICIAL_ACCURACY_SAMPLES:,}",
                           settings=True))
    return out


def parse_accuracy_txt(path: Path) -> tuple[tuple[float, int, int] | None, str | None]:
    """((top-1 %, good, total) or None, hash or None) from an accuracy.txt."""
    acc = digest = None
    for line in Path(path).read_text(errors="replace").splitlines():
        m = _ACCURACY_LINE.match(line)
        if m and acc is None:
            acc = (float(m.group(1)), int(m.group(2)), int(m.group(3)))
        h = _HASH_LINE.match(line)
        if h:
            digest = h.group(1)
    return acc, digest


def accuracy_txt_problems(path: Path, expected_total: Any, need_hash: bool) -> list[Problem]:
    """accuracy.txt: the reference result line, its total equal to the run's sample count, the hash."""
    if not path.is_file():
        return [Problem(path, "accuracy.txt missing")]
    acc, digest = parse_accuracy_txt(path)
    out = []
    if acc is None:
        out.append(Problem(path, "no 'accuracy=<p>%, good=<n>, total=<n>' line"))
    elif acc[2] != expected_total:
        out.append(Problem(path, f"total={acc[2]} but LoadGen ran {expected_total} accuracy samples"))
    if need_hash and digest is None:
        out.append(Problem(path, "no hash=<sha256 of the full accuracy log> line (accuracy log not truncated "
                                 "by the packager)"))
    elif need_hash and len(digest or "") != 64:
        out.append(Problem(path, f"hash={digest} is not a sha256"))
    elif not need_hash and digest is not None:
        out.append(Problem(path, "already has a hash= line: its accuracy log was truncated; package needs "
                                 "the full log"))
    return out


def accuracy_records_problems(path: Path, expected: Any) -> list[Problem]:
    """The full accuracy log: one record per accuracy sample, each sample once."""
    if not path.is_file():
        return [Problem(path, "accuracy log missing")]
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [Problem(path, f"not valid JSON at line {exc.lineno} (already truncated?)")]
    indices = {r.get("qsl_idx") for r in records if isinstance(r, dict)}
    if len(records) != expected or len(indices) != len(records):
        return [Problem(path, f"holds {len(records)} records for {len(indices)} samples, but LoadGen ran "
                              f"{expected} accuracy samples")]
    return []


def _card_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [k for k in MODEL_KEYS if a.get(k) != b.get(k)]


def consistency_problems(acc: Mapping[str, Any], perf: Mapping[str, Any], where: Path) -> list[Problem]:
    """Accuracy and performance runs must serve the same model with the same engine settings.

    ``acc``/``perf``: dicts with ``card``, ``engine``, ``inference_precision`` (result.json or provenance).
    """
    out = []
    diff = _card_diff(acc.get("card") or {}, perf.get("card") or {})
    if diff:
        k = diff[0]
        out.append(Problem(where, f"accuracy and performance runs used different models ({', '.join(diff)}: "
                                  f"{(acc.get('card') or {}).get(k)!r} vs {(perf.get('card') or {}).get(k)!r})"))
    if acc.get("engine") != perf.get("engine"):
        ea, ep = acc.get("engine") or {}, perf.get("engine") or {}
        keys = sorted(k for k in set(ea) | set(ep) if ea.get(k) != ep.get(k))
        out.append(Problem(where, "accuracy and performance runs used different engine settings ("
                           + ", ".join(f"{k}: {ea.get(k)!r} vs {ep.get(k)!r}" for k in keys) + ")"))
    if acc.get("inference_precision") != perf.get("inference_precision"):
        out.append(Problem(where, f"accuracy and performance runs compiled with different inference precision "
                                  f"({acc.get('inference_precision')!r} vs {perf.get('inference_precision')!r})"))
    return out


def user_conf_problems(user_conf: Path, perf_detail: DetailLog, perf_overrides: Mapping[str, Any]) -> list[Problem]:
    """user.conf must be the one the performance run read: its target_qps is the run's."""
    from sut.userconf import lookup, parse_user_conf

    if not user_conf.is_file() or not user_conf.read_text().strip():
        return [Problem(user_conf, "user.conf missing or empty")]
    try:
        conf = parse_user_conf(user_conf)
    except HarnessError as exc:
        return [Problem(user_conf, str(exc))]
    qps = lookup(conf, "resnet50", SCENARIO, "target_qps")
    effective = perf_detail.get("effective_target_qps")
    if "target_qps" not in perf_overrides and qps is not None and effective is not None \
            and abs(float(effective) - qps) > 1e-6 * max(qps, 1.0):
        return [Problem(user_conf, f"target_qps = {qps:g} but the performance run used {effective}: "
                                   "not the user.conf of that run")]
    return []


def measurements_problems(path: Path) -> list[Problem]:
    if not path.is_file():
        return [Problem(path, "measurements.json missing")]
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [Problem(path, f"invalid JSON at line {exc.lineno}")]
    return [Problem(path, f"field {k!r} is missing or empty") for k in MEASUREMENT_KEYS if not data.get(k)]


# ----------------------------------------------------------------------------- runs
def _load_run(run_dir: Path, kind: str) -> tuple[dict[str, Any], DetailLog]:
    """result.json and detail log of a finished run; anything else is refused at once."""
    if (run_dir / INCOMPLETE).exists():
        raise SubmissionError(f"{run_dir / INCOMPLETE}: the {kind} run is incomplete (interrupted or "
                              "unchecked); rerun it")
    path = run_dir / RESULT_FILE
    if not path.is_file():
        raise SubmissionError(f"{path}: missing: no finished {kind} run here")
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path}:{exc.lineno}: invalid JSON") from None
    if result.get("status") != "ok":
        why = f" ({result['error']})" if result.get("error") else ""
        raise SubmissionError(f"{path}: {kind} run status is {result.get('status')!r}{why}, not 'ok'")
    if result.get("mode") != kind:
        raise SubmissionError(f"{path}: mode is {result.get('mode')!r}, expected {kind!r}")
    if result.get("scenario") != SCENARIO or result.get("benchmark") != "resnet50":
        raise SubmissionError(f"{path}: {result.get('benchmark')} {result.get('scenario')} run, expected "
                              f"resnet50 {SCENARIO}")
    for name in (SUMMARY, DETAIL):
        if not (run_dir / name).is_file() or not (run_dir / name).stat().st_size:
            raise SubmissionError(f"{run_dir / name}: missing or empty")
    try:
        detail = read_detail(run_dir)
    except HarnessError as exc:
        raise SubmissionError(str(exc)) from None
    return result, detail


def _run_identity(result: Mapping[str, Any]) -> dict[str, Any]:
    card = result.get("card") or {}
    return {"card": {k: card.get(k) for k in MODEL_KEYS},
            "engine": (result.get("profile") or {}).get("engine"),
            "inference_precision": result.get("inference_precision"),
            "profile": (result.get("profile") or {}).get("name"),
            "overrides": result.get("overrides") or {}}


def _environment_problems(acc: Mapping[str, Any], perf: Mapping[str, Any], acc_detail: DetailLog,
                          perf_detail: DetailLog, where: Path) -> list[Problem]:
    """The system description is taken from this environment: it must be the one the runs used."""
    out = []
    installed_lg = distribution_version("mlcommons-loadgen", "mlcommons_loadgen")
    for kind, detail in (("accuracy", acc_detail), ("performance", perf_detail)):
        version = str(detail.get("loadgen_version") or "").split(" ")[0]
        if installed_lg and version and version != installed_lg:
            out.append(Problem(where, f"the {kind} run used LoadGen {version} but {installed_lg} is installed: "
                                      "package in the environment that ran the tests"))
    for kind, result in (("accuracy", acc), ("performance", perf)):
        prof = result.get("profile") or {}
        if prof.get("name") == HOST and prof.get("cores") != physical_cores():
            out.append(Problem(where, f"the {kind} run's host profile had {prof.get('cores')} cores but this "
                                      f"machine has {physical_cores()}: package on the machine that ran the tests"))
    installed_ov = distribution_version("openvino")
    for kind, result in (("accuracy", acc), ("performance", perf)):
        req = str((result.get("compiled_properties") or {}).get("RUNTIME_REQUIREMENTS", ""))
        m = re.search(r"\bov=([^;]+)", req)
        if installed_ov and m and m.group(1) != installed_ov:
            out.append(Problem(where, f"the {kind} run used OpenVINO {m.group(1)} but {installed_ov} is "
                                      "installed: package in the environment that ran the tests"))
    return out


# ----------------------------------------------------------------------------- writing
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def truncate_accuracy_log(src: Path, dst_log: Path, src_txt: Path, dst_txt: Path) -> str:
    """Copy accuracy.txt with ``hash=`` appended and the accuracy log cut to its first and last 4 KiB.

    Same result as the official ``truncate_accuracy_log.py``; a log under 4 KiB is copied whole.
    Returns the sha256 of the full log.
    """
    digest = sha256_file(src)
    data = Path(src).read_bytes()
    if len(data) >= TRUNCATE_KEEP_BYTES:
        data = data[:TRUNCATE_KEEP_BYTES] + TRUNCATE_SEPARATOR + data[-TRUNCATE_KEEP_BYTES:]
    Path(dst_log).write_bytes(data)
    Path(dst_txt).write_text(Path(src_txt).read_text() + f"\nhash={digest}\n")
    return digest


def measurements_from_card(card: Mapping[str, Any]) -> dict[str, str]:
    """measurements.json from the model card (our served IR always takes uint8 images)."""
    precision = card.get("precision", "")
    rest = _PRECISION_NAMES.get(card.get("inference_precision", ""), card.get("inference_precision", ""))
    source = card.get("source") or ""
    weights = f"{source} (sha256 {card['source_sha256']})" if source and card.get("source_sha256") else source
    conversion = ("converted to OpenVINO IR; weights unchanged; the mean/std normalisation is an input "
                  "preprocessing step inside the model")
    if precision == "int8":
        cal = card.get("calibration") or {}
        cal_text = ", ".join(x for x in (
            f"preset {cal['preset']}" if cal.get("preset") else "",
            f"{cal['images']} calibration images" if cal.get("images") else "",
            f"list {Path(str(cal['list'])).name} (sha256 {cal.get('list_sha256', '?')})" if cal.get("list") else "",
        ) if x)
        transformations = (f"post-training INT8 quantization with NNCF ({cal_text}); layers left in float run "
                           f"in {rest}; converted to OpenVINO IR; no retraining")
        weight_types = f"int8, {rest}" if rest else "int8"
    elif precision == "bf16":
        transformations = conversion + "; executed in bf16 (INFERENCE_PRECISION_HINT bf16)"
        weight_types = "bf16"
    else:
        transformations = conversion
        weight_types = _PRECISION_NAMES.get(precision, precision)
    return {"input_data_types": "uint8", "retraining": "No", "starting_weights_filename": weights,
            "weight_data_types": weight_types, "weight_transformations": transformations}


def _git(src_root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read only: never touch the index
    try:
        return subprocess.run(["git", "-C", str(src_root), *args], capture_output=True, check=True,
                              env=env, timeout=60).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        raise SubmissionError(f"{src_root}: not a git work tree (git {' '.join(args)} failed)") from None


def tracked_files(src_root: Path) -> list[str]:
    """Paths of the git-tracked files that exist in the work tree (no data, no venv, no results)."""
    names = [n for n in _git(src_root, "ls-files", "-z", "--cached").split("\0") if n]
    return sorted(n for n in names if (Path(src_root) / n).is_file())


def copy_sources(src_root: Path, dst: Path) -> dict[str, Any]:
    """Copy the git-tracked files of ``src_root`` to ``dst``; return the commit and modified files."""
    src_root = Path(src_root)
    files = tracked_files(src_root)
    if not files:
        raise SubmissionError(f"{src_root}: no git-tracked files to put under src/")
    for name in files:
        size = (src_root / name).stat().st_size
        if size > MAX_SOURCE_FILE_BYTES:
            raise SubmissionError(f"{src_root / name}: {size / 2**20:.0f} MiB, over the checker's 50 MiB file limit")
    if dst.exists():
        shutil.rmtree(dst)
    for name in files:
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_root / name, target, follow_symlinks=True)
    head = _git(src_root, "rev-parse", "HEAD").strip()
    modified = [n for n in _git(src_root, "diff", "--name-only", "HEAD").splitlines() if n]
    untracked = [n for n in _git(src_root, "ls-files", "--others", "--exclude-standard").splitlines() if n]
    if untracked:
        log.warning("%s: untracked files are not put under src/: %s", src_root, ", ".join(untracked))
    return {"commit": head, "modified": modified, "untracked": untracked, "files": len(files)}


def _command_lines(acc: Mapping[str, Any], perf: Mapping[str, Any], package_command: str | None) -> list[str]:
    """The commands that produced the runs: recorded ones when the runs carry them, else rebuilt."""
    card = perf.get("card") or {}
    lines = []
    if not (acc.get("command") and perf.get("command")):
        prep = ["mlperf-cpu prepare", f"--model <path to {card.get('source') or 'the source model'}>",
                f"--precision {card.get('precision')}"]
        if card.get("precision") == "int8":
            cal = card.get("calibration") or {}
            if card.get("inference_precision") != "f32":
                prep.append(f"--int8-rest {card.get('inference_precision')}")
            prep += [f"--calib-list {cal.get('list', '<calibration list>')}", "--calib-dir <calibration images>"]
            if cal.get("subset_size") and cal.get("images") and cal["subset_size"] < cal["images"]:
                prep.append(f"--calib-subset {cal['subset_size']}")
            if cal.get("preset") and cal["preset"] != "performance":
                prep.append(f"--calib-preset {cal['preset']}")
        if card.get("layout") and card["layout"] != "NCHW":
            prep.append(f"--layout {card['layout']}")
        lines.append(" ".join(prep))
    for result in (acc, perf):
        command = result.get("command")
        if command:
            lines.append(command if isinstance(command, str) else " ".join(command))
            continue
        parts = ["mlperf-cpu run", f"--mode {result.get('mode')}", "--model <prepared model directory>",
                 "--dataset <ImageNet 2012 val directory>", f"--system {(result.get('profile') or {}).get('name')}",
                 f"--user-conf {result.get('user_conf', 'user.conf')}"]
        for key, value in sorted((result.get("overrides") or {}).items()):
            parts.append(f"{_OVERRIDE_FLAGS.get(key, key)} {value:g}" if isinstance(value, float)
                         else f"{_OVERRIDE_FLAGS.get(key, key)} {value}")
        lines.append(" ".join(parts))
    if package_command:
        lines.append(package_command)
    return lines


def _readme(system_name: str, model_label: str, acc: Mapping[str, Any], perf: Mapping[str, Any],
            acc_detail: DetailLog, perf_detail: DetailLog, desc: Mapping[str, Any], git: Mapping[str, Any],
            provenance: Mapping[str, Any], waived: list[str], package_command: str | None) -> str:
    card = perf.get("card") or {}
    engine = (perf.get("profile") or {}).get("engine") or {}
    accuracy = acc.get("accuracy") or {}
    lines = []
    if waived:
        lines += ["# NOT FOR SUBMISSION", "",
                  "Packaged with `--allow-nonofficial` for testing. Waived rules:", ""]
        lines += [f"- {w}" for w in waived] + [""]
    lines += [f"# {model_label} on {system_name}: MLPerf Inference {ROUND}, open division, "
              f"{BENCHMARK_FOLDER} {SCENARIO}", "",
              f"- Performance: {perf_detail.get('result_samples_per_second')} samples/s, "
              f"{perf_detail.get('result_validity')} (min_duration {perf_detail.get('effective_min_duration_ms')} ms, "
              f"target_qps {perf_detail.get('effective_target_qps')})",
              f"- Accuracy: top-1 {accuracy.get('top1_percent')} % ({accuracy.get('good')}/{accuracy.get('total')} "
              f"samples)",
              f"- Model: {card.get('name')}, {card.get('precision')} weights, non-quantized layers in "
              f"{card.get('inference_precision')}; source {card.get('source')} (sha256 {card.get('source_sha256')})",
              f"- Engine: OpenVINO CPU plugin, {engine.get('num_streams')} streams, {engine.get('num_threads')} "
              f"threads, {engine.get('infer_requests')} infer requests, batch {engine.get('batch_size')}, "
              f"pinning {'on' if engine.get('pinning') else 'off'}, INFERENCE_PRECISION_HINT "
              f"{perf.get('inference_precision')}",
              f"- Software: {desc.get('framework')}; {desc.get('other_software_stack')}",
              f"- Code: `src/` holds the harness's git-tracked files at commit {git.get('commit')}"
              + (f" with local changes to {', '.join(git['modified'])}" if git.get("modified") else "")
              + (f"; untracked files not included: {', '.join(git['untracked'])}" if git.get("untracked") else ""),
              "",
              "## How to reproduce", "",
              "From `src/` (install with `pip install -e .`), on the same system profile:", "", "```sh"]
    lines += _command_lines(acc, perf, package_command)
    lines += ["```", "",
              "Words in `<>` were not recorded by the runs. The LoadGen settings are `user.conf` next to this "
              "file plus the mlperf.conf built into LoadGen "
              f"{str(perf_detail.get('loadgen_version') or '').split(' ')[0]}.", "",
              "## Provenance (machine-readable)", "", "```json",
              json.dumps(provenance, indent=2, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)


def _write_marker(directory: Path, waived: list[str]) -> None:
    path = directory / NOT_FOR_SUBMISSION
    old = path.read_text() if path.is_file() else \
        "This tree was packaged with --allow-nonofficial for testing. Do not submit it.\n\n"
    path.write_text(old + "".join(f"- {w}\n" for w in waived))


# ----------------------------------------------------------------------------- package
def package(results_dir: Path, system_profile_name: str, model_label: str, org: str, out_tree: Path,
            src_root: Path, *, system_name: str | None = None, profile: SystemProfile | None = None,
            system_overrides: Mapping[str, Any] | None = None, user_conf: Path | None = None,
            benchmark_folder: str = BENCHMARK_FOLDER, allow_nonofficial: bool = False, replace: bool = False,
            package_command: str | None = None) -> Packaged:
    """Build ``<out_tree>/open/<org>/...`` from ``results/<profile>/<model_label>/Offline``.

    Raises ``SubmissionError`` naming the first reason the runs cannot be submitted
    (every reason is logged). ``profile`` (default: loaded by name) supplies the
    ``system:`` fields of the description; ``system_overrides`` win over it.
    """
    from sut.profile import load_profile

    check_folder_name("submitter", org)
    system_name = check_folder_name("system name", system_name or system_profile_name)
    check_folder_name("benchmark folder", benchmark_folder)
    results_dir, out_tree, src_root = Path(results_dir), Path(out_tree), Path(src_root)
    scenario = results_dir / system_profile_name / model_label / SCENARIO
    if not scenario.is_dir():
        raise SubmissionError(f"{scenario}: no runs for system {system_profile_name!r} and model {model_label!r}")
    acc_dir, perf_dir = scenario / "accuracy", scenario / "performance" / "run_1"
    for run_dir, kind in ((acc_dir, "accuracy"), (perf_dir, "performance")):
        if not run_dir.is_dir():
            raise SubmissionError(f"{run_dir}: no {kind} run")
    acc, acc_detail = _load_run(acc_dir, "accuracy")
    perf, perf_detail = _load_run(perf_dir, "performance")
    seeds = builtin_seeds()

    problems: list[Problem] = []
    problems += performance_log_problems(perf_detail, perf_dir / DETAIL, seeds)
    problems += accuracy_log_problems(acc_detail, acc_dir / DETAIL, seeds)
    for run_dir, result in ((acc_dir, acc), (perf_dir, perf)):
        if result.get("overrides"):
            problems.append(Problem(run_dir / RESULT_FILE, f"run used non-official command-line settings "
                                                           f"{result['overrides']}", settings=True))
    acc_count = acc_detail.get("effective_accuracy_sample_count", acc_detail.get("qsl_reported_total_count"))
    problems += accuracy_txt_problems(acc_dir / "accuracy.txt", acc_count, need_hash=False)
    problems += accuracy_records_problems(acc_dir / ACCURACY_LOG, acc_count)
    problems += consistency_problems(_run_identity(acc), _run_identity(perf), scenario)
    problems += _environment_problems(acc, perf, acc_detail, perf_detail, scenario)
    if acc.get("user_conf") != perf.get("user_conf"):
        problems.append(Problem(scenario, f"runs read different user.conf files ({acc.get('user_conf')} vs "
                                          f"{perf.get('user_conf')})"))
    conf_path = _resolve_user_conf(user_conf, perf, results_dir)
    problems += user_conf_problems(conf_path, perf_detail, perf.get("overrides") or {})
    for run_dir, result in ((acc_dir, acc), (perf_dir, perf)):  # recorded by runners that hash user.conf
        recorded = result.get("user_conf_sha256")
        if recorded and conf_path.is_file() and recorded != sha256_file(conf_path):
            problems.append(Problem(conf_path, f"differs from the user.conf the run in {run_dir} read "
                                               "(sha256 in its result.json)"))

    if profile is None:
        profile = load_profile(system_profile_name, check_fits=False)
    desc = describe_system(profile, org, system_overrides)
    system_json = out_tree / DIVISION / org / "systems" / f"{system_name}.json"
    missing = missing_fields(desc)
    if missing:
        problems.append(Problem(system_json, f"system description lacks {', '.join(missing)} (not readable on this "
                                             "machine: set it in the profile's 'system:' mapping or with --set "
                                             "KEY=VALUE)"))
    problems += [Problem(system_json, p) for p in description_problems(desc, DIVISION, org)
                 if not p.startswith("field ")]
    measurements = measurements_from_card(perf.get("card") or {})
    problems += [Problem(perf_dir / RESULT_FILE, f"model card gives no {k} for measurements.json")
                 for k in MEASUREMENT_KEYS if not measurements[k]]

    dest = out_tree / DIVISION / org / "results" / system_name / benchmark_folder / SCENARIO
    if dest.exists() and not replace:
        problems.append(Problem(dest, "already packaged (pass replace to overwrite)"))
    new_system = json.dumps(desc, indent=4) + "\n"
    if system_json.is_file() and system_json.read_text() != new_system and not replace:
        problems.append(Problem(system_json, "exists with a different description (pass replace to overwrite)"))

    hard = [p for p in problems if not (p.settings and allow_nonofficial)]
    waived = [str(p) for p in problems if p.settings and allow_nonofficial]
    for p in problems:
        log.warning("%s%s", "(waived) " if p.settings and allow_nonofficial else "", p)
    if hard:
        more = f" (and {len(hard) - 1} more problem{'s' if len(hard) > 2 else ''})" if len(hard) > 1 else ""
        raise SubmissionError(f"{hard[0]}{more}")

    # Everything checked: write. The scenario folder is built aside and moved in whole.
    org_dir = out_tree / DIVISION / org
    org_dir.mkdir(parents=True, exist_ok=True)
    git = copy_sources(src_root, org_dir / "src")
    system_json.parent.mkdir(parents=True, exist_ok=True)
    system_json.write_text(new_system)
    if benchmark_folder not in _BENCHMARK_NAMES:
        mapping_path = org_dir / "model_mapping.json"
        mapping = json.loads(mapping_path.read_text()) if mapping_path.is_file() else {}
        mapping[benchmark_folder] = MLPERF_MODEL
        mapping_path.write_text(json.dumps(mapping, indent=4, sort_keys=True) + "\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".packaging-", dir=dest.parent))
    try:
        (tmp / "performance" / "run_1").mkdir(parents=True)
        (tmp / "accuracy").mkdir()
        for name in (SUMMARY, DETAIL):
            shutil.copy2(perf_dir / name, tmp / "performance" / "run_1" / name)
            shutil.copy2(acc_dir / name, tmp / "accuracy" / name)
        digest = truncate_accuracy_log(acc_dir / ACCURACY_LOG, tmp / "accuracy" / ACCURACY_LOG,
                                       acc_dir / "accuracy.txt", tmp / "accuracy" / "accuracy.txt")
        (tmp / "measurements.json").write_text(json.dumps(measurements, indent=4) + "\n")
        shutil.copyfile(conf_path, tmp / "user.conf")
        provenance = {"harness": "mlperf-cpu", "round": ROUND, "division": DIVISION,
                      "benchmark_folder": benchmark_folder, "system_profile": system_profile_name,
                      "model_label": model_label, "official": not waived, "waived": waived,
                      "accuracy": _run_identity(acc), "performance": _run_identity(perf),
                      "accuracy_log_sha256": digest, "user_conf_sha256": sha256_file(conf_path),
                      "git": {k: git[k] for k in ("commit", "modified", "untracked")}}
        (tmp / "README.md").write_text(_readme(system_name, model_label, acc, perf, acc_detail, perf_detail, desc,
                                               git, provenance, waived, package_command))
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if waived:
        _write_marker(out_tree, waived)
        _write_marker(org_dir, waived)
        log.warning("tree marked %s: %s", NOT_FOR_SUBMISSION, out_tree / NOT_FOR_SUBMISSION)
    log.info("packaged %s", dest)
    return Packaged(out_tree, dest, system_json, official=not waived, waived=waived)


def _resolve_user_conf(explicit: Path | None, perf: Mapping[str, Any], results_dir: Path) -> Path:
    """The user.conf the runs read: explicit, else result.json's path (absolute, or from the cwd / results' parent)."""
    if explicit is not None:
        return Path(explicit)
    recorded = Path(str(perf.get("user_conf") or "user.conf"))
    for candidate in (recorded, Path.cwd() / recorded, results_dir.resolve().parent / recorded):
        if candidate.is_file():
            return candidate
    raise SubmissionError(f"{recorded}: the user.conf the runs read (as recorded in result.json) is not found "
                          "here; pass it explicitly")


# ----------------------------------------------------------------------------- check
def _read_provenance(readme: Path) -> dict[str, Any] | None:
    m = _PROVENANCE.search(readme.read_text(errors="replace")) if readme.is_file() else None
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except json.JSONDecodeError:
        return None


def _check_scenario(scen: Path, seeds: Mapping[str, int]) -> list[Problem]:
    out: list[Problem] = []
    perf_dir, acc_dir = scen / "performance" / "run_1", scen / "accuracy"
    required = [perf_dir / SUMMARY, perf_dir / DETAIL, acc_dir / SUMMARY, acc_dir / DETAIL, acc_dir / "accuracy.txt",
                acc_dir / ACCURACY_LOG, scen / "measurements.json", scen / "user.conf", scen / "README.md"]
    for path in required:
        if not path.is_file() or not path.stat().st_size:
            out.append(Problem(path, "missing or empty"))
    perf_detail = acc_detail = None
    if (perf_dir / DETAIL).is_file():
        perf_detail = read_detail(perf_dir)
        out += performance_log_problems(perf_detail, perf_dir / DETAIL, seeds)
    if (acc_dir / DETAIL).is_file():
        acc_detail = read_detail(acc_dir)
        out += accuracy_log_problems(acc_detail, acc_dir / DETAIL, seeds)
        count = acc_detail.get("effective_accuracy_sample_count", acc_detail.get("qsl_reported_total_count"))
        if (acc_dir / "accuracy.txt").is_file():
            out += accuracy_txt_problems(acc_dir / "accuracy.txt", count, need_hash=True)
    log_path = acc_dir / ACCURACY_LOG
    if log_path.is_file() and log_path.stat().st_size > MAX_ACCURACY_LOG_BYTES:
        out.append(Problem(log_path, f"not truncated ({log_path.stat().st_size} bytes > {MAX_ACCURACY_LOG_BYTES})"))
    if (scen / "measurements.json").is_file():
        out += measurements_problems(scen / "measurements.json")
    provenance = _read_provenance(scen / "README.md")
    if provenance is None:
        out.append(Problem(scen / "README.md", "no machine-readable provenance block: cannot verify that both "
                                               "runs served the same model"))
    else:
        out += consistency_problems(provenance.get("accuracy") or {}, provenance.get("performance") or {},
                                    scen / "README.md")
        if not provenance.get("official", False):
            out.append(Problem(scen / "README.md", "packaged with --allow-nonofficial: not for submission"))
        for kind in ("accuracy", "performance"):
            overrides = (provenance.get(kind) or {}).get("overrides")
            if overrides:
                out.append(Problem(scen / "README.md", f"{kind} run used non-official command-line settings "
                                                       f"{overrides}", settings=True))
        if perf_detail is not None and (scen / "user.conf").is_file():
            out += user_conf_problems(scen / "user.conf", perf_detail,
                                      (provenance.get("performance") or {}).get("overrides") or {})
    return out


def check_tree(tree: Path) -> list[str]:
    """Every reason the tree at ``tree`` cannot be submitted, as ``path: message`` strings; [] = OK."""
    tree = Path(tree)
    if not tree.is_dir():
        return [f"{tree}: not a directory"]
    seeds = builtin_seeds()
    out: list[Problem] = []
    for marker in [tree / NOT_FOR_SUBMISSION, *tree.glob(f"*/*/{NOT_FOR_SUBMISSION}")]:
        if marker.is_file():
            out.append(Problem(marker, "tree is marked not for submission"))
    divisions = [d for d in ("open", "closed", "network") if (tree / d).is_dir()]
    if not divisions:
        out.append(Problem(tree, "no open/ division folder"))
    for division in divisions:
        if division != DIVISION:
            out.append(Problem(tree / division, f"{division} division: this harness packages open division only"))
            continue
        for org_dir in sorted(p for p in (tree / division).iterdir() if p.is_dir()):
            out += _check_submitter(org_dir, seeds)
    return [str(p) for p in out]


def _check_submitter(org_dir: Path, seeds: Mapping[str, int]) -> list[Problem]:
    out: list[Problem] = []
    src = org_dir / "src"
    if not src.is_dir() or not any(src.iterdir()):
        out.append(Problem(src, "src directory missing or empty"))
    mapping: dict[str, Any] = {}
    if (org_dir / "model_mapping.json").is_file():
        try:
            mapping = json.loads((org_dir / "model_mapping.json").read_text())
        except json.JSONDecodeError:
            out.append(Problem(org_dir / "model_mapping.json", "invalid JSON"))
    results = org_dir / "results"
    systems = [p for p in sorted(results.iterdir()) if p.is_dir()] if results.is_dir() else []
    if not systems:
        out.append(Problem(results, "no results"))
    for system in systems:
        sys_json = org_dir / "systems" / f"{system.name}.json"
        if not sys_json.is_file():
            out.append(Problem(sys_json, "system description missing"))
        else:
            try:
                desc = json.loads(sys_json.read_text())
                out += [Problem(sys_json, p) for p in description_problems(desc, org_dir.parent.name, org_dir.name)]
            except json.JSONDecodeError as exc:
                out.append(Problem(sys_json, f"invalid JSON at line {exc.lineno}"))
        for bench in sorted(p for p in system.iterdir() if p.is_dir()):
            if bench.name not in _BENCHMARK_NAMES and mapping.get(bench.name) not in _BENCHMARK_NAMES:
                out.append(Problem(bench, "not resnet50 (and not mapped to resnet in model_mapping.json)"))
                continue
            for scen in sorted(p for p in bench.iterdir() if p.is_dir()):
                if scen.name != SCENARIO:
                    out.append(Problem(scen, f"scenario {scen.name}: this harness submits {SCENARIO} only"))
                    continue
                out += _check_scenario(scen, seeds)
    return out
