"""``check`` on a tree that may come from anyone: a real packaged tree, tampered.

The tree is packaged from the real LoadGen runs of ``test_submission`` (copied per test),
then tampered the ways a foreign tree can be: links out of the tree, a FIFO, an
oversized log, values of the wrong JSON type, MLLOG lines that are not records. Each
must be one listed problem naming the file (and key), with no traceback, nothing read
from outside the tree, and the other problems still listed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest
from conftest import run_cli
from packaged_tree import copy_packaged, edit_provenance
from test_submission import SYSTEM_NAME, edit_json, edit_mllog

from submit.check import check_tree
from submit.treeview import MIB, cap_for

SECRET = "resnet50.Offline.target_qps = 31337 # SECRET-OUTSIDE-THE-TREE"


@pytest.fixture()
def packaged(official: Path, tmp_path: Path) -> dict[str, Path]:
    """A private copy of a clean packaged tree (check passes it), and a secret file outside it."""
    paths = copy_packaged(official, tmp_path)
    assert check_tree(paths["tree"]) == []
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.conf").write_text(SECRET + "\n")
    return {**paths, "outside": outside}


def _link_user_conf(t: dict[str, Path]) -> None:
    (t["scen"] / "user.conf").unlink()
    (t["scen"] / "user.conf").symlink_to(t["outside"] / "secret.conf")


def _hard_link_user_conf(t: dict[str, Path]) -> None:
    (t["scen"] / "user.conf").unlink()
    os.link(t["outside"] / "secret.conf", t["scen"] / "user.conf")  # its other name is outside the tree


def _link_run_dir(t: dict[str, Path]) -> None:
    """The accuracy folder replaced by a link to a folder outside holding a (secret) detail log."""
    elsewhere = t["outside"] / "accuracy"
    elsewhere.mkdir()
    for f in t["acc"].iterdir():
        (elsewhere / f.name).write_bytes(f.read_bytes())
    with (elsewhere / "mlperf_log_detail.txt").open("a") as fh:
        fh.write(":::MLLOG " + json.dumps({"key": "error_secret", "value": SECRET, "metadata": {"is_error": True}})
                 + "\n")
    for f in t["acc"].iterdir():
        f.unlink()
    t["acc"].rmdir()
    t["acc"].symlink_to(elsewhere, target_is_directory=True)


def _fifo_readme(t: dict[str, Path]) -> None:
    (t["scen"] / "README.md").unlink()
    os.mkfifo(t["scen"] / "README.md")  # opening it to read would block check forever


def _oversized_log(t: dict[str, Path]) -> None:
    os.truncate(t["perf"] / "mlperf_log_detail.txt", cap_for(t["perf"] / "mlperf_log_detail.txt")[1] + 1)


def _string_duration(t: dict[str, Path]) -> None:
    edit_mllog(t["perf"] / "mlperf_log_detail.txt", "effective_min_duration_ms", "600000")


def _list_sample_count(t: dict[str, Path]) -> None:
    edit_mllog(t["perf"] / "mlperf_log_detail.txt", "effective_performance_sample_count", [1024])


def _string_sample_count(t: dict[str, Path]) -> None:
    edit_mllog(t["acc"] / "mlperf_log_detail.txt", "effective_accuracy_sample_count", "50000")


def _measurement_field_list(t: dict[str, Path]) -> None:
    edit_json(t["scen"] / "measurements.json", lambda d: d.update(retraining=["No"]))


def _mllog_list(t: dict[str, Path]) -> None:
    with (t["acc"] / "mlperf_log_detail.txt").open("a") as fh:
        fh.write(":::MLLOG []\n")


def _mllog_metadata(t: dict[str, Path]) -> None:
    with (t["acc"] / "mlperf_log_detail.txt").open("a") as fh:
        fh.write(':::MLLOG {"key": "loadgen_version", "value": "6.0.17", "metadata": [1, 2]}\n')


def _system_list(t: dict[str, Path]) -> None:
    t["system"].write_text(json.dumps([json.loads(t["system"].read_text())]))


def _system_field_list(t: dict[str, Path]) -> None:
    edit_json(t["system"], lambda d: d.update(status=["available"]))


def _measurements_list(t: dict[str, Path]) -> None:
    (t["scen"] / "measurements.json").write_text("[]")


def _mapping_list(t: dict[str, Path]) -> None:
    (t["org"] / "model_mapping.json").write_text(json.dumps({"resnet50": ["resnet"]}))


def _provenance_list(t: dict[str, Path]) -> None:
    edit_provenance(t["scen"] / "README.md", lambda b: b["performance"].update(card=["not", "a", "card"]))


def _qps_string(t: dict[str, Path]) -> None:
    edit_mllog(t["perf"] / "mlperf_log_detail.txt", "effective_target_qps", "fast")


def _binary_user_conf(t: dict[str, Path]) -> None:
    (t["scen"] / "user.conf").write_bytes(b"\xff\xfe\x00resnet50\n")


def _control_name(t: dict[str, Path]) -> None:
    """A scenario folder whose name would move the cursor and forge a line if printed raw."""
    (t["scen"].parent / "Offline\x1b[2K\rall good").mkdir()


CASES: list[tuple[str, Callable, list[str]]] = [
    ("user-conf-link", _link_user_conf, ["Offline/user.conf: is a symbolic link", "Offline/user.conf: missing"]),
    ("user-conf-hard-link", _hard_link_user_conf, ["Offline/user.conf: has other hard links (its other name may "
                                                   "be outside the tree): not read"]),
    ("run-dir-link", _link_run_dir, ["Offline/accuracy: is a symbolic link",
                                     "accuracy/mlperf_log_detail.txt: missing or empty"]),
    ("fifo", _fifo_readme, ["Offline/README.md: is a FIFO, not a regular file"]),
    ("oversized-log", _oversized_log, ["run_1/mlperf_log_detail.txt: 33,554,433 bytes, over check's detail-log cap "
                                       "of 32 MiB: not read"]),
    ("string-number", _string_duration, ["run_1/mlperf_log_detail.txt: effective_min_duration_ms is '600000' "
                                         "(a JSON string), not a number"]),
    ("list-number", _list_sample_count, ["run_1/mlperf_log_detail.txt: effective_performance_sample_count is "
                                         "[1024] (a JSON array), not a number"]),
    ("string-count", _string_sample_count, ["accuracy/mlperf_log_detail.txt: effective_accuracy_sample_count is "
                                            "'50000' (a JSON string), not a number"]),
    ("measurement-field-list", _measurement_field_list, ["Offline/measurements.json: field 'retraining' is a JSON "
                                                         "array, not a string"]),
    ("mllog-list", _mllog_list, ["accuracy/mlperf_log_detail.txt: malformed: line ",
                                 "MLLOG record is not an object with a string key (list)"]),
    ("mllog-metadata", _mllog_metadata, ["accuracy/mlperf_log_detail.txt: malformed: line ",
                                         "'loadgen_version': metadata is a list, not an object"]),
    ("system-list", _system_list, [f"systems/{SYSTEM_NAME}.json: a JSON array, not an object"]),
    ("system-field-list", _system_field_list, [f"systems/{SYSTEM_NAME}.json: field 'status' is a JSON array, "
                                               "not a string"]),
    ("measurements-list", _measurements_list, ["Offline/measurements.json: a JSON array, not an object"]),
    ("mapping-list", _mapping_list, ["model_mapping.json: key 'resnet50': a JSON array, not a benchmark name"]),
    ("provenance-list", _provenance_list, ["Offline/README.md: provenance key 'performance.card' is a JSON array, "
                                           "not an object"]),
    ("qps-string", _qps_string, ["run_1/mlperf_log_detail.txt: effective_target_qps is 'fast' (a JSON string), "
                                 "not a number"]),
    ("binary-user-conf", _binary_user_conf, ["Offline/user.conf: not UTF-8 text"]),
    ("control-characters", _control_name, ["Offline\\x1b[2K\\rall good' is not one of this system's"]),
]


@pytest.mark.parametrize("tamper, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_tampering_is_a_listed_problem(packaged: dict[str, Path], tamper: Callable, needles: list[str]) -> None:
    tamper(packaged)
    problems = check_tree(packaged["tree"])
    text = "\n".join(problems)
    for needle in needles:
        assert needle in text, text
    assert "SECRET" not in text and "31337" not in text and str(packaged["outside"]) not in text
    assert not any("could not be checked" in p for p in problems), text  # each one is a rule's own problem
    assert all(p.isprintable() for p in problems)


def test_cli_lists_every_tampering_at_once_without_traceback_or_foreign_content(packaged: dict[str, Path]) -> None:
    """The issue's list in one tree: a link out of the tree, an oversized log, a string for a number,
    a list for an object, an MLLOG line ``[]`` (and a FIFO that would hang a naive reader)."""
    t = packaged
    _link_user_conf(t)
    _fifo_readme(t)
    _string_duration(t)
    with (t["perf"] / "mlperf_log_detail.txt").open("a") as fh:
        fh.write(":::MLLOG []\n")
    os.truncate(t["acc"] / "mlperf_log_detail.txt", 40 * MIB)
    _system_list(t)
    _measurements_list(t)
    _control_name(t)
    proc = run_cli(["check", "--tree", str(t["tree"])], cwd=t["outside"], timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert "Traceback" not in output and "SECRET" not in output and "31337" not in output
    for needle in ["Offline/user.conf: is a symbolic link", "Offline/README.md: is a FIFO",
                   "run_1/mlperf_log_detail.txt: effective_min_duration_ms is '600000' (a JSON string), not a number",
                   "run_1/mlperf_log_detail.txt: malformed: line ",
                   "accuracy/mlperf_log_detail.txt: 41,943,040 bytes, over check's detail-log cap of 32 MiB: not read",
                   f"systems/{SYSTEM_NAME}.json: a JSON array, not an object",
                   "Offline/measurements.json: a JSON array, not an object",
                   "Offline\\x1b[2K\\rall good' is not one of this system's"]:
        assert needle in proc.stdout, (needle, proc.stdout)
    assert "\x1b" not in output  # the escape sequence in a folder name is printed escaped
    assert proc.stderr.strip().splitlines()[-1].startswith("ERROR: ")


def test_a_rule_failing_on_one_folder_keeps_the_other_problems(packaged: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception nobody foresaw inside a rule: the folder is named, the rest is still listed."""
    import submit.check

    def broken(path: Path) -> list:
        raise RuntimeError("a rule broke")

    monkeypatch.setattr(submit.check, "measurements_problems", broken)
    _string_duration(packaged)
    _system_field_list(packaged)
    problems = "\n".join(check_tree(packaged["tree"]))
    assert f"{packaged['scen']}/measurements.json: could not be checked (RuntimeError: a rule broke)" in problems
    assert "effective_min_duration_ms is '600000'" in problems  # the same folder's other files
    assert "field 'status' is a JSON array" in problems  # and other folders


def test_caps_are_named_per_kind() -> None:
    assert cap_for(Path("x/mlperf_log_detail.txt")) == ("detail-log", 32 * MIB)
    assert cap_for(Path("x/user.conf")) == ("text/JSON", 4 * MIB)
