"""Packaging and checking submission trees, on real LoadGen logs (no mocks).

One real accuracy run and one real short performance run of the demo model are made
once per session. Each case copies them and edits the copy: first into an
official-looking pair (600 s min_duration, 50,000 accuracy samples), then to break
exactly one rule, and checks that the rule fires with its message and file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import REPO, run_cli

from cli import check as check_cli, describe_system as describe_system_cli, package as package_cli
from common.errors import HarnessError
from harness.profile import load_profile
from common.errors import SubmissionError, SystemDescriptionError
from records.rules import builtin_seeds
from submit.check import check_tree
from submit.package import package
from submit.tree import NOT_FOR_SUBMISSION
from hostinfo.describe import (NON_EMPTY_FIELDS, REQUIRED_FIELDS, describe_system, missing_fields,
                        write_system_json)

ORG = "TestOrg"
SYSTEM_NAME = "test-host"
# What this VM cannot tell about itself; given explicitly, as a user would.
UNREADABLE = {"system_name": "Test VM (2 cores)", "cooling": "air (test value)",
              "host_memory_configuration": "not exposed to the guest (test value)"}
OFFICIAL_SAMPLES = 50_000


# ----------------------------------------------------------------------------- helpers
def edit_mllog(path: Path, key: str, value: Any) -> None:
    """Set every MLLOG record ``key`` of a detail log to ``value``."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG"):
            rec = json.loads(line[len(":::MLLOG"):])
            if rec["key"] == key:
                rec["value"] = value
                line = ":::MLLOG " + json.dumps(rec)
        lines.append(line)
    assert any(f'"{key}"' in l for l in lines), key
    path.write_text("\n".join(lines) + "\n")


def add_mllog_error(path: Path, text: str) -> None:
    """Append an error record shaped like the ones LoadGen writes."""
    rec = {"key": "error_invalid_config", "value": text, "time_ms": 0.5, "namespace": "mlperf::logging",
           "event_type": "POINT_IN_TIME", "metadata": {"is_error": True, "is_warning": False,
                                                       "file": "test_settings_internal.cc", "line_no": 562}}
    with path.open("a") as f:
        f.write(":::MLLOG " + json.dumps(rec) + "\n")


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def write_accuracy_log(acc_dir: Path, count: int) -> None:
    """An accuracy log of ``count`` samples made from the real records (responses cycled)."""
    real = json.loads((acc_dir / "mlperf_log_accuracy.json").read_text())
    records = [f'{{ "seq_id" : {i}, "qsl_idx" : {i}, "data" : "{real[i % len(real)]["data"]}" }}'
               for i in range(count)]
    (acc_dir / "mlperf_log_accuracy.json").write_text("[\n" + ",\n".join(records) + "\n]\n")
    good = sum(1 for i in range(count) if i % 7)  # any consistent figure: not re-scored here
    (acc_dir / "accuracy.txt").write_text(f"accuracy={100 * good / count:.3f}%, good={good}, total={count}\n")
    edit_mllog(acc_dir / "mlperf_log_detail.txt", "effective_accuracy_sample_count", count)
    edit_json(acc_dir / "result.json", lambda r: r["accuracy"].update(total=count, good=good))


@pytest.fixture(scope="session")
def real_runs(session_dir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> Path:
    """results/host/<model>/Offline from one real accuracy run and one real 2 s performance run."""
    from packaged_tree import real_runs as build

    return build(session_dir, demo_f32, demo_data, cache_dir)


def do_package(runs: dict[str, Path], **kw: Any):
    args = dict(system_name=SYSTEM_NAME, profile=load_profile("host"), system_overrides=UNREADABLE,
                user_conf=runs["user_conf"])
    args.update(kw)
    return package(runs["results"], "host", runs["label"], ORG, runs["out"], REPO, **args)


def refused(runs: dict[str, Path], *needles: str, **kw: Any) -> str:
    with pytest.raises(SubmissionError) as info:
        do_package(runs, **kw)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    assert not (runs["out"] / "open" / ORG / "results").exists(), "nothing is written when refused"
    return message


# ----------------------------------------------------------------------------- the good case
def test_official_looking_runs_package_into_a_clean_tree(runs: dict[str, Path]) -> None:
    full_log = (runs["acc"] / "mlperf_log_accuracy.json").read_bytes()
    done = do_package(runs)
    assert done.official and not done.waived
    scen = runs["out"] / "open" / ORG / "results" / SYSTEM_NAME / "resnet50" / "Offline"
    assert done.scenario_dir == scen
    assert check_tree(runs["out"]) == []
    # Truncated like the official script: first and last 4 KiB; hash of the full file appended.
    cut = (scen / "accuracy" / "mlperf_log_accuracy.json").read_bytes()
    assert cut == full_log[:4096] + b"\n\n...\n\n" + full_log[-4096:] and len(cut) <= 10 * 1024
    txt = (scen / "accuracy" / "accuracy.txt").read_text()
    assert txt == (runs["acc"] / "accuracy.txt").read_text() + f"\nhash={hashlib.sha256(full_log).hexdigest()}\n"
    for sub in ("performance/run_1/mlperf_log_summary.txt", "performance/run_1/mlperf_log_detail.txt",
                "accuracy/mlperf_log_summary.txt", "accuracy/mlperf_log_detail.txt"):
        src = runs["perf" if sub.startswith("perf") else "acc"] / Path(sub).name
        assert (scen / sub).read_bytes() == src.read_bytes()
    assert (scen / "user.conf").read_text() == runs["user_conf"].read_text()
    measurements = json.loads((scen / "measurements.json").read_text())
    assert measurements["input_data_types"] == "uint8" and measurements["weight_data_types"] == "fp32"
    assert measurements["starting_weights_filename"].startswith("decinet_demo.onnx (sha256 ")
    assert all(measurements.values())
    system = json.loads(done.system_json.read_text())
    assert done.system_json == runs["out"] / "open" / ORG / "systems" / f"{SYSTEM_NAME}.json"
    assert system["accelerators_per_node"] == "0" and system["division"] == "open" and system["submitter"] == ORG
    assert system["framework"].startswith("OpenVINO ") and missing_fields(system) == []
    readme = (scen / "README.md").read_text()
    assert "mlperf-cpu run --mode performance" in readme and "NOT FOR SUBMISSION" not in readme
    src = runs["out"] / "open" / ORG / "src"
    assert (src / "setup.py").is_file() and (src / "harness" / "runner.py").is_file()
    assert not (src / ".venv").exists() and not (src / "data").exists() and not (src / "work").exists()
    assert not list(runs["out"].rglob(NOT_FOR_SUBMISSION))


def test_other_benchmark_folder_is_mapped_to_resnet(runs: dict[str, Path]) -> None:
    do_package(runs, benchmark_folder="decinet-f32")
    mapping = json.loads((runs["out"] / "open" / ORG / "model_mapping.json").read_text())
    assert mapping == {"decinet-f32": "resnet"}
    assert check_tree(runs["out"]) == []


def test_packaging_twice_needs_replace(runs: dict[str, Path]) -> None:
    do_package(runs)
    with pytest.raises(SubmissionError, match="already packaged"):
        do_package(runs)
    do_package(runs, replace=True)
    assert check_tree(runs["out"]) == []


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _small_checkout(root: Path) -> Path:
    """A git work tree of one committed file: src/ that no one edits while the test runs."""
    import subprocess

    root.mkdir()
    (root / "harness.py").write_text("print('harness')\n")
    for args in (["init", "-q"], ["add", "harness.py"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one file"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def test_packaging_never_touches_other_systems_and_replaces_only_when_asked(runs: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    src = _small_checkout(tmp_path / "checkout")

    def pack(**kw: Any):
        args = dict(system_name=SYSTEM_NAME, profile=load_profile("host"), system_overrides=UNREADABLE,
                    user_conf=runs["user_conf"])
        args.update(kw)
        return package(runs["results"], "host", runs["label"], ORG, runs["out"], src, **args)

    pack()
    org = runs["out"] / "open" / ORG
    first = _hashes(runs["out"])
    # A second system into the same org: new folders only (src/ is the same, so it is left alone).
    pack(system_name="second-host")
    after_second = _hashes(runs["out"])
    assert {k: v for k, v in after_second.items() if k in first} == first
    assert (org / "results" / "second-host").is_dir() and (org / "systems" / "second-host.json").is_file()
    # Refused without --replace, naming the existing folder: nothing written.
    water = {**UNREADABLE, "cooling": "water (test value)"}
    with pytest.raises(SubmissionError, match=rf"{SYSTEM_NAME}/resnet50/Offline: already packaged; pass --replace"):
        pack(system_overrides=water)
    assert _hashes(runs["out"]) == after_second
    # With it, this system's pieces are swapped in; the other system's stay byte-identical.
    pack(replace=True, system_overrides=water)
    final = _hashes(runs["out"])
    assert {k: v for k, v in final.items() if "second-host" in k} == \
        {k: v for k, v in after_second.items() if "second-host" in k}
    assert final[f"open/{ORG}/systems/{SYSTEM_NAME}.json"] != first[f"open/{ORG}/systems/{SYSTEM_NAME}.json"]
    assert not [p for p in org.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    # A folder left by a package that was killed while building is hidden: check passes over it.
    (org / "results" / SYSTEM_NAME / "resnet50" / ".Offline.packaging-x" / "junk").mkdir(parents=True)
    assert check_tree(runs["out"]) == []


# ----------------------------------------------------------------------------- refusals
def _invalid(r): edit_mllog(r["perf"] / "mlperf_log_detail.txt", "result_validity", "INVALID")
def _short(r): edit_mllog(r["perf"] / "mlperf_log_detail.txt", "effective_min_duration_ms", 2000)
def _acc_10k(r): write_accuracy_log(r["acc"], 10_000)
def _psc(r): edit_mllog(r["perf"] / "mlperf_log_detail.txt", "effective_performance_sample_count", 512)
def _seed(r): edit_mllog(r["acc"] / "mlperf_log_detail.txt", "effective_qsl_rng_seed", 12345)
def _lg_error(r): add_mllog_error(r["acc"] / "mlperf_log_detail.txt",
                                  "Multiple conf files are used. This is not valid for official submission.")
def _model(r): edit_json(r["perf"] / "result.json", lambda d: d["card"].update(source_sha256="0" * 64))
def _precision(r): edit_json(r["perf"] / "result.json", lambda d: d["card"].update(precision="int8"))
def _engine(r): edit_json(r["perf"] / "result.json", lambda d: d["profile"]["engine"].update(batch_size=8))
def _status(r): edit_json(r["acc"] / "result.json", lambda d: d.update(status="error", error="boom"))
def _incomplete(r): (r["perf"] / "INCOMPLETE").write_text("interrupted\n")
def _no_result(r): (r["perf"] / "result.json").unlink()
def _overrides(r): edit_json(r["perf"] / "result.json", lambda d: d.update(overrides={"target_qps": 0.0}))
def _user_conf(r): r["user_conf"].write_text("resnet50.Offline.target_qps = 123\n")
def _records(r): (r["acc"] / "mlperf_log_accuracy.json").write_text("[\n]\n")
def _conf_hash(r): edit_json(r["acc"] / "result.json", lambda d: d.update(user_conf_sha256="1" * 64))
OTHER_CORES = 2 * (os.cpu_count() or 1) + 2  # a profile no core count of this host matches, whatever its size
def _cores(r): edit_json(r["perf"] / "result.json", lambda d: d["profile"].update(cores=OTHER_CORES))
def _openvino(r): edit_json(r["acc"] / "result.json", lambda d: d["compiled_properties"].update(
    RUNTIME_REQUIREMENTS="meta=1.0;ov=2020.1.0;isa=AVX2"))


@pytest.mark.parametrize("edit, needles", [
    (_invalid, ["performance/run_1/mlperf_log_detail.txt", "performance run is INVALID, not VALID"]),
    (_short, ["performance/run_1/mlperf_log_detail.txt", "min_duration 2000 ms < 600000 ms"]),
    (_acc_10k, ["accuracy/mlperf_log_detail.txt", "accuracy run over 10000 samples, not 50,000"]),
    (_psc, ["performance/run_1/mlperf_log_detail.txt", "performance_sample_count 512 < 1024"]),
    (_seed, ["accuracy/mlperf_log_detail.txt", "qsl_rng_seed is 12345"]),
    (_lg_error, ["accuracy/mlperf_log_detail.txt", "LoadGen error", "Multiple conf files are used"]),
    (_model, ["Offline", "different models (source_sha256"]),
    (_precision, ["Offline", "different models (precision: 'f32' vs 'int8')"]),
    (_engine, ["Offline", "different engine settings (batch_size: 16 vs 8)"]),
    (_status, ["accuracy/result.json", "status is 'error' (boom)"]),
    (_incomplete, ["performance/run_1/INCOMPLETE", "incomplete"]),
    (_no_result, ["performance/run_1/result.json", "missing"]),
    (_overrides, ["performance/run_1/result.json", "non-official command-line settings"]),
    (_user_conf, ["user.conf", "target_qps = 123 but the performance run used"]),
    (_records, ["mlperf_log_accuracy.json", "holds 0 records"]),
    (_conf_hash, ["user.conf", "differs from the user.conf the run in", "accuracy read"]),
    (_cores, ["Offline", f"host profile had {OTHER_CORES} cores", "package on the machine that ran the tests"]),
    (_openvino, ["Offline", "used OpenVINO 2020.1.0 but"]),
], ids=["invalid", "short-duration", "accuracy-10000", "perf-sample-count", "seeds", "loadgen-error",
        "model-source", "model-precision", "engine", "status-error", "incomplete", "no-result-json",
        "overrides", "user-conf", "accuracy-records", "user-conf-hash", "other-machine", "other-openvino"])
def test_refusal(runs: dict[str, Path], edit: Callable, needles: list[str]) -> None:
    edit(runs)
    refused(runs, *needles)


def test_missing_system_field_is_refused_with_its_name(runs: dict[str, Path]) -> None:
    fields = {k: v for k, v in UNREADABLE.items() if k != "cooling"}
    refused(runs, f"systems/{SYSTEM_NAME}.json", "lacks cooling", system_overrides=fields)


def test_allow_nonofficial_packages_short_runs_and_marks_the_tree(real_runs: Path, tmp_path: Path) -> None:
    results = real_runs.parents[2]
    args = dict(system_name=SYSTEM_NAME, profile=load_profile("host"), system_overrides=UNREADABLE,
                user_conf=REPO / "user.conf")
    with pytest.raises(SubmissionError, match="min_duration 2000 ms < 600000 ms"):
        package(results, "host", real_runs.parent.name, ORG, tmp_path / "t1", REPO, **args)
    done = package(results, "host", real_runs.parent.name, ORG, tmp_path / "t2", REPO, allow_nonofficial=True, **args)
    assert not done.official and any("min_duration" in w for w in done.waived)
    assert any("accuracy run over" in w for w in done.waived)
    assert (tmp_path / "t2" / NOT_FOR_SUBMISSION).is_file()
    assert (tmp_path / "t2" / "open" / ORG / NOT_FOR_SUBMISSION).is_file()
    assert (done.scenario_dir / "README.md").read_text().startswith("# NOT FOR SUBMISSION")
    problems = check_tree(tmp_path / "t2")
    assert any("marked not for submission" in p for p in problems)
    assert any("min_duration 2000 ms < 600000 ms" in p for p in problems)


def test_allow_nonofficial_still_refuses_an_invalid_run(runs: dict[str, Path]) -> None:
    _short(runs)
    _invalid(runs)
    refused(runs, "INVALID", allow_nonofficial=True)


# ----------------------------------------------------------------------------- check_tree
def test_check_tree_finds_an_untruncated_accuracy_log(runs: dict[str, Path]) -> None:
    done = do_package(runs)
    shutil.copy(runs["acc"] / "mlperf_log_accuracy.json", done.scenario_dir / "accuracy" / "mlperf_log_accuracy.json")
    problems = check_tree(runs["out"])
    assert len(problems) == 1 and "accuracy/mlperf_log_accuracy.json: not truncated" in problems[0]


def test_check_tree_finds_a_missing_hash_line(runs: dict[str, Path]) -> None:
    done = do_package(runs)
    shutil.copy(runs["acc"] / "accuracy.txt", done.scenario_dir / "accuracy" / "accuracy.txt")
    assert any("no hash=" in p for p in check_tree(runs["out"]))


def test_check_tree_finds_a_missing_system_field(runs: dict[str, Path]) -> None:
    done = do_package(runs)
    edit_json(done.system_json, lambda d: d.pop("cooling"))
    edit_json(done.system_json, lambda d: d.update(accelerators_per_node=0))
    problems = check_tree(runs["out"])
    assert any(f"{SYSTEM_NAME}.json: field 'cooling' is missing or empty" in p for p in problems)
    assert any("field 'accelerators_per_node' is missing or empty" in p for p in problems)


def test_check_tree_finds_mismatched_models_and_broken_rules(runs: dict[str, Path]) -> None:
    done = do_package(runs)
    readme = done.scenario_dir / "README.md"
    readme.write_text(readme.read_text().replace('"precision": "f32"', '"precision": "int8"', 1))
    edit_mllog(done.scenario_dir / "performance" / "run_1" / "mlperf_log_detail.txt", "result_validity", "INVALID")
    edit_mllog(done.scenario_dir / "accuracy" / "mlperf_log_detail.txt", "effective_accuracy_sample_count", 10_000)
    (done.scenario_dir / "measurements.json").write_text(json.dumps({"input_data_types": "uint8"}))
    problems = "\n".join(check_tree(runs["out"]))
    assert "different models (precision" in problems
    assert "performance run is INVALID, not VALID" in problems
    assert "accuracy run over 10000 samples" in problems
    assert "measurements.json: field 'retraining' is missing or empty" in problems


def test_seeds_come_from_the_installed_loadgen() -> None:
    seeds = builtin_seeds()
    conf = (REPO / "mlperf.conf").read_text()
    for key, value in seeds.items():
        assert f"*.*.{key} = {value}" in conf


# ----------------------------------------------------------------------------- system description
def test_describe_system_reads_the_host_and_reports_what_it_cannot() -> None:
    sources: dict[str, str] = {}
    desc = describe_system(load_profile("host").system, ORG, sources=sources)
    assert desc["framework"].startswith("OpenVINO ") and "MLCommons LoadGen 6.0.17" in desc["other_software_stack"]
    assert desc["accelerators_per_node"] == "0" and desc["accelerator_model_name"] == "N/A"
    assert desc["status"] == "available" and desc["system_type"] == "edge" and desc["division"] == "open"
    # The rule for each reading is in test_hostinfo's tables; on the real host, physical cores are at least
    # one and never more than the logical CPUs the OS counts.
    assert 1 <= int(desc["host_processor_core_count"]) * int(desc["host_processors_per_node"]) <= os.cpu_count()
    assert sources["host_processor_core_count"] == "detected"
    assert "cooling" in missing_fields(desc)  # no machine can tell how it is cooled
    missing = set(missing_fields(desc))
    for key in REQUIRED_FIELDS:
        value = desc.get(key)
        if key in missing:  # reported missing: really absent or empty
            assert value is None or str(value).strip() == "", (key, value)
        else:  # not reported missing: present, and with an answer where the checker wants one
            assert key in desc and value is not None, key
            if key in NON_EMPTY_FIELDS:
                assert str(value).strip(), (key, value)


def test_profile_fields_fill_gaps_and_overrides_win(tmp_path: Path) -> None:
    from harness.profile import host_profile
    from sut.config import SystemProfile

    base = host_profile()
    profile = SystemProfile("vm", base.cores, base.engine, system={**UNREADABLE, "cooling": "liquid"})
    sources: dict[str, str] = {}
    desc = describe_system(profile.system, ORG, {"cooling": "air"}, sources=sources)
    assert desc["cooling"] == "air" and sources["cooling"] == "override"
    assert desc["system_name"] == UNREADABLE["system_name"] and sources["system_name"] == "profile"
    assert missing_fields(desc) == []
    path = write_system_json(tmp_path / "s.json", desc)
    assert json.loads(path.read_text()) == desc
    with pytest.raises(SystemDescriptionError, match="unknown system description field 'coolng'.*'cooling'"):
        describe_system(profile.system, ORG, {"coolng": "air"})
    with pytest.raises(SystemDescriptionError, match="lacks cooling"):
        write_system_json(tmp_path / "t.json", {k: v for k, v in desc.items() if k != "cooling"})


# ----------------------------------------------------------------------------- CLI handlers
def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (package_cli, check_cli, describe_system_cli):
        command.add_parser(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


def _sets() -> list[str]:
    return [x for k, v in UNREADABLE.items() for x in ("--set", f"{k}={v}")]


def test_cli_package_check_and_describe(runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    out = runs["out"]
    assert _cli(["package", "--results", str(runs["results"]), "--system", "host", "--model", runs["label"],
                 "--org", ORG, "--out", str(out), "--system-name", SYSTEM_NAME, "--user-conf",
                 str(runs["user_conf"]), "--src-root", str(REPO), *_sets()]) == 0
    readme = (out / "open" / ORG / "results" / SYSTEM_NAME / "resnet50" / "Offline" / "README.md").read_text()
    assert f"mlperf-cpu package --results {runs['results']} --system host" in readme
    assert _cli(["check", "--tree", str(out)]) == 0
    assert f"{out}: OK" in capsys.readouterr().out
    (out / "open" / ORG / "systems" / f"{SYSTEM_NAME}.json").write_text("{}")
    with pytest.raises(HarnessError, match="problems; first: .*field 'division' is missing"):
        _cli(["check", "--tree", str(out)])
    assert "field 'division' is missing" in capsys.readouterr().out  # every problem is printed
    with pytest.raises(SystemDescriptionError, match="lacks .*cooling"):
        _cli(["describe-system", "--org", ORG])
    assert json.loads(capsys.readouterr().out)["submitter"] == ORG  # printed before refusing
    assert _cli(["describe-system", "--org", ORG, *_sets(), "--out", str(out / "d.json")]) == 0
    assert missing_fields(json.loads((out / "d.json").read_text())) == []
