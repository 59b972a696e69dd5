"""``check``: the packaging rules applied to a submission tree on disk, which may be anyone's.

The packaged tree has no run records, so the rules that can be verified from the
files are applied (closed division: also every required scenario, TEST01/TEST04 passed, and
the accuracy target): each detail log (``records.rules.log_problems``), accuracy.txt
with its hash, the truncated accuracy log, measurements.json, user.conf against the
performance run, and the README's provenance block (same model and engine settings
in both runs, no non-official settings, not packaged for testing).

The tree is seen through ``submit.treeview.TreeView``: no link is followed, no special
file opened, every file read is capped; a value of the wrong type in a JSON file or an
MLLOG line is a problem naming the file and key; and a rule that fails unexpectedly on
one folder becomes a problem naming the folder, so the list of the others is never lost.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from common.testspec import Mode, Scenario
from harness.compliance import VERIFY_ACCURACY, VERIFY_PERFORMANCE
from hostinfo.describe import REQUIRED_FIELDS, description_problems
from records import results as run_records
from records.accuracy import ACCURACY_TXT
from records.loadgen_logs import ACCURACY_LOG, DETAIL, SUMMARY, DetailLog, parse_detail
from records.rules import (CATEGORY_SCENARIOS, DIVISIONS, BenchmarkRules, Problem, accuracy_sample_count,
                           accuracy_txt_problems, builtin_seeds, closed_accuracy_problems, consistency_problems,
                           log_problems, measurements_problems, parse_metric_txt, rules_for_folder, show,
                           user_conf_problems)
from submit.calibration import CALIBRATION_MD
from submit.tree import MAX_ACCURACY_LOG_BYTES, NOT_FOR_SUBMISSION, read_provenance
from submit.treeview import TreeView

log = logging.getLogger(__name__)

SCENARIO_NAMES = tuple(s.value for s in Scenario)
_JSON_TYPES = {bool: "boolean", str: "string", list: "array", dict: "object", int: "number", float: "number"}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _guarded(where: Path, rule: Callable[[], list[Problem]]) -> list[Problem]:
    """Run ``rule``; an unexpected failure is one problem naming ``where``, not a lost problem list."""
    try:
        return rule()
    except Exception as exc:  # noqa: BLE001 - a foreign tree can break a rule in ways nobody listed
        log.debug("check failed on %s", where, exc_info=True)
        return [Problem(where, f"could not be checked ({type(exc).__name__}: {show(str(exc), 120)[1:-1]})")]


def _read_json(view: TreeView, path: Path, out: list[Problem], expect: type = dict) -> Any:
    """A JSON file of the tree parsed, if it is a JSON ``expect`` (object by default); else None,
    with the reason in ``out``."""
    text = view.read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        out.append(Problem(path, f"invalid JSON at line {exc.lineno}"))
        return None
    except RecursionError:
        out.append(Problem(path, "invalid JSON (nested too deeply)"))
        return None
    if not isinstance(data, expect):
        out.append(Problem(path, f"a JSON {_json_type(data)}, not an {_json_type(expect())}"))
        return None
    return data


def _detail(view: TreeView, path: Path) -> DetailLog | None:
    """The detail log at ``path`` parsed, if it is readable."""
    text = view.read_text(path)
    return None if text is None else parse_detail(text, str(path))


def _check_compliance(view: TreeView, scen: Path, scenario: Scenario, seeds: Mapping[str, int],
                      rules: BenchmarkRules) -> list[Problem]:
    """Closed division: the benchmark's compliance tests (resnet50: TEST01 and TEST04; yolo: TEST01)
    in the scenario folder, passed, with valid runs."""
    out: list[Problem] = []
    for mode in rules.compliance:
        test_dir = run_records.compliance_dir(scen, mode)
        verdicts = [VERIFY_PERFORMANCE] + ([VERIFY_ACCURACY] if mode is Mode.TEST01 else [])
        for name in verdicts:
            path = test_dir / name
            text = view.read_text(path)
            if not view.is_file(path):
                out.append(Problem(path, f"missing (the closed division needs {mode.value} in every scenario)"))
            elif text is not None and "TEST PASS" not in text:
                out.append(Problem(path, f"{mode.value} did not pass"))
        run = run_records.run_dir_in(scen, mode)
        if view.is_file(run / DETAIL):
            detail = _detail(view, run / DETAIL)
            if detail is not None:
                out += log_problems(detail, run / DETAIL, mode, scenario, seeds, rules.model)
        else:
            out.append(Problem(run / DETAIL, f"missing: no {mode.value} run logs"))
    return out


def _closed_accuracy_problems(view: TreeView, acc_txt: Path, rules: BenchmarkRules, folder: str) -> list[Problem]:
    value = parse_metric_txt(acc_txt, rules.metric)[0] if view.readable(acc_txt) else None
    return closed_accuracy_problems(value, rules, folder, acc_txt) if value is not None else []


def _provenance_shape(provenance: Any, readme: Path) -> list[Problem]:
    """The provenance block's types: an object whose runs, cards, engines and overrides are objects."""
    if not isinstance(provenance, dict):
        return [Problem(readme, f"provenance block is a JSON {_json_type(provenance)}, not an object")]
    out = []
    if "official" in provenance and not isinstance(provenance["official"], bool):
        out.append(Problem(readme, f"provenance key 'official' is a JSON {_json_type(provenance['official'])}, "
                                   "not a boolean"))
    for kind in ("accuracy", "performance"):
        run = provenance.get(kind)
        if run is not None and not isinstance(run, dict):
            out.append(Problem(readme, f"provenance key {kind!r} is a JSON {_json_type(run)}, not an object"))
            continue
        for key in ("card", "engine", "overrides"):
            value = (run or {}).get(key)
            if value is not None and not isinstance(value, dict):
                out.append(Problem(readme, f"provenance key '{kind}.{key}' is a JSON {_json_type(value)}, "
                                           "not an object"))
    return out


def _check_provenance(view: TreeView, scen: Path, scenario: Scenario, rules: BenchmarkRules,
                      perf_detail: DetailLog | None) -> list[Problem]:
    """The README's provenance block: same model and engine in both runs, official, the run's user.conf."""
    readme = scen / "README.md"
    provenance = read_provenance(readme) if view.readable(readme) else None
    if provenance is None:
        return [Problem(readme, "no machine-readable provenance block: cannot verify that both runs served the "
                                "same model")]
    out = _provenance_shape(provenance, readme)
    if out:
        return out
    out += consistency_problems(provenance.get("accuracy") or {}, provenance.get("performance") or {}, readme)
    if not provenance.get("official", False):
        out.append(Problem(readme, "packaged with --allow-nonofficial: not for submission"))
    for kind in ("accuracy", "performance"):
        overrides = (provenance.get(kind) or {}).get("overrides")
        if overrides:
            out.append(Problem(readme, f"{kind} run used non-official command-line settings {show(overrides, 200)}",
                               settings=True))
    if perf_detail is not None and view.readable(scen / "user.conf"):
        out += user_conf_problems(scen / "user.conf", perf_detail,
                                  (provenance.get("performance") or {}).get("overrides") or {}, scenario,
                                  rules.model)
    return out


def _check_scenario(view: TreeView, scen: Path, seeds: Mapping[str, int], division: str,
                    rules: BenchmarkRules) -> list[Problem]:
    out: list[Problem] = []
    scenario = Scenario(scen.name)
    if division == "closed":
        out += _check_compliance(view, scen, scenario, seeds, rules)
        out += _closed_accuracy_problems(view, run_records.run_dir_in(scen, Mode.ACCURACY) / ACCURACY_TXT, rules,
                                         scen.parent.name)
    perf_dir, acc_dir = run_records.run_dir_in(scen, Mode.PERFORMANCE), run_records.run_dir_in(scen, Mode.ACCURACY)
    required = [perf_dir / SUMMARY, perf_dir / DETAIL, acc_dir / SUMMARY, acc_dir / DETAIL, acc_dir / ACCURACY_TXT,
                acc_dir / ACCURACY_LOG, scen / "measurements.json", scen / "user.conf", scen / "README.md"]
    for path in required:
        if not view.is_file(path) or not view.size(path):
            out.append(Problem(path, "missing or empty"))
    # Each file's rules are guarded on their own: one that breaks is named, the others still run.
    perf_detail = _detail(view, perf_dir / DETAIL)
    if perf_detail is not None:
        out += _guarded(perf_dir / DETAIL, lambda: log_problems(perf_detail, perf_dir / DETAIL, Mode.PERFORMANCE,
                                                                scenario, seeds, rules.model))
    acc_detail = _detail(view, acc_dir / DETAIL)
    if acc_detail is not None:
        out += _guarded(acc_dir / DETAIL, lambda: log_problems(acc_detail, acc_dir / DETAIL, Mode.ACCURACY, scenario,
                                                               seeds, rules.model))
        if view.readable(acc_dir / ACCURACY_TXT):
            out += _guarded(acc_dir / ACCURACY_TXT, lambda: accuracy_txt_problems(
                acc_dir / ACCURACY_TXT, accuracy_sample_count(acc_detail), need_hash=True, metric=rules.metric))
    log_path = acc_dir / ACCURACY_LOG  # only its size is looked at
    if view.size(log_path) > MAX_ACCURACY_LOG_BYTES:
        out.append(Problem(log_path, f"not truncated ({view.size(log_path)} bytes > {MAX_ACCURACY_LOG_BYTES})"))
    if view.readable(scen / "measurements.json"):
        out += _guarded(scen / "measurements.json", lambda: measurements_problems(scen / "measurements.json"))
    out += _guarded(scen / "README.md", lambda: _check_provenance(view, scen, scenario, rules, perf_detail))
    return out


def check_tree(tree: Path) -> list[str]:
    """Every reason the tree at ``tree`` cannot be submitted, as ``path: message`` strings; [] = OK.

    Safe on a tree from anyone: see the module docstring."""
    root = Path(tree)
    if not root.is_dir():
        return [printable(f"{root}: not a directory")]
    view = TreeView.scan(root)
    seeds = builtin_seeds()
    out: list[Problem] = []
    markers = [root / NOT_FOR_SUBMISSION] + [org / NOT_FOR_SUBMISSION for division in view.subdirs(root)
                                              for org in view.subdirs(division)]
    out += [Problem(m, "tree is marked not for submission") for m in markers if view.is_file(m)]
    divisions = [d for d in ("open", "closed", "network") if view.is_dir(root / d)]
    if not divisions:
        out.append(Problem(root, "no open/ or closed/ division folder"))
    for division in divisions:
        if division not in DIVISIONS:
            out.append(Problem(root / division, f"{division} division: this harness packages open and closed only"))
            continue
        for org_dir in _visible(view.subdirs(root / division)):
            out += _guarded(org_dir, lambda: _check_submitter(view, org_dir, seeds, division))
    seen: set[str] = set()
    lines = []
    for problem in view.problems + out:  # the tree's own problems (links, caps) first
        line = printable(str(problem))
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def printable(text: str) -> str:
    """``text`` safe to print: undecodable file-name bytes and control characters escaped, so a
    tampered name or value cannot forge an output line or move the terminal's cursor."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _system_category(desc: Mapping[str, Any], sys_json: Path) -> tuple[str | None, list[Problem]]:
    category = str(desc.get("system_type", ""))
    normalised = "datacenter,edge" if set(category.split(",")) == {"datacenter", "edge"} else category
    if normalised not in CATEGORY_SCENARIOS:
        return None, [Problem(sys_json, f"system_type {show(category)}: resnet50 and yolo are edge benchmarks; "
                                        f"expected one of {', '.join(CATEGORY_SCENARIOS)}")]
    return normalised, []


def _field_types(desc: Mapping[str, Any], sys_json: Path) -> list[Problem]:
    """Every required system field is a JSON string or number (the checker compares and multiplies them)."""
    return [Problem(sys_json, f"field {key!r} is a JSON {_json_type(desc[key])}, not a string")
            for key in REQUIRED_FIELDS if key in desc and desc[key] is not None
            and (isinstance(desc[key], (bool, list, dict)) or not isinstance(desc[key], (str, int, float)))]


def _model_mapping(view: TreeView, org_dir: Path, out: list[Problem]) -> dict[str, str]:
    """``model_mapping.json``: folder name -> benchmark name, both strings."""
    path = org_dir / "model_mapping.json"
    if not view.is_file(path):
        return {}
    data = _read_json(view, path, out) or {}
    mapping = {}
    for key, value in data.items():
        if isinstance(value, str):
            mapping[key] = value
        else:
            out.append(Problem(path, f"key {show(key)}: a JSON {_json_type(value)}, not a benchmark name string"))
    return mapping


def _system_description(view: TreeView, org_dir: Path, system: Path, out: list[Problem]
                        ) -> tuple[dict[str, Any] | None, str | None]:
    """The system's description and its category (edge, datacenter,edge), with its problems in ``out``."""
    sys_json = org_dir / "systems" / f"{system.name}.json"
    if not view.is_file(sys_json):
        out.append(Problem(sys_json, "system description missing"))
        return None, None
    desc = _read_json(view, sys_json, out)
    if desc is None:
        return None, None
    out += _field_types(desc, sys_json)
    out += [Problem(sys_json, p) for p in description_problems(desc, org_dir.parent.name, org_dir.name)]
    category, wrong = _system_category(desc, sys_json)
    out += wrong
    return desc, category


def _check_submitter(view: TreeView, org_dir: Path, seeds: Mapping[str, int], division: str) -> list[Problem]:
    out: list[Problem] = []
    src = org_dir / "src"
    if not view.is_dir(src) or not view.has_entries(src):
        out.append(Problem(src, "src directory missing or empty"))
    if division == "closed" and not any(view.is_file(org_dir / name) for name in (CALIBRATION_MD, "calibration.md")):
        out.append(Problem(org_dir / CALIBRATION_MD, "missing: the closed division documents how the model was "
                                                     "calibrated (package writes it from the model card)"))
    mapping = _model_mapping(view, org_dir, out)
    results = org_dir / "results"
    systems = _visible(view.subdirs(results))
    if not systems:
        out.append(Problem(results, "no results"))
    for system in systems:
        desc, category = _system_description(view, org_dir, system, out)
        for bench in _visible(view.subdirs(system)):
            out += _guarded(bench, lambda: _check_benchmark(view, bench, desc, category, mapping, seeds, division))
    return out


def _visible(dirs: list[Path]) -> list[Path]:
    """Folders other than hidden (dot) ones: something being built aside by package, not the tree."""
    return [d for d in dirs if not d.name.startswith(".")]


def _check_benchmark(view: TreeView, bench: Path, desc: Mapping[str, Any] | None, category: str | None,
                     mapping: Mapping[str, str], seeds: Mapping[str, int], division: str) -> list[Problem]:
    out: list[Problem] = []
    # The closed division takes the checker's own names only; open also model_mapping.json's.
    rules = rules_for_folder(bench.name, mapping if division == "open" else None)
    if rules is None:
        return [Problem(bench, "not a benchmark this harness knows (resnet50, yolo-99, yolo-95; open "
                               "division: or a name model_mapping.json maps to one)")]
    required = rules.required_scenarios(category) if category else ()
    present = {p.name for p in _visible(view.subdirs(bench))}
    missing = [s.value for s in required if s.value not in present]
    if missing and division == "closed":
        out.append(Problem(bench, f"closed division: {', '.join(missing)} missing (a "
                                  f"{(desc or {}).get('system_type')} system needs "
                                  f"{', '.join(s.value for s in required)})"))
    elif missing:
        log.warning("%s: open division without %s (a closed entry would need them)", bench, ", ".join(missing))
    for scen in _visible(view.subdirs(bench)):
        if scen.name not in SCENARIO_NAMES or (required and Scenario(scen.name) not in required):
            out.append(Problem(scen, f"scenario folder {scen.name!r} is not one of this system's "
                                     f"({', '.join(s.value for s in required) or ', '.join(SCENARIO_NAMES)})"))
            continue
        out += _guarded(scen, lambda: _check_scenario(view, scen, seeds, division, rules))
    return out
