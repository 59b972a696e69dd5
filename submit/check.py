"""``check``: the packaging rules applied to a submission tree on disk.

The packaged tree has no run records, so the rules that can be verified from the
files are applied (closed division: also every required scenario, TEST01/TEST04 passed, and
the accuracy target): each detail log (``records.rules.log_problems``), accuracy.txt
with its hash, the truncated accuracy log, measurements.json, user.conf against the
performance run, and the README's provenance block (same model and engine settings
in both runs, no non-official settings, not packaged for testing).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from common.testspec import Mode, Scenario
from harness.compliance import VERIFY_ACCURACY, VERIFY_PERFORMANCE
from hostinfo.describe import description_problems
from records import results as tree
from records.accuracy import ACCURACY_TXT
from records.loadgen_logs import ACCURACY_LOG, DETAIL, SUMMARY, read_detail
from records.rules import (CATEGORY_SCENARIOS, DIVISIONS, BenchmarkRules, Problem, accuracy_sample_count,
                           accuracy_txt_problems, builtin_seeds, closed_accuracy_problems, consistency_problems,
                           log_problems, measurements_problems, parse_metric_txt, rules_for_folder,
                           user_conf_problems)
from submit.tree import MAX_ACCURACY_LOG_BYTES, NOT_FOR_SUBMISSION, read_provenance

log = logging.getLogger(__name__)

SCENARIO_NAMES = tuple(s.value for s in Scenario)


def _check_compliance(scen: Path, scenario: Scenario, seeds: Mapping[str, int], rules: BenchmarkRules) -> list[Problem]:
    """Closed division: the benchmark's compliance tests (resnet50: TEST01 and TEST04; yolo: TEST01)
    in the scenario folder, passed, with valid runs."""
    out: list[Problem] = []
    for mode in rules.compliance:
        test_dir = tree.compliance_dir(scen, mode)
        verdicts = [VERIFY_PERFORMANCE] + ([VERIFY_ACCURACY] if mode is Mode.TEST01 else [])
        for name in verdicts:
            path = test_dir / name
            if not path.is_file():
                out.append(Problem(path, f"missing (the closed division needs {mode.value} in every scenario)"))
            elif "TEST PASS" not in path.read_text(errors="replace"):
                out.append(Problem(path, f"{mode.value} did not pass"))
        run = tree.run_dir_in(scen, mode)
        if (run / DETAIL).is_file():
            out += log_problems(read_detail(run), run / DETAIL, mode, scenario, seeds, rules.model)
        else:
            out.append(Problem(run / DETAIL, f"missing: no {mode.value} run logs"))
    return out


def _closed_accuracy_problems(acc_txt: Path, rules: BenchmarkRules, folder: str) -> list[Problem]:
    value = parse_metric_txt(acc_txt, rules.metric)[0] if acc_txt.is_file() else None
    return closed_accuracy_problems(value, rules, folder, acc_txt) if value is not None else []


def _check_scenario(scen: Path, seeds: Mapping[str, int], division: str, rules: BenchmarkRules) -> list[Problem]:
    out: list[Problem] = []
    scenario = Scenario(scen.name)
    if division == "closed":
        out += _check_compliance(scen, scenario, seeds, rules)
        out += _closed_accuracy_problems(tree.run_dir_in(scen, Mode.ACCURACY) / ACCURACY_TXT, rules, scen.parent.name)
    perf_dir, acc_dir = tree.run_dir_in(scen, Mode.PERFORMANCE), tree.run_dir_in(scen, Mode.ACCURACY)
    required = [perf_dir / SUMMARY, perf_dir / DETAIL, acc_dir / SUMMARY, acc_dir / DETAIL, acc_dir / ACCURACY_TXT,
                acc_dir / ACCURACY_LOG, scen / "measurements.json", scen / "user.conf", scen / "README.md"]
    for path in required:
        if not path.is_file() or not path.stat().st_size:
            out.append(Problem(path, "missing or empty"))
    perf_detail = acc_detail = None
    if (perf_dir / DETAIL).is_file():
        perf_detail = read_detail(perf_dir)
        out += log_problems(perf_detail, perf_dir / DETAIL, Mode.PERFORMANCE, scenario, seeds, rules.model)
    if (acc_dir / DETAIL).is_file():
        acc_detail = read_detail(acc_dir)
        out += log_problems(acc_detail, acc_dir / DETAIL, Mode.ACCURACY, scenario, seeds, rules.model)
        count = accuracy_sample_count(acc_detail)
        if (acc_dir / ACCURACY_TXT).is_file():
            out += accuracy_txt_problems(acc_dir / ACCURACY_TXT, count, need_hash=True, metric=rules.metric)
    log_path = acc_dir / ACCURACY_LOG
    if log_path.is_file() and log_path.stat().st_size > MAX_ACCURACY_LOG_BYTES:
        out.append(Problem(log_path, f"not truncated ({log_path.stat().st_size} bytes > {MAX_ACCURACY_LOG_BYTES})"))
    if (scen / "measurements.json").is_file():
        out += measurements_problems(scen / "measurements.json")
    provenance = read_provenance(scen / "README.md")
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
                                      (provenance.get("performance") or {}).get("overrides") or {}, scenario,
                                      rules.model)
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
        out.append(Problem(tree, "no open/ or closed/ division folder"))
    for division in divisions:
        if division not in DIVISIONS:
            out.append(Problem(tree / division, f"{division} division: this harness packages open and closed only"))
            continue
        for org_dir in sorted(p for p in (tree / division).iterdir() if p.is_dir()):
            out += _check_submitter(org_dir, seeds, division)
    return [str(p) for p in out]


def _system_category(desc: Mapping[str, Any], sys_json: Path) -> tuple[str | None, list[Problem]]:
    category = str(desc.get("system_type", ""))
    normalised = "datacenter,edge" if set(category.split(",")) == {"datacenter", "edge"} else category
    if normalised not in CATEGORY_SCENARIOS:
        return None, [Problem(sys_json, f"system_type {category!r}: resnet50 and yolo are edge benchmarks; "
                                        f"expected one of {', '.join(CATEGORY_SCENARIOS)}")]
    return normalised, []


def _check_submitter(org_dir: Path, seeds: Mapping[str, int], division: str) -> list[Problem]:
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
        category: str | None = None
        if not sys_json.is_file():
            out.append(Problem(sys_json, "system description missing"))
        else:
            try:
                desc = json.loads(sys_json.read_text())
                out += [Problem(sys_json, p) for p in description_problems(desc, org_dir.parent.name, org_dir.name)]
                category, wrong = _system_category(desc, sys_json)
                out += wrong
            except json.JSONDecodeError as exc:
                out.append(Problem(sys_json, f"invalid JSON at line {exc.lineno}"))
        for bench in sorted(p for p in system.iterdir() if p.is_dir()):
            # The closed division takes the checker's own names only; open also model_mapping.json's.
            rules = rules_for_folder(bench.name, mapping if division == "open" else None)
            if rules is None:
                out.append(Problem(bench, "not a benchmark this harness knows (resnet50, yolo-99, yolo-95; open "
                                          "division: or a name model_mapping.json maps to one)"))
                continue
            required = rules.required_scenarios(category) if category else ()
            present = {p.name for p in bench.iterdir() if p.is_dir()}
            missing = [s.value for s in required if s.value not in present]
            if missing and division == "closed":
                out.append(Problem(bench, f"closed division: {', '.join(missing)} missing (a "
                                          f"{desc.get('system_type')} system needs {', '.join(s.value for s in required)})"))
            elif missing:
                log.warning("%s: open division without %s (a closed entry would need them)", bench, ", ".join(missing))
            for scen in sorted(p for p in bench.iterdir() if p.is_dir()):
                if scen.name not in SCENARIO_NAMES or (required and Scenario(scen.name) not in required):
                    out.append(Problem(scen, f"scenario folder {scen.name!r} is not one of this system's "
                                             f"({', '.join(s.value for s in required) or ', '.join(SCENARIO_NAMES)})"))
                    continue
                out += _check_scenario(scen, seeds, division, rules)
    return out
