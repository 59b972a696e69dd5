"""A detector's runs packaged into the v6.1 tree (yolo-99 / yolo-95) and checked, on real LoadGen logs.

The tiny UNTRAINED detector and the 12-image COCO set of tests/detector_builders.py; the runs are
short (non-official), so packaging waives the settings rules and marks the tree; everything else
(benchmark folder, mAP accuracy.txt, TEST01-only compliance, README) is the real thing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import AUTO_QPS, REPO, run_loadgen_test
from detector_builders import make_coco_set, make_detector

from common.errors import SubmissionError
from harness.profile import load_profile
from records.results import RunResult
from records.rules import BENCHMARKS, closed_accuracy_problems, closed_model_problems, parse_metric_txt, rules_for_folder
from submit.check import check_tree
from submit.package import package

CARD = {"name": "tinydet", "task": "detection", "input_size": 64, "num_classes": 3, "category_ids": [1, 2, 3],
        "mean": [0, 0, 0], "std": [255, 255, 255], "letterbox_pad": 114, "trained": False, "notes": "untrained"}
FIELDS = {"system_name": "Test VM (2 cores)", "cooling": "air (test value)",
          "host_memory_configuration": "not exposed to the guest (test value)"}
SHORT = ("--min-duration-ms", "300", "--min-query-count", "700", *AUTO_QPS)


@pytest.fixture(scope="module")
def detection_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/host/tinydet-f32/{SingleStream,MultiStream,Offline}: accuracy + short performance runs."""
    from modelprep.prepare import PrepareRequest, prepare

    work = tmp_path_factory.mktemp("detsub")
    (work / "user.conf").write_text((REPO / "user.conf").read_text())
    coco = make_coco_set(work / "coco")
    model = prepare(PrepareRequest(make_detector(work / "tinydet.onnx", card=CARD), "f32", work / "models",
                                   work / "cache", task="detection"))
    for scenario in ("SingleStream", "MultiStream", "Offline"):
        run_loadgen_test(work, "accuracy", model, coco, work / "cache", scenario=scenario)
        _, perf = run_loadgen_test(work, "performance", model, coco, work / "cache", *SHORT, scenario=scenario)
        assert perf.validity == "VALID", perf.invalid_because()
    return work


def _package(work: Path, out: Path, **kw):
    return package(work / "results", "host", "tinydet-f32", "Demo", out, REPO, profile=load_profile("host"),
                   system_overrides=FIELDS, user_conf=work / "user.conf", **kw)


def test_detector_runs_package_into_a_yolo_99_tree_that_check_accepts(detection_runs: Path, tmp_path: Path) -> None:
    done = _package(detection_runs, tmp_path / "tree", allow_nonofficial=True)
    assert [d.parent.name for d in done.scenario_dirs] == ["yolo-99"] * 3
    assert sorted(d.name for d in done.scenario_dirs) == ["MultiStream", "Offline", "SingleStream"]
    assert any("accuracy run over 12 samples, not 1,525" in w for w in done.waived)
    acc_txt = done.scenario_dir / "accuracy" / "accuracy.txt"
    value, images, digest = parse_metric_txt(acc_txt, "mAP")
    assert value is not None and images == 12 and digest and len(digest) == 64
    assert "COCO mAP" in (done.scenario_dir / "README.md").read_text()
    assert not (tmp_path / "tree" / "open" / "Demo" / "model_mapping.json").exists()  # yolo-99 is the checker's name
    # Only what the short runs waive: the mAP accuracy.txt, its hash, the logs and files all pass.
    expected = ("not for submission", "min_duration 300 ms < 600000 ms", "accuracy run over 12 samples, not 1,525",
                "non-official command-line settings")
    problems = check_tree(tmp_path / "tree")
    assert problems and all(any(e in p for e in expected) for p in problems), problems


def test_yolo_95_folder_and_closed_division_refusals(detection_runs: Path, tmp_path: Path) -> None:
    done = _package(detection_runs, tmp_path / "t95", allow_nonofficial=True, benchmark_folder="yolo-95",
                    scenarios=None)
    assert {d.parent.name for d in done.scenario_dirs} == {"yolo-95"}
    with pytest.raises(SubmissionError, match="benchmark folder 'resnet50' is resnet50's, but the runs are yolo"):
        _package(detection_runs, tmp_path / "t2", allow_nonofficial=True, benchmark_folder="resnet50")
    with pytest.raises(SubmissionError, match=r"no TEST01 run \(the closed division needs TEST01 in every scenario\)"):
        _package(detection_runs, tmp_path / "t3", allow_nonofficial=True, division="closed")
    card = RunResult.load(next((detection_runs / "results").rglob("accuracy"))).card
    problems = [str(p) for p in closed_model_problems(card, tmp_path / "card.json")]
    assert problems and "is not the reference yolo model" in problems[0]


def test_yolo_closed_targets_and_folders() -> None:
    yolo = BENCHMARKS["yolo"]
    assert rules_for_folder("yolo-99") is yolo and rules_for_folder("yolo-95") is yolo
    assert rules_for_folder("resnet") is BENCHMARKS["resnet50"] and rules_for_folder("yolo") is None
    assert rules_for_folder("mine", {"mine": "yolo-95"}) is yolo
    assert yolo.target("yolo-99") == pytest.approx(52.866) and yolo.target("yolo-95") == pytest.approx(50.73)
    assert (yolo.accuracy_samples, yolo.performance_samples) == (1525, 64)
    assert [m.value for m in yolo.compliance] == ["TEST01"]
    assert closed_accuracy_problems(51.0, yolo, "yolo-95", Path("a")) == []
    assert "mAP 51.000 % < 52.8660 %" in str(closed_accuracy_problems(51.0, yolo, "yolo-99", Path("a"))[0])


def test_pipeline_task_detection_prepares_and_scores_a_real_detector(tmp_path: Path) -> None:
    """``run_offline.sh --task detection --model M --dataset COCO --mode accuracy``: prepare as a detector, mAP."""
    from conftest import run_cli

    (tmp_path / "user.conf").write_text((REPO / "user.conf").read_text())
    coco = make_coco_set(tmp_path / "coco", count=6)
    source = make_detector(tmp_path / "tinydet.onnx", card=CARD)
    proc = run_cli(["pipeline", "--task", "detection", "--model", str(source), "--dataset", str(coco),
                    "--precision", "f32", "--mode", "accuracy", "--work", str(tmp_path / "work"),
                    "--results", str(tmp_path / "results")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = RunResult.load(tmp_path / "results" / "host" / "tinydet-f32" / "Offline" / "accuracy")
    assert run.benchmark == "yolo" and run.accuracy.metric == "mAP" and run.accuracy.total == 6
    assert run.card.is_detector and run.card.category_ids == (1, 2, 3)
