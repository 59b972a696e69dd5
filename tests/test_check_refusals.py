"""Every refusal of ``check`` (submit/check.py), one tampering of a real packaged tree each.

The tree is packaged from real LoadGen runs (``packaged_tree``) and passes ``check``; each
case breaks exactly one thing and expects the problem line naming the file and the reason.
The refusals covered by ``test_submission`` (untruncated log, missing hash, system fields,
mismatched models) and by ``test_check_foreign_tree`` (links, caps, types) are not repeated.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest
from packaged_tree import copy_packaged, edit_provenance
from test_submission import SYSTEM_NAME, add_mllog_error, edit_json, edit_mllog

from submit.check import check_tree


@pytest.fixture()
def t(official: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of a clean packaged tree (check passes it) and its main paths."""
    paths = copy_packaged(official, tmp_path)
    assert check_tree(paths["tree"]) == []
    return paths


def _closed(t: dict[str, Path]) -> None:
    """The same files presented as a closed entry."""
    (t["tree"] / "open").rename(t["tree"] / "closed")
    system = t["tree"] / "closed" / "TestOrg" / "systems" / f"{SYSTEM_NAME}.json"
    edit_json(system, lambda d: d.update(division="closed"))


def _accuracy_txt(t: dict[str, Path], old: str, new: str) -> None:
    path = t["acc"] / "accuracy.txt"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


CASES: list[tuple[str, Callable[[dict[str, Path]], None], str]] = [
    ("no-division", lambda t: (t["tree"] / "open").rename(t["tree"] / "elsewhere"),
     "tree: no open/ or closed/ division folder"),
    ("network-division", lambda t: (t["tree"] / "open").rename(t["tree"] / "network"),
     "network: network division: this harness packages open and closed only"),
    ("marked", lambda t: (t["tree"] / "NOT_FOR_SUBMISSION.txt").write_text("testing\n"),
     "NOT_FOR_SUBMISSION.txt: tree is marked not for submission"),
    ("no-src", lambda t: shutil.rmtree(t["org"] / "src"), "TestOrg/src: src directory missing or empty"),
    ("mapping-json", lambda t: (t["org"] / "model_mapping.json").write_text("{"),
     "TestOrg/model_mapping.json: invalid JSON at line 1"),
    ("no-results", lambda t: shutil.rmtree(t["org"] / "results"), "TestOrg/results: no results"),
    ("no-system-json", lambda t: t["system"].unlink(), f"systems/{SYSTEM_NAME}.json: system description missing"),
    ("system-json", lambda t: t["system"].write_text("{\n"), f"systems/{SYSTEM_NAME}.json: invalid JSON at line 2"),
    ("system-type", lambda t: edit_json(t["system"], lambda d: d.update(system_type="datacenter")),
     "system_type 'datacenter': resnet50 and yolo are edge benchmarks"),
    ("unknown-benchmark", lambda t: t["bench"].rename(t["bench"].with_name("mobilenet-x")),
     "mobilenet-x: not a benchmark this harness knows"),
    ("unknown-scenario", lambda t: (t["bench"] / "Serverless").mkdir(),
     "resnet50/Serverless: scenario folder 'Serverless' is not one of this system's"),
    ("server-on-edge", lambda t: t["scen"].rename(t["bench"] / "Server"),
     "resnet50/Server: scenario folder 'Server' is not one of this system's (SingleStream, MultiStream, Offline)"),
    ("missing-summary", lambda t: (t["perf"] / "mlperf_log_summary.txt").unlink(),
     "run_1/mlperf_log_summary.txt: missing or empty"),
    ("empty-user-conf", lambda t: (t["scen"] / "user.conf").write_text(""), "Offline/user.conf: missing or empty"),
    ("loadgen-error", lambda t: add_mllog_error(t["perf"] / "mlperf_log_detail.txt", "Multiple conf files are used."),
     "run_1/mlperf_log_detail.txt: LoadGen error in the log: error_invalid_config: Multiple conf files are used."),
    ("scenario-in-log", lambda t: edit_mllog(t["perf"] / "mlperf_log_detail.txt", "effective_scenario",
                                             "SingleStream"),
     "run_1/mlperf_log_detail.txt: scenario is 'SingleStream', not Offline"),
    ("test-mode", lambda t: edit_mllog(t["perf"] / "mlperf_log_detail.txt", "effective_test_mode", "AccuracyOnly"),
     "run_1/mlperf_log_detail.txt: test mode is 'AccuracyOnly', not PerformanceOnly"),
    ("no-accuracy-line", lambda t: _accuracy_txt(t, "accuracy=", "acc ="),
     "accuracy/accuracy.txt: no 'accuracy=<p>%, good=<n>, total=<n>' line"),
    ("accuracy-total", lambda t: _accuracy_txt(t, "total=50000", "total=49999"),
     "accuracy/accuracy.txt: total=49999 but LoadGen ran 50000 accuracy samples"),
    ("hash-not-sha256", lambda t: _accuracy_txt(t, "hash=", "hash=abc"), "is not a sha256"),
    ("measurements-json", lambda t: (t["scen"] / "measurements.json").write_text("{"),
     "Offline/measurements.json: invalid JSON at line 1"),
    ("no-provenance", lambda t: (t["scen"] / "README.md").write_text("# a README without its block\n"),
     "Offline/README.md: no machine-readable provenance block"),
    ("not-official", lambda t: edit_provenance(t["scen"] / "README.md", lambda b: b.update(official=False)),
     "Offline/README.md: packaged with --allow-nonofficial: not for submission"),
    ("overrides", lambda t: edit_provenance(t["scen"] / "README.md",
                                            lambda b: b["performance"].update(overrides={"target_qps": 1.0})),
     "Offline/README.md: performance run used non-official command-line settings {'target_qps': 1.0}"),
    ("engine", lambda t: edit_provenance(t["scen"] / "README.md",
                                         lambda b: b["performance"]["engine"].update(batch_size=3)),
     "Offline/README.md: accuracy and performance runs used different engine settings (batch_size: "),
    ("user-conf-qps", lambda t: (t["scen"] / "user.conf").write_text("resnet50.Offline.target_qps = 1\n"),
     "Offline/user.conf: target_qps = 1 but the performance run used"),
    ("user-conf-syntax", lambda t: (t["scen"] / "user.conf").write_text("not a setting\n"),
     "Offline/user.conf:1: expected 'model.scenario.key = value'"),
    ("closed-compliance", _closed, "Offline/TEST01/verify_accuracy.txt: missing (the closed division needs TEST01"),
    ("closed-scenarios", _closed, "closed division: SingleStream, MultiStream missing (a edge system needs "
                                  "SingleStream, MultiStream, Offline)"),
    ("closed-test04-logs", _closed, "TEST04/performance/run_1/mlperf_log_detail.txt: missing: no TEST04 run logs"),
]


@pytest.mark.parametrize("tamper, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_refuses(t: dict[str, Path], tamper: Callable[[dict[str, Path]], None], needle: str) -> None:
    tamper(t)
    problems = check_tree(t["tree"])
    assert any(needle in p for p in problems), "\n".join(problems)
    assert not any("could not be checked" in p for p in problems), "\n".join(problems)


def test_check_of_a_path_that_is_not_a_directory(tmp_path: Path) -> None:
    assert check_tree(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a directory"]
    (tmp_path / "file").write_text("x")
    assert check_tree(tmp_path / "file") == [f"{tmp_path / 'file'}: not a directory"]

