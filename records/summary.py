"""Every run record under a results directory, as a table (md), the records (json), or one row
per scenario in the columns of the official checker's ``summary.csv`` (csv)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from common.errors import ConfigError, HarnessError
from common.testspec import BENCHMARK, Mode, Scenario
from records.results import RunResult, find_results

FORMATS = ("md", "json", "csv")
# The official checker's summary.csv header (tools/submission/submission_checker/results.py, round v6.1).
CHECKER_COLUMNS = (
    "Organization", "Availability", "Division", "SystemType", "SystemName", "Platform", "Model", "MlperfModel",
    "Scenario", "Result", "Accuracy", "number_of_nodes", "host_processor_model_name", "host_processors_per_node",
    "host_processor_core_count", "accelerator_model_name", "accelerators_per_node", "total_accelerators",
    "Location", "framework", "operating_system", "notes", "compliance", "errors", "version", "inferred",
    "has_power", "Units", "weight_data_types", "design_power_watts", "PrivateID")
# The checker's units per scenario (its UNIT_DICT); Server's completed samples per second it calls Queries/s.
UNITS = {Scenario.OFFLINE: "Samples/s", Scenario.SERVER: "Queries/s", Scenario.SINGLE_STREAM: "Latency (ms)",
         Scenario.MULTI_STREAM: "Latency (ms)"}
_WEIGHT_TYPES = {"f32": "fp32", "bf16": "bf16", "int8": "int8"}

Row = RunResult | tuple[Path, str]


def collect(results_dir: Path) -> list[Row]:
    """Every run record below ``results_dir`` by path; an unreadable one as (directory, reason).
    A ``results_dir`` that is not a directory is a ``ConfigError`` (nothing to summarise is not a summary)."""
    if not Path(results_dir).is_dir():
        raise ConfigError(f"--results {results_dir}: not a directory (no runs to summarise)")
    rows: list[Row] = []
    for path in find_results(results_dir):
        try:
            result = RunResult.load(path.parent)
            result.run_dir = str(path.parent)  # where it is now (a results tree may have been moved)
            rows.append(result)
        except HarnessError as exc:
            rows.append((path.parent, str(exc).split(": ", 1)[-1]))
    return rows


def render(rows: list[Row], fmt: str = "md") -> str:
    """``rows`` in format ``fmt`` (md, json or csv)."""
    if fmt == "md":
        return format_table(rows)
    if fmt == "json":
        return format_json(rows)
    if fmt == "csv":
        return format_checker_csv(rows)
    raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")


def format_table(rows: list[Row]) -> str:
    """Markdown table: run, status, precision, result, samples/s or accuracy, submittable."""
    head = "| run | status | precision | result | metric | top-1 % / mAP % | submittable |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        if isinstance(r, tuple):
            lines.append(f"| {r[0]} | unreadable: {r[1]} | | | | | no |")
            continue
        performance = r.mode is not Mode.ACCURACY
        value, unit = r.metric
        sps = f"{value:.{3 if 'ms' in unit else 1}f} {unit}" if performance and value is not None else ""
        validity = (r.validity or "") if performance else "accuracy run"
        acc = "" if r.accuracy is None else f"{r.accuracy.top1_percent:.3f}" + (
            " (mAP)" if r.accuracy.metric == "mAP" else "")
        prec = f"{r.card.precision} (hint {r.inference_precision or '?'})"
        lines.append(f"| {r.run_dir} | {r.status} | {prec} | {validity} | {sps} | {acc} | "
                     f"{'yes' if r.submittable else 'no'} |")
    return "\n".join(lines)


def format_json(rows: list[Row]) -> str:
    """Every record as it is stored, plus where it is; an unreadable one as {run_dir, unreadable}."""
    out: list[dict[str, Any]] = []
    for r in rows:
        out.append({"run_dir": str(r[0]), "unreadable": r[1]} if isinstance(r, tuple) else r.to_dict())
    return json.dumps(out, indent=2, sort_keys=True, default=str)


def _scenario_pairs(rows: list[Row]) -> dict[tuple[str, str, Scenario], dict[Mode, RunResult]]:
    """The accuracy and performance run of each (system, model, scenario), in path order."""
    pairs: dict[tuple[str, str, Scenario], dict[Mode, RunResult]] = {}
    for r in rows:
        if isinstance(r, tuple) or r.mode not in (Mode.ACCURACY, Mode.PERFORMANCE):
            continue
        pairs.setdefault((r.profile.name, r.card.label, r.scenario), {})[r.mode] = r
    return pairs


def _checker_row(system: str, label: str, scenario: Scenario, runs: dict[Mode, RunResult]) -> dict[str, Any]:
    """One scenario in the checker's columns. What only packaging decides (organisation, division,
    availability, the system description's hardware fields) is left empty; ``errors`` counts the
    reasons the pair is not submittable, as the runs recorded them."""
    from records.rules import ROUND, benchmark_rules

    any_run = runs.get(Mode.PERFORMANCE) or runs[Mode.ACCURACY]
    perf, acc = runs.get(Mode.PERFORMANCE), runs.get(Mode.ACCURACY)
    rules = benchmark_rules(any_run.benchmark)
    row: dict[str, Any] = {key: "" for key in CHECKER_COLUMNS}
    value = perf.metric[0] if perf is not None else None
    row.update({
        "SystemName": str(any_run.profile.system.get("system_name", "")) if any_run.profile.system else "",
        "Platform": system, "Model": label, "Scenario": scenario.value,
        "MlperfModel": "resnet" if any_run.benchmark == BENCHMARK else rules.default_folder,
        "Result": "" if value is None else f"{value:g}",
        "Accuracy": "" if acc is None or acc.accuracy is None else f"{rules.metric}: {acc.accuracy.top1_percent:.3f}",
        "number_of_nodes": "1", "host_processor_core_count": str(any_run.profile.cores),
        "accelerator_model_name": "N/A", "accelerators_per_node": "0", "total_accelerators": "0",
        "Location": "" if perf is None else perf.run_dir,
        "framework": f"OpenVINO {any_run.versions['openvino']}" if any_run.versions.get("openvino") else "",
        "errors": sum(len(r.not_submittable_because) for r in runs.values())
        + (0 if perf is not None and acc is not None else 1),
        "version": ROUND, "inferred": 0, "has_power": False, "Units": UNITS[scenario],
        "weight_data_types": _WEIGHT_TYPES.get(any_run.card.precision, any_run.card.precision)})
    return row


def format_checker_csv(rows: list[Row]) -> str:
    """One row per scenario (its accuracy and performance run) in the official checker's summary.csv
    columns, every value quoted as the checker writes them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    buffer.write(",".join(CHECKER_COLUMNS) + "\n")  # the checker's header is not quoted
    for (system, label, scenario), runs in sorted(_scenario_pairs(rows).items(),
                                                  key=lambda kv: (kv[0][0], kv[0][1], kv[0][2].value)):
        row = _checker_row(system, label, scenario, runs)
        writer.writerow([row[key] for key in CHECKER_COLUMNS])
    return buffer.getvalue().rstrip("\n")
