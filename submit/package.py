"""``package``: finished runs -> the round's submission tree, refusing what must not be submitted.

For each scenario, the accuracy and performance runs of one model on one system are
loaded as ``RunResult`` records and judged by ``records.rules`` (the same rules the
runner used when it said ``submittable``), then by the rules that concern the pair
and the tree: same model and engine settings, the user.conf the runs read, the
system description, the environment. The first problem is raised as a
``SubmissionError`` naming its file; every problem is logged. ``allow_nonofficial``
(testing only) waives the settings rules and marks the tree ``NOT_FOR_SUBMISSION``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from common.errors import HarnessError, SubmissionError
from common.files import same_tree, sha256_file, swap_in, utc_stamp
from common.names import check_name
from common.testspec import Mode, Scenario
from harness.profile import HOST
from hostinfo.describe import describe_system, description_problems, missing_fields
from hostinfo.probe import distribution_version, physical_cores, write_versions
from modelprep.card import ModelCard
from records import results as run_records
from harness.compliance import VERIFY_FILES
from records.accuracy import ACCURACY_TXT
from records.loadgen_logs import ACCURACY_LOG, DETAIL, SUMMARY, DetailLog, read_detail
from records.results import RunResult
from records.rules import (CATEGORY_SCENARIOS, COMPLIANCE_TESTS, DIVISIONS, MEASUREMENT_KEYS, ROUND, BenchmarkRules,
                           Problem, benchmark_rules, builtin_seeds, closed_problems, consistency_problems,
                           rules_for_folder, run_problems, user_conf_problems)
from sut.config import SystemProfile
from submit.readme import readme_text
from submit.calibration import CALIBRATION_MD, write_calibration_md
from submit.sources import copy_sources
from submit.tree import (MLPERF_MODEL, measurements_from_card, org_dir,
                         packaged_scenario_dir, system_json_path, truncate_accuracy_log, write_marker)

log = logging.getLogger(__name__)



@dataclass
class Packaged:
    """What ``package`` wrote."""

    tree: Path
    scenario_dirs: list[Path]
    system_json: Path
    official: bool
    waived: list[str] = field(default_factory=list)

    @property
    def scenario_dir(self) -> Path:
        """The first (for one scenario, the only) packaged scenario folder."""
        return self.scenario_dirs[0]


@dataclass
class _Pair:
    """The accuracy and performance runs of one scenario, with their detail logs."""

    scenario: Scenario
    root: Path
    acc: RunResult
    perf: RunResult
    acc_detail: DetailLog
    perf_detail: DetailLog
    compliance: dict[Mode, tuple[RunResult, DetailLog]] = field(default_factory=dict)


def load_finished_run(run_dir: Path, mode: Mode, scenario: Scenario) -> tuple[RunResult, DetailLog]:
    """The record and detail log of a finished run; anything else is refused at once."""
    kind = mode.value
    if run_records.is_incomplete(run_dir):
        raise SubmissionError(f"{run_dir / run_records.INCOMPLETE}: the {kind} run is incomplete (interrupted or "
                              "unchecked); rerun it")
    if not run_records.result_path(run_dir).is_file():
        raise SubmissionError(f"{run_records.result_path(run_dir)}: missing: no finished {kind} run here")
    try:
        run = RunResult.load(run_dir)
    except HarnessError as exc:
        raise SubmissionError(str(exc)) from None
    path = run_records.result_path(run_dir)
    if run.status != "ok":
        why = f" ({run.error})" if run.error else ""
        raise SubmissionError(f"{path}: {kind} run status is {run.status!r}{why}, not 'ok'")
    if run.mode is not mode:
        raise SubmissionError(f"{path}: mode is {run.mode.value!r}, expected {kind!r}")
    if run.scenario is not scenario:
        raise SubmissionError(f"{path}: {run.scenario.value} run, expected {scenario.value}")
    for name in (SUMMARY, DETAIL):
        if not (run_dir / name).is_file() or not (run_dir / name).stat().st_size:
            raise SubmissionError(f"{run_dir / name}: missing or empty")
    try:
        detail = read_detail(run_dir)
    except HarnessError as exc:
        raise SubmissionError(str(exc)) from None
    # The record names the directory it was written in; judge the files where they are now.
    run.run_dir = str(Path(run_dir).resolve())
    return run, detail


def environment_problems(pair: _Pair) -> list[Problem]:
    """The system description is taken from this environment: it must be the one the runs used."""
    out = []
    where = pair.root
    installed_lg = distribution_version("mlcommons-loadgen", "mlcommons_loadgen")
    for kind, detail in (("accuracy", pair.acc_detail), ("performance", pair.perf_detail)):
        version = str(detail.get("loadgen_version") or "").split(" ")[0]
        if installed_lg and version and version != installed_lg:
            out.append(Problem(where, f"the {kind} run used LoadGen {version} but {installed_lg} is installed: "
                                      "package in the environment that ran the tests"))
    for kind, run in (("accuracy", pair.acc), ("performance", pair.perf)):
        if run.profile.name == HOST and run.profile.cores != physical_cores():
            out.append(Problem(where, f"the {kind} run's host profile had {run.profile.cores} cores but this "
                                      f"machine has {physical_cores()}: package on the machine that ran the tests"))
    installed_ov = distribution_version("openvino")
    for kind, run in (("accuracy", pair.acc), ("performance", pair.perf)):
        m = re.search(r"\bov=([^;]+)", str(run.compiled_properties.get("RUNTIME_REQUIREMENTS", "")))
        if installed_ov and m and m.group(1) != installed_ov:
            out.append(Problem(where, f"the {kind} run used OpenVINO {m.group(1)} but {installed_ov} is "
                                      "installed: package in the environment that ran the tests"))
    return out


def _load_pair(results_dir: Path, system: str, model_label: str, scenario: Scenario,
               need_compliance: bool = False) -> _Pair:
    root = run_records.scenario_dir(results_dir, system, model_label, scenario)
    if not root.is_dir():
        raise SubmissionError(f"{root}: no runs for system {system!r} and model {model_label!r}")
    loaded: dict[Mode, tuple[RunResult, DetailLog]] = {}
    tests: tuple[Mode, ...] = ()
    for mode in (Mode.ACCURACY, Mode.PERFORMANCE, *COMPLIANCE_TESTS):
        run_dir = run_records.run_dir_in(root, mode)
        if mode.is_compliance and mode not in tests:  # yolo: TEST01 only
            continue
        if not run_dir.is_dir():
            if mode.is_compliance and not need_compliance:
                continue
            names = " and ".join(m.value for m in tests)
            why = f" (the closed division needs {names} in every scenario)" if mode.is_compliance else ""
            raise SubmissionError(f"{run_dir}: no {mode.value} run{why}")
        loaded[mode] = load_finished_run(run_dir, mode, scenario)
        if mode is Mode.PERFORMANCE:
            tests = _rules_of(loaded[mode][0]).compliance
    (acc, acc_detail), (perf, perf_detail) = loaded.pop(Mode.ACCURACY), loaded.pop(Mode.PERFORMANCE)
    return _Pair(scenario, root, acc, perf, acc_detail, perf_detail, loaded)


def _rules_of(run: RunResult) -> BenchmarkRules:
    """The benchmark rules of a run's LoadGen model, refused with the record's path if unknown."""
    try:
        return benchmark_rules(run.benchmark)
    except HarnessError as exc:
        raise SubmissionError(f"{run_records.result_path(run.run_dir)}: {exc}") from None


def resolve_user_conf(explicit: Path | None, perf: RunResult, results_dir: Path) -> Path:
    """The user.conf the runs read: explicit, else the recorded path (absolute, cwd or results' parent)."""
    if explicit is not None:
        return Path(explicit)
    recorded = Path(perf.user_conf or "user.conf")
    for candidate in (recorded, Path.cwd() / recorded, results_dir.resolve().parent / recorded):
        if candidate.is_file():
            return candidate
    raise SubmissionError(f"{recorded}: the user.conf the runs read (as recorded in result.json) is not found "
                          "here; pass it explicitly")


def _pair_problems(pair: _Pair, conf_path: Path, seeds: Mapping[str, int], division: str,
                   folder: str | None = None) -> list[Problem]:
    problems = run_problems(pair.perf, pair.perf_detail, division, seeds)
    problems += run_problems(pair.acc, pair.acc_detail, division, seeds)
    for run, detail in pair.compliance.values():
        problems += run_problems(run, detail, division, seeds)
        problems += consistency_problems(pair.perf.identity(), run.identity(), run.directory)
    if division == "closed":
        for run in (pair.acc, pair.perf):
            problems += closed_problems(run, folder=folder)
    problems += consistency_problems(pair.acc.identity(), pair.perf.identity(), pair.root)
    problems += environment_problems(pair)
    if pair.acc.user_conf != pair.perf.user_conf:
        problems.append(Problem(pair.root, f"runs read different user.conf files ({pair.acc.user_conf} vs "
                                           f"{pair.perf.user_conf})"))
    problems += user_conf_problems(conf_path, pair.perf_detail, pair.perf.overrides, pair.scenario,
                                   pair.perf.benchmark)
    for run in (pair.acc, pair.perf):
        if run.user_conf_sha256 and conf_path.is_file() and run.user_conf_sha256 != sha256_file(conf_path):
            problems.append(Problem(conf_path, f"differs from the user.conf the run in {run.run_dir} read "
                                               "(sha256 in its result.json)"))
    measurements = measurements_from_card(pair.perf.card)
    problems += [Problem(run_records.result_path(pair.perf.run_dir), f"model card gives no {k} for measurements.json")
                 for k in MEASUREMENT_KEYS if not measurements[k]]
    return problems


def scenario_problems(results_dir: Path, system: str, model_label: str, scenario: Scenario,
                      user_conf: Path | None = None, division: str = "open") -> list[Problem]:
    """Every problem ``package`` finds with one scenario's runs (before the system description)."""
    pair = _load_pair(Path(results_dir), system, model_label, scenario, division == "closed")
    return _pair_problems(pair, resolve_user_conf(user_conf, pair.perf, Path(results_dir)), builtin_seeds(),
                          division)


def choose_scenarios(results_dir: Path, system: str, model_label: str, division: str, category: str,
                     scenarios: tuple[Scenario, ...] | None) -> tuple[Scenario, ...]:
    """The scenarios to package: as given, else the category's (closed: all of them, refused if
    one is missing; open: those that have runs, with a warning for the rest)."""
    if category not in CATEGORY_SCENARIOS:
        raise SubmissionError(f"category {category!r}: expected one of {', '.join(CATEGORY_SCENARIOS)}")
    model_dir = run_records.scenario_dir(results_dir, system, model_label, Scenario.OFFLINE).parent
    records = [r for pattern in (f"*/*/{run_records.RESULT_FILE}", f"*/*/*/{run_records.RESULT_FILE}")
               for r in sorted(model_dir.glob(pattern)) if not run_records.is_hidden(r, model_dir)]  # no staged attempt
    rules = _rules_of(RunResult.load(records[0].parent)) if records else benchmark_rules("resnet50")
    required = rules.required_scenarios(category)  # yolo: never Server
    if scenarios:
        chosen = tuple(scenarios)
    elif division == "closed":
        chosen = required
    else:
        chosen = tuple(s for s in required
                       if run_records.scenario_dir(results_dir, system, model_label, s).is_dir())
        if not chosen:
            raise SubmissionError(f"{run_records.scenario_dir(results_dir, system, model_label, required[0]).parent}: "
                                  f"no runs of any {category} scenario ({', '.join(s.value for s in required)})")
    missing = [s.value for s in required if s not in chosen]
    if missing and division == "closed":
        raise SubmissionError(f"closed division, {category}: {', '.join(missing)} required but not packaged")
    if missing:
        log.warning("open division: %s not packaged (a closed %s entry would need %s)", ", ".join(missing),
                    category, ", ".join(s.value for s in required))
    extra = [s.value for s in chosen if s not in required]
    if extra:
        raise SubmissionError(f"{', '.join(extra)} is not a scenario of a {category} system (the checker rejects it); "
                              "use --category datacenter,edge for Server")
    return chosen


def package(results_dir: Path, system_profile_name: str, model_label: str, org: str, out_tree: Path,
            src_root: Path, *, system_name: str | None = None, profile: SystemProfile | None = None,
            system_overrides: Mapping[str, Any] | None = None, user_conf: Path | None = None,
            benchmark_folder: str | None = None, allow_nonofficial: bool = False, replace: bool = False,
            package_command: str | None = None, scenarios: tuple[Scenario, ...] | None = None,
            division: str = "open", category: str = "edge") -> Packaged:
    """Build ``<out_tree>/<division>/<org>/...`` from ``results/<profile>/<model_label>/<Scenario>``.

    Raises ``SubmissionError`` naming the first reason the runs cannot be submitted
    (every reason is logged). ``profile`` (default: loaded by name) supplies the
    ``system:`` fields of the description; ``system_overrides`` win over it. ``benchmark_folder``
    defaults to the runs' benchmark (``resnet50``; a detector's ``yolo``: ``yolo-99``), or in the open
    division to a trained timm model's card name (mapped to ``resnet`` in ``model_mapping.json``).
    """
    from harness.profile import load_profile

    system_name = _check_names(org, system_name, system_profile_name, model_label, division)
    results_dir, out_tree, src_root = Path(results_dir), Path(out_tree), Path(src_root)
    chosen = choose_scenarios(results_dir, system_profile_name, model_label, division, category, scenarios)
    pairs = [_load_pair(results_dir, system_profile_name, model_label, s, division == "closed") for s in chosen]
    rules = _rules_of(pairs[0].perf)
    benchmark_folder, known = _benchmark_folder(pairs[0].perf.card, rules, benchmark_folder, division)
    seeds = builtin_seeds()
    conf_path = resolve_user_conf(user_conf, pairs[0].perf, results_dir)
    problems = [p for pair in pairs for p in _pair_problems(pair, conf_path, seeds, division, benchmark_folder)]
    if profile is None:
        profile = load_profile(system_profile_name, check_fits=False)
    desc = describe_system(profile.system, org, system_overrides, origin=f"system profile {profile.name!r}: system",
                           division=division, system_type=category)
    system_json = system_json_path(out_tree, division, org, system_name)
    new_system = json.dumps(desc, indent=4) + "\n"
    dests = [packaged_scenario_dir(out_tree, division, org, system_name, benchmark_folder, p.scenario) for p in pairs]
    problems += _tree_problems(desc, division, org, system_json, new_system, dests, replace)
    waived = _refuse(problems, allow_nonofficial)

    # Everything checked: build the new content in a hidden folder of the org, then swap each piece in whole.
    org_root = org_dir(out_tree, division, org)
    org_root.mkdir(parents=True, exist_ok=True)
    stage = _Stage(org_root)
    try:
        git = copy_sources(src_root, stage.at(org_root / "src"))
        write_versions(stage.root / "src" / "versions.txt")  # stage.at(org_root / "src") is stage.root / "src"
        stage.at(system_json).write_text(new_system)
        if known is None:  # open division, a folder of one's own: the checker learns its benchmark here
            _stage_model_mapping(stage, benchmark_folder, rules)
        if division == "closed":  # how the served model was calibrated, from its card
            write_calibration_md(stage.at(org_root / CALIBRATION_MD), [(p.perf.card, p.perf.versions) for p in pairs])
        for pair, dest in zip(pairs, dests):
            provenance = {"harness": "mlperf-cpu", "round": ROUND, "division": division, "category": category,
                          "benchmark_folder": benchmark_folder, "system_profile": system_profile_name,
                          "scenario": pair.scenario.value, "model_label": model_label, "official": not waived,
                          "waived": waived, "accuracy": pair.acc.identity(), "performance": pair.perf.identity(),
                          "user_conf_sha256": sha256_file(conf_path),
                          "git": {k: git[k] for k in ("commit", "modified", "untracked")}}
            _write_scenario(pair, stage.at(dest), conf_path, system_name, division, desc, git, provenance, waived,
                            package_command)
        _swap_in_all(stage.staged, replace, out_tree, org_root, waived)
    finally:
        shutil.rmtree(stage.root, ignore_errors=True)
    return Packaged(out_tree, dests, system_json, official=not waived, waived=waived)


def _check_names(org: str, system_name: str | None, system_profile_name: str, model_label: str,
                 division: str) -> str:
    """Check each name that becomes a folder or file name in the tree (or of the results read)
    before anything is read; return the system's name (``--system-name``, else the profile's)."""
    check_name(org, "--org")
    name = check_name(system_name, "--system-name") if system_name else \
        check_name(system_profile_name, "system profile name")
    check_name(model_label, "model label (--model)")
    if division not in DIVISIONS:
        raise SubmissionError(f"division {division!r}: expected one of {', '.join(DIVISIONS)}")
    return name


def _benchmark_folder(card: ModelCard, rules: BenchmarkRules, explicit: str | None,
                      division: str) -> tuple[str, BenchmarkRules | None]:
    """The benchmark folder of the runs and the rules the checker knows for it (None: a folder of
    one's own). A trained timm model (its card names its weights) is its own open-division folder,
    which model_mapping.json maps to the benchmark; anything else goes in the benchmark's folder."""
    own_folder = card.name if card.weights and division == "open" and rules.model == "resnet50" else None
    folder = explicit or own_folder or rules.default_folder
    check_name(folder, "benchmark folder (--benchmark)")
    known = rules_for_folder(folder)
    if known is not None and known is not rules:
        raise SubmissionError(f"benchmark folder {folder!r} is {known.model}'s, but the runs are "
                              f"{rules.model} ({', '.join(rules.folders)})")
    if known is None and division == "closed":
        raise SubmissionError(f"closed division: benchmark folder {folder!r} is not one the checker "
                              f"knows ({', '.join(rules.folders)})")
    return folder, known


def _tree_problems(desc: Mapping[str, Any], division: str, org: str, system_json: Path, new_system: str,
                   dests: list[Path], replace: bool) -> list[Problem]:
    """The system description's gaps, and what the tree already holds that only ``replace`` may replace."""
    problems: list[Problem] = []
    missing = missing_fields(desc)
    if missing:
        problems.append(Problem(system_json, f"system description lacks {', '.join(missing)} (not readable on this "
                                             "machine: set it in the profile's 'system:' mapping or with --set "
                                             "KEY=VALUE)"))
    problems += [Problem(system_json, p) for p in description_problems(desc, division, org)
                 if not p.startswith("field ")]
    for dest in dests:
        if dest.exists() and not replace:
            problems.append(Problem(dest, "already packaged; pass --replace to replace it"))
    if system_json.is_file() and system_json.read_text() != new_system and not replace:
        problems.append(Problem(system_json, "exists with a different description; pass --replace to replace it"))
    return problems


def _refuse(problems: list[Problem], allow_nonofficial: bool) -> list[str]:
    """Log every problem and raise the first one not waived (``allow_nonofficial`` waives the
    settings rules); return the waived ones."""
    hard = [p for p in problems if not (p.settings and allow_nonofficial)]
    waived = [str(p) for p in problems if p.settings and allow_nonofficial]
    for p in problems:
        log.warning("%s%s", "(waived) " if p.settings and allow_nonofficial else "", p)
    if hard:
        more = f" (and {len(hard) - 1} more problem{'s' if len(hard) > 2 else ''})" if len(hard) > 1 else ""
        raise SubmissionError(f"{hard[0]}{more}")
    return waived


class _Stage:
    """A hidden folder of the org (in the tree's own layout) where new content is built before it is
    swapped in; ``staged`` pairs each built piece with where it goes."""

    def __init__(self, org_root: Path) -> None:
        self.org_root = org_root
        self.root = Path(tempfile.mkdtemp(prefix=f".packaging-{utc_stamp()}-", dir=org_root))
        self.staged: list[tuple[Path, Path]] = []

    def at(self, dest: Path) -> Path:
        """Where ``dest`` is built in the staging folder."""
        built = self.root / dest.relative_to(self.org_root)
        built.parent.mkdir(parents=True, exist_ok=True)
        self.staged.append((built, dest))
        return built


def _stage_model_mapping(stage: _Stage, benchmark_folder: str, rules: BenchmarkRules) -> None:
    """The org's model_mapping.json with ``benchmark_folder`` mapped to its benchmark (the entries
    already there are kept)."""
    mapping_path = stage.org_root / "model_mapping.json"
    mapping = json.loads(mapping_path.read_text()) if mapping_path.is_file() else {}
    mapping[benchmark_folder] = MLPERF_MODEL if rules.model == "resnet50" else rules.default_folder
    stage.at(mapping_path).write_text(json.dumps(mapping, indent=4, sort_keys=True) + "\n")


def _unchanged(built: Path, dest: Path) -> bool:
    """True when ``dest`` already holds exactly what was built (then it is left as it is)."""
    if built.is_dir():
        return dest.is_dir() and same_tree(built, dest)
    return dest.is_file() and dest.read_bytes() == built.read_bytes()


def _swap_in_all(staged: list[tuple[Path, Path]], replace: bool, out_tree: Path, org_root: Path,
                 waived: list[str]) -> None:
    """Move the built content into place, each piece whole; what exists with other content is
    replaced only with ``replace``, and nothing else in the tree (other systems) is touched."""
    changed = [(built, dest) for built, dest in staged if not _unchanged(built, dest)]
    existing = [dest for _built, dest in changed if dest.exists()]
    if existing and not replace:
        raise SubmissionError(f"{existing[0]}: exists with other content; pass --replace to replace it "
                              "(nothing was written)")
    if waived:  # first: a tree holding any of this content is never without its marker
        write_marker(out_tree, waived)
        write_marker(org_root, waived)
        log.warning("tree marked NOT_FOR_SUBMISSION: %s", out_tree)
    for built, dest in changed:
        dest.parent.mkdir(parents=True, exist_ok=True)
        swap_in(built, dest)
        log.info("%s %s", "replaced" if dest in existing else "written", dest)


def _write_scenario(pair: _Pair, out: Path, conf_path: Path, system_name: str, division: str,
                    desc: Mapping[str, Any], git: Mapping[str, Any], provenance: dict[str, Any], waived: list[str],
                    package_command: str | None) -> None:
    """Write one scenario folder at ``out`` (in the staging folder)."""
    acc_dir, perf_dir = pair.acc.directory, pair.perf.directory
    # The packaged scenario folder has the results tree's own layout.
    perf_out, acc_out = run_records.run_dir_in(out, Mode.PERFORMANCE), run_records.run_dir_in(out, Mode.ACCURACY)
    perf_out.mkdir(parents=True)
    acc_out.mkdir()
    for name in (SUMMARY, DETAIL):
        shutil.copy2(perf_dir / name, perf_out / name)
        shutil.copy2(acc_dir / name, acc_out / name)
    provenance["accuracy_log_sha256"] = truncate_accuracy_log(
        acc_dir / ACCURACY_LOG, acc_out / ACCURACY_LOG, acc_dir / ACCURACY_TXT, acc_out / ACCURACY_TXT)
    (out / "measurements.json").write_text(json.dumps(measurements_from_card(pair.perf.card), indent=4) + "\n")
    shutil.copyfile(conf_path, out / "user.conf")
    for mode, (run, _detail) in pair.compliance.items():
        _write_compliance(mode, run, out)
    (out / "README.md").write_text(readme_text(system_name, division, pair.acc, pair.perf, pair.perf_detail,
                                               desc, git, provenance, waived, package_command))


def _write_compliance(mode: Mode, run: RunResult, scenario_out: Path) -> None:
    """``<scenario>/TEST0x/``: the verification verdicts, the compliance run's logs, and (TEST01) its
    sampled accuracy log, laid out as the official run_verification.py leaves them."""
    source = run_records.compliance_dir(run.directory.parents[2], mode)
    dest = run_records.compliance_dir(scenario_out, mode)
    run_out = run_records.run_dir_in(scenario_out, mode)
    run_out.mkdir(parents=True)
    for name in VERIFY_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    for name in (SUMMARY, DETAIL):
        shutil.copy2(run.directory / name, run_out / name)
    if mode is Mode.TEST01:
        (dest / "accuracy").mkdir()  # where run_verification.py puts the compliance run's log
        shutil.copy2(run.directory / ACCURACY_LOG, dest / "accuracy" / ACCURACY_LOG)
