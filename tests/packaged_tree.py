"""Official-looking real runs for the tests of ``package``, ``check`` and the official checker, built once per session.

One real accuracy run and one real short performance run of the demo model (``real_runs``), then
a copy edited to 600 s and 50,000 samples (``official_runs``). Session fixtures belong to the
module that defines them, so every test module that needs these runs reaches them through the
functions here (or the ``official`` fixture in ``conftest``) and they are built once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

from conftest import AUTO_QPS, REPO, run_loadgen_test
from test_submission import OFFICIAL_SAMPLES, edit_json, edit_mllog, write_accuracy_log

from common.testspec import Scenario
from modelprep.card import load_card
from records import results as run_records
from records.results import RunResult

_BUILT: dict[Path, Path] = {}


def real_runs(session_dir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> Path:
    """``results/host/<model>/Offline`` from one real accuracy run and one real 2 s performance run; built once."""
    work = session_dir / "submission_runs"
    if work in _BUILT:
        return _BUILT[work]
    work.mkdir(parents=True)
    (work / "user.conf").write_text((REPO / "user.conf").read_text())
    scenario = run_records.scenario_dir(work / "results", "host", load_card(demo_f32).label, Scenario.OFFLINE)

    def run(mode: str, *extra: str) -> RunResult:
        return run_loadgen_test(work, mode, demo_f32, demo_data / "val", cache_dir, *extra)[1]

    run("accuracy")
    perf = run("performance", "--min-duration-ms", "2000", *AUTO_QPS)
    if perf.validity != "VALID":  # warm-up underestimated a busy machine: aim higher once
        perf = run("performance", "--min-duration-ms", "2000", "--target-qps", str(2 * perf.samples_per_second),
                   "--replace")
    assert perf.validity == "VALID", "the short real run must be VALID for these tests"
    _BUILT[work] = scenario
    return scenario


def official_runs(session_dir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> Path:
    """``<root>`` holding ``results/host/<model>/Offline`` (the real runs edited to look official: 600 s,
    50,000 accuracy samples, no overrides) and ``user.conf``; built once."""
    base = session_dir / "official_base"
    if base in _BUILT:
        return _BUILT[base]
    real = real_runs(session_dir, demo_f32, demo_data, cache_dir)
    scenario = base / "results" / "host" / real.parent.name / "Offline"
    shutil.copytree(real, scenario)
    perf_dir, acc_dir = scenario / "performance" / "run_1", scenario / "accuracy"
    edit_mllog(perf_dir / "mlperf_log_detail.txt", "effective_min_duration_ms", 600_000)
    write_accuracy_log(acc_dir, OFFICIAL_SAMPLES)
    conf = f"resnet50.Offline.target_qps = {RunResult.load(perf_dir).target_qps}\n"
    (base / "user.conf").write_text(conf)
    digest = hashlib.sha256(conf.encode()).hexdigest()
    for run_dir in (perf_dir, acc_dir):
        edit_json(run_dir / "result.json", lambda r: r.update(overrides={}, user_conf_sha256=digest))
    _BUILT[base] = base
    return base


def copy_runs(base: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of the official-looking runs, shaped like ``test_submission``'s ``runs`` fixture."""
    root = tmp_path / "runs"
    shutil.copytree(base, root)
    scenario = next((root / "results" / "host").iterdir()) / "Offline"
    return {"results": root / "results", "label": scenario.parent.name, "user_conf": root / "user.conf",
            "perf": scenario / "performance" / "run_1", "acc": scenario / "accuracy", "out": tmp_path / "tree"}


def edit_provenance(readme: Path, change: Callable[[dict], None]) -> None:
    """Edit the machine-readable provenance block of a packaged README in place."""
    text = readme.read_text()
    start = text.index("```json\n", text.index("## Provenance (machine-readable)")) + len("```json\n")
    end = text.index("\n```", start)
    block = json.loads(text[start:end])
    change(block)
    readme.write_text(text[:start] + json.dumps(block, indent=2) + text[end:])


def packaged_once(base: Path) -> Path:
    """A tree packaged (open division, Offline) from the runs at ``base``, built once per session;
    tests copy it (``copy_packaged``) rather than packaging again."""
    from test_submission import do_package

    staging = base.parent / "packaging"
    if staging in _BUILT:
        return _BUILT[staging]
    runs = copy_runs(base, staging)
    do_package(runs)
    _BUILT[staging] = runs["out"]
    return runs["out"]


def copy_packaged(base: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of the packaged tree and its main paths: tamper freely."""
    from test_submission import ORG, SYSTEM_NAME

    tree = tmp_path / "tree"
    shutil.copytree(packaged_once(base), tree, symlinks=True)
    org = tree / "open" / ORG
    scen = org / "results" / SYSTEM_NAME / "resnet50" / "Offline"
    return {"tree": tree, "org": org, "scen": scen, "bench": scen.parent, "system": org / "systems" /
            f"{SYSTEM_NAME}.json", "perf": scen / "performance" / "run_1", "acc": scen / "accuracy"}
