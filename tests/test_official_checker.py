"""The official MLCommons submission checker in the loop: ``check --official`` and the
submission flow's last step; also ``calibration.md`` and ``summary --format``.

These are the WIRING tests: the CI machine has no checkout of mlcommons/inference, so each
test writes a small stand-in checker into tmp_path with the real one's module layout
(``tools/submission/submission_checker/main.py``), command line and log format. It records
how it was run, tries to write into its input, prints summary lines, and fails on a marker
file (or hangs on another). The real checker (mlcommons/inference b66003e, round v6.1) was
run by hand through the same command on a tree packaged from these fixtures: it said
"SUMMARY: submission looks OK"; with the perf log's ``effective_samples_per_query`` record
removed our rules pass and it refused the tree; with the run INVALID our rules refuse it
and it passed the tree (both verdicts printed by ``check --official``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from conftest import run_cli
from packaged_tree import copy_packaged
from test_submission import edit_mllog

from common.errors import ConfigError, HarnessError, SubmissionError
from modelprep.card import load_card
from records.rules import OFFICIAL_CALIBRATION_SHA256
from submit.calibration import calibration_md
from submit.official import network_isolation, run_official_checker, verify_tree

STANDIN = '''"""Stand-in for MLCommons' submission_checker.main, written by the test."""
import argparse, json, logging, os, socket, sys, time
logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(filename)s:%(lineno)d %(levelname)s] %(message)s")
log = logging.getLogger("main")
parser = argparse.ArgumentParser()
parser.add_argument("--input", required=True)
parser.add_argument("--version", default="v5.1")
parser.add_argument("--csv", default="summary.csv")
args = parser.parse_args()
files = sorted(os.path.relpath(os.path.join(d, f), args.input) for d, _, fs in os.walk(args.input) for f in fs)
net = sorted(name for _index, name in socket.if_nameindex())  # the interfaces of its network namespace
with open(RECORD, "w") as fh:
    json.dump({"cwd": os.getcwd(), "argv": sys.argv[1:], "home": os.environ.get("HOME"), "interfaces": net,
               "files": files, "pid": os.getpid()}, fh)
with open(os.path.join(args.input, "checker-was-here.log"), "w") as fh:  # a checker that leaves logs
    fh.write("log")
with open(args.csv, "w") as fh:
    fh.write("Organization\\n")
if any(f.endswith("STANDIN_HANG") for f in files):
    time.sleep(600)
failed = [os.path.join(args.input, f) for f in files if f.endswith("STANDIN_FAIL")]
for path in failed:
    log.error("%s is marked as failing", path)
log.info("---")
log.info("Results=%d, NoResults=%d, Power Results=0", 0 if failed else 1, len(failed))
log.info("---")
if failed:
    log.error("SUMMARY: submission has errors")
    sys.exit(1)
log.info("SUMMARY: submission looks OK")
'''


def make_standin(root: Path, rounds: str = '"v6.1"') -> tuple[Path, Path]:
    """A stand-in checkout at ``root``; returns (checkout, the file its runs record themselves in)."""
    package = root / "tools" / "submission" / "submission_checker"
    package.mkdir(parents=True)
    record = root / "record.json"
    (package / "__init__.py").write_text("")
    (package / "constants.py").write_text(f"MODEL_CONFIG = {{{rounds}: {{}}}}\n")
    (package / "main.py").write_text(f"RECORD = {str(record)!r}\n" + STANDIN)
    return root, record


def digest(tree: Path) -> dict[str, str]:
    """Every file of ``tree`` (relative path) -> sha256 of its bytes."""
    return {str(p.relative_to(tree)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(tree.rglob("*")) if p.is_file()}


@pytest.fixture()
def tree(official: Path, tmp_path: Path) -> Path:
    """A private copy of a real packaged tree that this harness's rules pass."""
    return copy_packaged(official, tmp_path)["tree"]


@pytest.fixture()
def standin(tmp_path: Path) -> tuple[Path, Path]:
    return make_standin(tmp_path / "inference")


def test_check_runs_the_checker_from_its_folder_on_a_copy_and_relays_its_summary(
        tree: Path, standin: tuple[Path, Path], tmp_path: Path) -> None:
    checkout, record = standin
    before = digest(tree)
    proc = run_cli(["check", "--tree", str(tree), "--official", str(checkout)], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    seen = json.loads(record.read_text())
    # Run the documented way: python -m submission_checker.main --input <tree> --version v6.1, from tools/submission.
    assert seen["cwd"] == str(checkout / "tools" / "submission")
    copy = Path(seen["argv"][1])
    assert seen["argv"][0] == "--input" and seen["argv"][2:4] == ["--version", "v6.1"] and seen["argv"][4] == "--csv"
    # ... on a copy holding every file of the tree, in a temporary folder that is gone afterwards.
    assert copy != tree and tree not in copy.parents and not copy.exists()
    assert seen["files"] == sorted(before) and seen["home"] != os.environ.get("HOME")
    assert digest(tree) == before  # the user's tree is untouched: the checker's own log went to the copy
    assert not list(checkout.rglob("__pycache__")) and not (checkout / "tools" / "submission" / "summary.csv").exists()
    if network_isolation():  # where the kernel allows a namespace, the checker has loopback only
        assert seen["interfaces"] == ["lo"]
    assert "official: INFO SUMMARY: submission looks OK" in proc.stdout
    assert "official: INFO Results=1, NoResults=0, Power Results=0" in proc.stdout
    assert f"{tree}: this harness's rules: OK" in proc.stdout
    assert f"{tree}: official checker v6.1: OK" in proc.stdout and proc.stdout.rstrip().endswith(f"{tree}: OK")


def test_a_tree_our_rules_pass_and_the_official_checker_refuses(tree: Path, standin: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    marker = next(tree.rglob("measurements.json")).parent / "STANDIN_FAIL"
    marker.write_text("")
    proc = run_cli(["check", "--tree", str(tree), "--official", str(standin[0])], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert f"{tree}: this harness's rules: OK" in proc.stdout
    # Its error lines name the user's tree, not the temporary copy it read.
    assert f"official: ERROR {marker} is marked as failing" in proc.stdout
    assert "official: ERROR SUMMARY: submission has errors" in proc.stdout
    assert f"{tree}: official checker v6.1: FAILED (ERROR SUMMARY: submission has errors)" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (f"ERROR: {tree}: official checker v6.1: FAILED "
                                                    "(ERROR SUMMARY: submission has errors)")


def test_a_tree_the_official_checker_passes_and_our_rules_refuse(tree: Path, standin: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    """The official checker does not reject an INVALID performance run; our rules do. Both are reported."""
    detail = next(tree.rglob("performance/run_1/mlperf_log_detail.txt"))
    edit_mllog(detail, "result_validity", "INVALID")
    proc = run_cli(["check", "--tree", str(tree), "--official", str(standin[0])], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert f"{detail}: performance run is INVALID, not VALID" in proc.stdout
    assert f"{tree}: this harness's rules: 1 problem" in proc.stdout
    assert f"{tree}: official checker v6.1: OK" in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ERROR: {tree}: 1 problem; first: {detail}: performance run is INVALID") \
        and "official checker" not in last


def test_a_hanging_checker_is_stopped_at_the_time_limit(tree: Path, standin: tuple[Path, Path]) -> None:
    checkout, record = standin
    (tree / "STANDIN_HANG").write_text("")
    started = time.monotonic()
    with pytest.raises(HarnessError, match="did not finish within 3 s"):
        run_official_checker(tree, checkout, timeout_s=3)
    assert time.monotonic() - started < 60
    with pytest.raises(ProcessLookupError):  # killed with its process group, not left sleeping
        os.kill(json.loads(record.read_text())["pid"], 0)


def test_links_keep_the_tree_from_the_official_checker(tree: Path, standin: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("secret\n")
    (tree / "open" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(HarnessError, match="official checker not run: the tree holds links"):
        run_official_checker(tree, standin[0])
    assert not standin[1].exists()


def test_a_wrong_checkout_is_one_line_naming_it(tree: Path, tmp_path: Path) -> None:
    proc = run_cli(["check", "--tree", str(tree), "--official", str(tmp_path / "nowhere")], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--official {tmp_path / 'nowhere'}: not a checkout of mlcommons/inference" in proc.stderr
    old, _record = make_standin(tmp_path / "old", rounds='"v5.1"')
    with pytest.raises(ConfigError, match="does not know round v6.1"):
        run_official_checker(tree, old)


def test_the_submission_flow_ends_with_both_verdicts(tree: Path, standin: tuple[Path, Path],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """``pipeline --submission --official-checker DIR``'s last step (the runs before it take 40 minutes)."""
    caplog.set_level("INFO")
    assert verify_tree(tree, standin[0]).ok
    assert "official: INFO SUMMARY: submission looks OK" in caplog.text
    (next(tree.rglob("measurements.json")).parent / "STANDIN_FAIL").write_text("")
    with pytest.raises(SubmissionError, match="official checker v6.1: FAILED"):
        verify_tree(tree, standin[0])
    assert verify_tree(tree) is None  # without a checkout: our rules only


def test_pipeline_takes_the_checkout_and_refuses_a_wrong_one_before_any_run(tmp_path: Path) -> None:
    from cli.main import main, main_parser

    args = main_parser().parse_args(["pipeline", "--submission", "--official-checker", str(tmp_path)])
    assert args.official_checker == tmp_path
    started = time.monotonic()
    assert main(["pipeline", "--submission", "--official-checker", str(tmp_path / "nowhere"),
                 "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results")]) == 2
    assert time.monotonic() - started < 30 and not (tmp_path / "work").exists()
    assert main(["pipeline", "--official-checker", str(tmp_path)]) == 2  # only with --submission


# ----------------------------------------------------------------------------- calibration.md
def test_calibration_md_comes_from_the_card(demo_int8: Path, demo_f32: Path) -> None:
    card = load_card(demo_int8)
    text = calibration_md([(card, {"nncf": "2.99.0", "openvino": "2026.4.1"})])
    cal = card.calibration
    assert f"`{Path(cal['list']).name}` (sha256 `{cal['list_sha256']}`): NOT an official MLCommons list" in text
    assert f"Calibration images: {cal['images']} " in text and f"NNCF preset: {cal['preset']}" in text
    assert "NNCF 2.99.0, OpenVINO 2026.4.1" in text and card.source_sha256 in text
    official = dataclasses.replace(card, calibration={**cal, "list_sha256": next(iter(OFFICIAL_CALIBRATION_SHA256))})
    assert "the official MLCommons list `cal_image_list_option_1.txt`" in calibration_md([(official, {})])
    assert "No quantization and no calibration" in calibration_md([(load_card(demo_f32), {})])


def test_check_wants_calibration_md_in_a_closed_tree(tree: Path) -> None:
    from submit.check import check_tree

    (tree / "open").rename(tree / "closed")
    problems = "\n".join(check_tree(tree))
    assert "closed/TestOrg/documentation/calibration.md: missing" in problems
    (tree / "closed" / "TestOrg" / "documentation").mkdir()
    (tree / "closed" / "TestOrg" / "documentation" / "calibration.md").write_text("# Calibration\n")
    assert "calibration.md" not in "\n".join(check_tree(tree))


# ----------------------------------------------------------------------------- summary --format
def test_summary_formats_and_a_missing_directory(runs: dict[str, Path], tmp_path: Path) -> None:
    import csv

    results = runs["results"]
    proc = run_cli(["summary", "--results", str(results), "--format", "csv"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(proc.stdout.splitlines()))
    header = proc.stdout.splitlines()[0]
    assert header.startswith("Organization,Availability,Division,SystemType,SystemName,Platform,Model,MlperfModel,"
                             "Scenario,Result,Accuracy,") and header.endswith(",design_power_watts,PrivateID")
    assert len(rows) == 1 and rows[0]["Scenario"] == "Offline" and rows[0]["MlperfModel"] == "resnet"
    assert rows[0]["Platform"] == "host" and rows[0]["Model"] == runs["label"] and rows[0]["Units"] == "Samples/s"
    perf = json.loads((runs["perf"] / "result.json").read_text())
    acc = json.loads((runs["acc"] / "result.json").read_text())
    assert float(rows[0]["Result"]) == pytest.approx(perf["loadgen"]["result_samples_per_second"], rel=1e-5)
    assert rows[0]["Accuracy"] == f"acc: {acc['accuracy']['top1_percent']:.3f}"
    proc = run_cli(["summary", "--results", str(results), "--format", "json"], cwd=tmp_path)
    records = json.loads(proc.stdout)
    assert sorted(r["mode"] for r in records) == ["accuracy", "performance"]
    proc = run_cli(["summary", "--results", str(results)], cwd=tmp_path)
    assert proc.stdout.startswith("| run | status |") and proc.stdout.count("\n| ") == 2
    proc = run_cli(["summary", "--results", str(tmp_path / "missing")], cwd=tmp_path)
    assert proc.returncode == 2 and f"--results {tmp_path / 'missing'}: not a directory" in proc.stderr
