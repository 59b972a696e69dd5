"""The one set of submission rules: what makes a run, or a pair of runs, submittable.

The runner calls ``run_problems`` to say whether a run is ``submittable``; ``package``
calls the same function on the same run before it will take it, and ``check`` applies
the log-level rules to a tree on disk. So a run says ``submittable`` exactly when
``package`` would take it, and both give the same reason when it would not.

Each official number is defined here and nowhere else. A ``Problem`` marked
``settings`` is about non-official settings (short runs, fewer samples, overrides):
``package --allow-nonofficial`` may waive those for testing, and marks the tree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from common.errors import ConfigError, HarnessError, SubmissionError
from common.loadgen_conf import builtin_mlperf_conf, lookup, parse_user_conf
from common.resources import shipped
from common.testspec import BENCHMARK, Mode, Scenario
from records.accuracy import ACCURACY_TXT
from records.loadgen_logs import ACCURACY_LOG, DETAIL, DetailLog
from modelprep.card import ModelCard
from records.results import RESULT_FILE, RunResult, invalid_reasons

ROUND = "v6.1"
DIVISIONS = ("open", "closed")
OFFICIAL_MIN_DURATION_MS = 600_000
OFFICIAL_ACCURACY_SAMPLES = 50_000
MIN_PERFORMANCE_SAMPLE_COUNT = 1024
SERVER_LATENCY_BOUND_NS = 15_000_000
# Closed division: 99 % of the FP32 reference top-1 (76.46 %), and the official calibration lists.
REFERENCE_TOP1 = 76.46
CLOSED_ACCURACY_FRACTION = 0.99
OFFICIAL_CALIBRATION_SHA256 = {
    "7662247d1d9407d6cb564268f64c5a4a6cf9f1a34fd2e6cdc3b94dcf278b3dc9": "cal_image_list_option_1.txt",
    "11ce810122226ec0ca8c56e47ee356e3c1185f3c6ce8262edb50c3c1d0a9705e": "cal_image_list_option_2.txt",
}
REFERENCE_MODELS_FILE = shipped("configs/reference_models.yaml")
# Which scenarios each system category must submit (the checker's required-scenarios tables).
CATEGORY_SCENARIOS = {
    "edge": (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM, Scenario.OFFLINE),
    "datacenter,edge": (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM, Scenario.OFFLINE, Scenario.SERVER),
}
COMPLIANCE_TESTS = (Mode.TEST01, Mode.TEST04)
COCO_CALIBRATION_SHA256 = {  # calibration/COCO/coco_cal_images_list.txt (500 train2017 names)
    "ca6f97a9e49db992d18bf01dc98d7b164c5f57c0ce2553c45365ca8445bec559": "coco_cal_images_list.txt"}


@dataclass(frozen=True)
class BenchmarkRules:
    """The round's numbers for one benchmark, keyed by its LoadGen model name (``RunResult.benchmark``).

    ``folders``: the results-tree folder names the checker knows, each with its closed-division
    accuracy fraction (``yolo-99``: 99 % of the reference mAP, ``yolo-95``: 95 %).
    """

    model: str
    metric: str  # the checker's accuracy metric name: "acc" (top-1) or "mAP"
    reference: float  # the FP32 reference accuracy in percent
    folders: Mapping[str, float]
    accuracy_samples: int
    performance_samples: int
    compliance: tuple[Mode, ...]
    calibration_sha256: Mapping[str, str]

    @property
    def default_folder(self) -> str:
        """The folder packaging uses unless told otherwise (the strictest target)."""
        return max(self.folders, key=lambda name: self.folders[name])

    def required_scenarios(self, category: str) -> tuple[Scenario, ...]:
        """The scenarios a closed entry of a ``category`` system needs (yolo has no Server in v6.1)."""
        needed = CATEGORY_SCENARIOS[category]
        return needed if self.model == BENCHMARK else tuple(s for s in needed if s is not Scenario.SERVER)

    def target(self, folder: str | None = None) -> float:
        """The closed-division accuracy target of ``folder`` (default: ``default_folder``), in percent."""
        return self.reference * self.folders.get(folder or self.default_folder, max(self.folders.values()))


BENCHMARKS = {
    "resnet50": BenchmarkRules("resnet50", "acc", REFERENCE_TOP1, {"resnet50": CLOSED_ACCURACY_FRACTION},
                               OFFICIAL_ACCURACY_SAMPLES, MIN_PERFORMANCE_SAMPLE_COUNT, COMPLIANCE_TESTS,
                               OFFICIAL_CALIBRATION_SHA256),
    # YOLOv11-L on the 1,525-image licence-safe COCO val2017 subset; reference mAP 53.4; TEST01 only.
    "yolo": BenchmarkRules("yolo", "mAP", 53.4, {"yolo-99": 0.99, "yolo-95": 0.95}, 1525, 64, (Mode.TEST01,),
                           COCO_CALIBRATION_SHA256),
}


def benchmark_rules(model: str) -> BenchmarkRules:
    """The rules of LoadGen model ``model`` (``resnet50`` or ``yolo``)."""
    if model not in BENCHMARKS:
        raise ConfigError(f"benchmark {model!r}: this harness knows {', '.join(BENCHMARKS)}")
    return BENCHMARKS[model]


def rules_for_folder(folder: str, mapping: Mapping[str, Any] | None = None) -> BenchmarkRules | None:
    """The benchmark a results-tree folder holds: a checker name (``resnet50``, ``resnet``,
    ``yolo-99``, ``yolo-95``) or one that ``model_mapping.json`` maps to such a name."""
    for name in (folder, (mapping or {}).get(folder)):
        if name in ("resnet", "resnet50"):
            return BENCHMARKS["resnet50"]
        for rules in BENCHMARKS.values():
            if name in rules.folders:
                return rules
    return None


def performance_sample_count(model: str) -> int:
    """The round's performance sample count of a LoadGen model (``resnet50`` 1024, ``yolo`` 64)."""
    return BENCHMARKS[model].performance_samples if model in BENCHMARKS else MIN_PERFORMANCE_SAMPLE_COUNT
SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")
MEASUREMENT_KEYS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                    "weight_transformations")
_TEST_MODES = {Mode.ACCURACY: "AccuracyOnly", Mode.PERFORMANCE: "PerformanceOnly",
               Mode.TEST01: "PerformanceOnly", Mode.TEST04: "PerformanceOnly"}
_ACCURACY_LINE = re.compile(r"^accuracy=([0-9.]+)%, good=(\d+), total=(\d+)\s*$")
_MAP_LINE = re.compile(r"^mAP=([0-9.]+)%\s*$")
_MAP_IMAGES_LINE = re.compile(r"^found (\d+) images\s*$")
_HASH_LINE = re.compile(r"^hash=([0-9a-fA-F]+)$")


@dataclass(frozen=True)
class Problem:
    """One reason a run or tree cannot be submitted. ``settings``: waivable by ``allow_nonofficial``."""

    path: Path
    message: str
    settings: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@lru_cache(maxsize=1)
def builtin_seeds() -> dict[str, int]:
    """The round's seeds from the mlperf.conf compiled into the installed LoadGen."""
    try:
        conf = builtin_mlperf_conf().decode()
    except ConfigError as exc:
        raise SubmissionError(str(exc)) from None
    seeds = {m.group(1): int(m.group(2))
             for m in re.finditer(r"^\*\.\*\.(\w+_rng_seed)\s*=\s*(\d+)", conf, flags=re.M)}
    missing = [k for k in SEED_KEYS if k not in seeds]
    if missing:
        raise SubmissionError(f"LoadGen's built-in mlperf.conf sets no {missing}")
    return {k: seeds[k] for k in SEED_KEYS}


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a tampered file's value may be anything, of any size."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _number(detail: DetailLog, key: str, path: Path, out: list[Problem]) -> int | float | None:
    """The detail-log value ``key`` if it is a number; None if absent. A value of another type
    (a string, a list, true/false) is listed in ``out`` as a problem naming the file and key."""
    value = detail.get(key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    out.append(Problem(path, f"{key} is {show(value)} (a JSON {_json_type(value)}), not a number"))
    return None


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    names = {bool: "boolean", str: "string", list: "array", dict: "object", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def accuracy_sample_count(detail: DetailLog) -> Any:
    """How many samples an accuracy run covered, as LoadGen logged it."""
    return detail.get("effective_accuracy_sample_count", detail.get("qsl_reported_total_count"))


# ----------------------------------------------------------------------------- log-level rules
def log_problems(detail: DetailLog, path: Path, mode: Mode, scenario: Scenario,
                 seeds: Mapping[str, int] | None = None, benchmark: str = BENCHMARK) -> list[Problem]:
    """Rules on one detail log alone (what ``check`` can verify on a packaged tree)."""
    seeds = seeds or builtin_seeds()
    rules = benchmark_rules(benchmark)
    out = [Problem(path, f"LoadGen error in the log: {show(e, 200)[1:-1]}") for e in detail.errors]
    out += [Problem(path, f"malformed: {m}") for m in detail.malformed]
    if detail.get("effective_scenario") != scenario.value:
        out.append(Problem(path, f"scenario is {show(detail.get('effective_scenario'))}, not {scenario.value}"))
    if detail.get("effective_test_mode") != _TEST_MODES[mode]:
        out.append(Problem(path, f"test mode is {show(detail.get('effective_test_mode'))}, not {_TEST_MODES[mode]}"))
    for key in SEED_KEYS:
        found = detail.get(f"effective_{key}")
        if found != seeds[key]:
            out.append(Problem(path, f"{key} is {show(found)}, not {seeds[key]} from LoadGen's built-in mlperf.conf "
                                     f"(wrong LoadGen version for round {ROUND}?)", settings=True))
    if mode is Mode.ACCURACY:
        count = accuracy_sample_count(detail)
        key = "effective_accuracy_sample_count" if "effective_accuracy_sample_count" in detail.values \
            else "qsl_reported_total_count"
        if count is not None and _number(detail, key, path, out) is None:
            return out  # not a number: listed as such
        if count != rules.accuracy_samples:
            out.append(Problem(path, f"accuracy run over {show(count)} samples, not {rules.accuracy_samples:,}",
                               settings=True))
        return out
    if detail.get("result_validity") != "VALID":
        try:
            why = invalid_reasons(detail)
        except (TypeError, ValueError):  # a tampered log's non-numbers: listed as such below
            why = []
        validity = detail.get("result_validity")
        shown = (validity if isinstance(validity, str) else show(validity))[:60] if validity else "without a result"
        out.append(Problem(path, f"performance run is {shown}, not VALID" + (f" ({'; '.join(why)})" if why else "")))
    if scenario is not Scenario.OFFLINE and detail.get("early_stopping_met") is not True:
        out.append(Problem(path, "early stopping not met: too few queries for its latency estimate"))
    if scenario is Scenario.SERVER and benchmark == BENCHMARK:
        bound = _number(detail, "effective_target_latency_ns", path, out)
        if bound is None or bound > SERVER_LATENCY_BOUND_NS:
            out.append(Problem(path, f"Server latency bound {bound} ns > {SERVER_LATENCY_BOUND_NS} ns "
                                     f"({BENCHMARK}'s 15 ms)", settings=True))
    duration = _number(detail, "effective_min_duration_ms", path, out) or 0
    if duration < OFFICIAL_MIN_DURATION_MS:
        out.append(Problem(path, f"min_duration {duration} ms < {OFFICIAL_MIN_DURATION_MS} ms", settings=True))
    count = _number(detail, "effective_performance_sample_count", path, out) or 0
    if count < rules.performance_samples:
        out.append(Problem(path, f"performance_sample_count {count} < {rules.performance_samples}",
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


def parse_metric_txt(path: Path, metric: str) -> tuple[float | None, int | None, str | None]:
    """(accuracy %, samples it covers, hash) from an accuracy.txt of metric ``acc`` (top-1 line)
    or ``mAP`` (the reference's ``mAP=<p>%`` and ``found <n> images`` lines)."""
    if metric == "acc":
        acc, digest = parse_accuracy_txt(path)
        return (acc[0], acc[2], digest) if acc is not None else (None, None, digest)
    value = total = digest = None
    for line in Path(path).read_text(errors="replace").splitlines():
        if (m := _MAP_LINE.match(line)) and value is None:
            value = float(m.group(1))
        if (m := _MAP_IMAGES_LINE.match(line)) and total is None:
            total = int(m.group(1))
        if h := _HASH_LINE.match(line):
            digest = h.group(1)
    return value, total, digest


def accuracy_txt_problems(path: Path, expected_total: Any, need_hash: bool, metric: str = "acc") -> list[Problem]:
    """accuracy.txt: the reference result line, its total equal to the run's sample count, the hash."""
    if not path.is_file():
        return [Problem(path, "accuracy.txt missing")]
    value, total, digest = parse_metric_txt(path, metric)
    out = []
    if value is None:
        form = "accuracy=<p>%, good=<n>, total=<n>" if metric == "acc" else "mAP=<p>%"
        out.append(Problem(path, f"no '{form}' line"))
    elif total != expected_total:
        out.append(Problem(path, f"total={total} but LoadGen ran {expected_total} accuracy samples"))
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
    """The full accuracy log: every accuracy sample logged. A sample may appear twice (MultiStream
    pads its last query to 8 samples with repeats), as the reference accuracy script allows."""
    if not path.is_file():
        return [Problem(path, "accuracy log missing")]
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [Problem(path, f"not valid JSON at line {exc.lineno} (already truncated?)")]
    except UnicodeDecodeError as exc:
        return [Problem(path, f"not UTF-8 text (byte {exc.start})")]
    if not isinstance(records, list):
        return [Problem(path, f"a JSON {_json_type(records)}, not the array of records LoadGen writes")]
    indices = {r.get("qsl_idx") for r in records if isinstance(r, dict)}
    if len(indices) != expected:
        return [Problem(path, f"holds {len(records)} records for {len(indices)} samples, but LoadGen ran "
                              f"{expected} accuracy samples")]
    return []


# ----------------------------------------------------------------------------- run-level rules
def run_problems(run: RunResult, detail: DetailLog, division: str = "open",
                 seeds: Mapping[str, int] | None = None) -> list[Problem]:
    """Every reason one finished run cannot go into a submission of ``division``.

    The runner's ``submittable`` is ``not run_problems(...)``; ``package`` refuses a run
    for the first of the same problems.
    """
    if division not in DIVISIONS:
        raise ConfigError(f"division: expected one of {DIVISIONS}, got {division!r}")
    directory = run.directory
    if run.benchmark not in BENCHMARKS:
        return [Problem(directory, f"benchmark {run.benchmark!r}, not one of {', '.join(BENCHMARKS)}")]
    rules = BENCHMARKS[run.benchmark]
    out = log_problems(detail, directory / DETAIL, run.mode, run.scenario, seeds, run.benchmark)
    if run.overrides:
        out.append(Problem(directory / RESULT_FILE, f"run used non-official command-line settings "
                                                    f"{dict(sorted(run.overrides.items()))}", settings=True))
    if run.mode is Mode.ACCURACY:
        count = accuracy_sample_count(detail)
        out += accuracy_txt_problems(directory / ACCURACY_TXT, count, need_hash=False, metric=rules.metric)
        out += accuracy_records_problems(directory / ACCURACY_LOG, count)
    if run.mode.is_compliance and (run.compliance or {}).get("passed") is not True:
        out.append(Problem(directory, f"{run.mode.value} verification did not pass"))
    return out


def consistency_problems(acc: Mapping[str, Any], perf: Mapping[str, Any], where: Path) -> list[Problem]:
    """Accuracy and performance runs must serve the same model with the same engine settings.

    ``acc``/``perf``: ``RunResult.identity()`` of each (or the provenance copy in a packaged README).
    """
    out = []
    card_a, card_p = acc.get("card") or {}, perf.get("card") or {}
    diff = [k for k in sorted(set(card_a) | set(card_p)) if card_a.get(k) != card_p.get(k)]
    if diff:
        k = diff[0]
        out.append(Problem(where, f"accuracy and performance runs used different models ({', '.join(diff)}: "
                                  f"{card_a.get(k)!r} vs {card_p.get(k)!r})"))
    if acc.get("engine") != perf.get("engine"):
        ea, ep = acc.get("engine") or {}, perf.get("engine") or {}
        keys = sorted(k for k in set(ea) | set(ep) if ea.get(k) != ep.get(k))
        out.append(Problem(where, "accuracy and performance runs used different engine settings ("
                           + ", ".join(f"{k}: {ea.get(k)!r} vs {ep.get(k)!r}" for k in keys) + ")"))
    if acc.get("inference_precision") != perf.get("inference_precision"):
        out.append(Problem(where, f"accuracy and performance runs compiled with different inference precision "
                                  f"({acc.get('inference_precision')!r} vs {perf.get('inference_precision')!r})"))
    return out


def user_conf_problems(user_conf: Path, perf_detail: DetailLog, perf_overrides: Mapping[str, Any],
                       scenario: Scenario, benchmark: str = BENCHMARK) -> list[Problem]:
    """user.conf must be the one the performance run read: its target_qps is the run's."""
    if not user_conf.is_file() or not user_conf.read_text(errors="replace").strip():
        return [Problem(user_conf, "user.conf missing or empty")]
    try:
        conf = parse_user_conf(user_conf)
    except HarnessError as exc:
        return [Problem(user_conf, str(exc))]
    except UnicodeDecodeError as exc:
        return [Problem(user_conf, f"not UTF-8 text (byte {exc.start})")]
    qps = lookup(conf, benchmark, scenario.value, "target_qps")
    out: list[Problem] = []
    effective = _number(perf_detail, "effective_target_qps", Path(perf_detail.source or DETAIL), out)
    if out:
        return out
    if "target_qps" not in perf_overrides and qps is not None and effective is not None \
            and abs(float(effective) - qps) > 1e-6 * max(qps, 1.0):
        return [Problem(user_conf, f"target_qps = {qps:g} but the performance run used {effective}: "
                                   "not the user.conf of that run")]
    return []


def measurements_problems(path: Path) -> list[Problem]:
    """measurements.json exists, parses, and gives every field the checker needs."""
    if not path.is_file():
        return [Problem(path, "measurements.json missing")]
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return [Problem(path, f"invalid JSON at line {exc.lineno}")]
    except UnicodeDecodeError as exc:
        return [Problem(path, f"not UTF-8 text (byte {exc.start})")]
    if not isinstance(data, dict):
        return [Problem(path, f"a JSON {_json_type(data)}, not an object of fields")]
    out = [Problem(path, f"field {k!r} is missing or empty") for k in MEASUREMENT_KEYS if not data.get(k)]
    return out + [Problem(path, f"field {k!r} is a JSON {_json_type(data[k])}, not a string")
                  for k in MEASUREMENT_KEYS if data.get(k) and not isinstance(data[k], str)]


# ----------------------------------------------------------------------------- closed division
def reference_checksums(path: Path = REFERENCE_MODELS_FILE, benchmark: str = BENCHMARK) -> tuple[str, ...]:
    """The sha256 of every reference model file the closed division accepts for ``benchmark``."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the reference model checksums ({exc})") from None
    values = data.get(benchmark) or []
    if not isinstance(values, list) or not all(isinstance(v, str) and len(v) == 64 for v in values):
        raise ConfigError(f"{path}: {benchmark}: expected a list of sha256 hex strings")
    return tuple(v.lower() for v in values)


def closed_model_problems(card: ModelCard, where: Path, reference: tuple[str, ...] | None = None) -> list[Problem]:
    """What the closed division forbids in a served model: another model, other calibration."""
    out = []
    benchmark = "yolo" if card.is_detector else BENCHMARK
    reference = reference_checksums(benchmark=benchmark) if reference is None else reference
    official = BENCHMARKS[benchmark].calibration_sha256
    if card.source_sha256.lower() not in reference:
        known = "none are listed yet" if not reference else f"{len(reference)} listed"
        out.append(Problem(where, f"closed division: model source {card.source or '?'} (sha256 "
                                  f"{card.source_sha256[:12]}...) is not the reference {benchmark} model "
                                  f"({REFERENCE_MODELS_FILE.name}: {known})"))
    if card.precision == "int8":
        listed = str((card.calibration or {}).get("list_sha256", ""))
        if listed not in official:
            out.append(Problem(where, f"closed division: calibrated on {(card.calibration or {}).get('list')}, "
                                      f"not an official list ({', '.join(official.values())})"))
    return out


def closed_problems(run: RunResult, reference: tuple[str, ...] | None = None, folder: str | None = None
                    ) -> list[Problem]:
    """What the closed division forbids in one run: another model, other calibration, low accuracy
    (below the target of the benchmark ``folder``, default the strictest)."""
    where = run.directory / RESULT_FILE
    out = closed_model_problems(run.card, where, reference)
    if run.mode is Mode.ACCURACY and run.accuracy is not None:
        out += closed_accuracy_problems(run.accuracy.top1_percent, benchmark_rules(run.benchmark), folder, where)
    return out


def closed_accuracy_problems(value: float, rules: BenchmarkRules, folder: str | None, where: Path) -> list[Problem]:
    """The closed division's accuracy target of ``folder``: top-1 or mAP against its fraction of the reference."""
    folder = folder if folder in rules.folders else rules.default_folder
    target = rules.target(folder)
    if value < target:
        name = "top-1" if rules.metric == "acc" else rules.metric
        return [Problem(where, f"closed division: {name} {value:.3f} % < {target:.4f} % ({folder}: "
                               f"{rules.folders[folder]:.0%} of the reference {rules.reference} %)")]
    return []
