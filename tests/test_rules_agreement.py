"""One rule set: a run says ``submittable`` exactly when ``package`` would take it, for the same reasons.

Real runs (real LoadGen, real OpenVINO) are made with settings that each break submission
rules; for every run, the reasons the runner recorded equal the problems ``package`` finds
with that run, and ``package`` refuses the pair with the first of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import AUTO_QPS, run_loadgen_test

from common.errors import SubmissionError
from common.testspec import Mode, Scenario
from harness.profile import load_profile
from modelprep.card import load_card
from records import results as run_records
from records.results import RunResult
from submit.package import package, scenario_problems

SHORT = ("--min-duration-ms", "1000", *AUTO_QPS)
# Each case: performance-run arguments, and the rules (message fragments) that run must break.
CASES = {
    "short": (SHORT, ["min_duration 1000 ms < 600000 ms", "non-official command-line settings"]),
    "few-samples": (SHORT + ("--performance-sample-count", "256"),
                    ["performance_sample_count 256 < 1024", "min_duration 1000 ms"]),
    # A target far below the real rate: LoadGen issues too few samples and ends early: INVALID.
    "invalid": (("--min-duration-ms", "3000", "--target-qps", "5", "--min-query-count", "1"),
                ["performance run is INVALID, not VALID"]),
}


@pytest.fixture(scope="module")
def accuracy_run(demo_runs: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder holding a copy of the session's Offline accuracy run of the INT8 demo model (made with
    this user.conf)."""
    work = tmp_path_factory.mktemp("agreement")
    (work / "user.conf").write_text("resnet50.Offline.target_qps = 1000\n")
    accuracy = demo_runs["Offline"]["accuracy"].directory
    shutil.copytree(accuracy, work / accuracy.relative_to(accuracy.parents[4]))  # results/host/<model>/...
    return work


@pytest.mark.parametrize("case", sorted(CASES))
def test_runner_and_package_give_the_same_reasons(case: str, accuracy_run: Path, demo_int8: Path,
                                                  demo_data: Path, cache_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(accuracy_run, work)
    extra, expected = CASES[case]
    perf = run_loadgen_test(work, "performance", demo_int8, demo_data / "val", cache_dir, *extra)[1]
    acc = RunResult.load(run_records.run_dir(work / "results", "host", perf.model_label, Scenario.OFFLINE,
                                             Mode.ACCURACY))
    for fragment in expected:
        assert any(fragment in r for r in perf.not_submittable_because), (fragment, perf.not_submittable_because)
    assert perf.submittable is False and acc.submittable is False
    assert any("accuracy run over 450 samples, not 50,000" in r for r in acc.not_submittable_because)

    found = [str(p) for p in scenario_problems(work / "results", "host", perf.model_label, Scenario.OFFLINE)]
    for run in (perf, acc):
        # The accuracy run was made in another directory and copied here: compare paths within the run.
        here = str(run_records.run_dir(work / "results", "host", run.model_label, Scenario.OFFLINE, run.mode).resolve())
        mine = sorted(p.replace(here, "<run>") for p in found if p.startswith((here + "/", here + ":")))
        assert mine == sorted(r.replace(str(run.directory), "<run>") for r in run.not_submittable_because), run.mode

    with pytest.raises(SubmissionError) as refused:
        package(work / "results", "host", perf.model_label, "Org", tmp_path / "tree", Path.cwd(),
                profile=load_profile("host"), system_overrides={"cooling": "air", "system_name": "x",
                                                                "host_memory_configuration": "x"})
    first = str(refused.value).split(" (and ")[0]
    assert first in found
    assert not (tmp_path / "tree").exists()


def test_card_label_names_the_results_folder(demo_f32: Path) -> None:
    card = load_card(demo_f32)
    assert run_records.run_dir(Path("r"), "host", card.label, Scenario.OFFLINE, Mode.PERFORMANCE) == \
        Path("r") / "host" / f"{card.name}-{card.precision}" / "Offline" / "performance" / "run_1"
