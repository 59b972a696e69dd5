"""Bad input: a one-line error naming the item, a non-zero exit, and no result claiming VALID."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from records.results import RunResult, find_results, is_incomplete


def _val_copy(demo: Path, dst: Path, n: int = 20) -> Path:
    dst.mkdir()
    lines = (demo / "val" / "val_map.txt").read_text().splitlines()[:n]
    for line in lines:
        name = line.split()[0]
        shutil.copy(demo / "val" / name, dst / name)
    (dst / "val_map.txt").write_text("\n".join(lines) + "\n")
    return dst


def _assert_refused(proc, *needles: str, results: Path | None = None) -> None:
    """Exit 2 with one ERROR line naming the item. With ``results``: the error came after the run
    directory was made, so exactly one record exists, and it says error, not valid, not submittable."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("ERROR")]
    assert len(lines) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    if results is None:
        return
    records = [RunResult.load(p.parent) for p in find_results(results)]
    assert len(records) == 1, records
    assert records[0].status == "error" and records[0].valid is False and records[0].submittable is False
    assert lines[0] == f"ERROR: {records[0].error}"
    assert is_incomplete(records[0].directory) is False or not (records[0].directory / "mlperf_log_detail.txt").exists()


def _run(workdir: Path, model: Path, dataset: Path, cache: Path, *extra: str):
    return run_cli(["run", "--mode", "accuracy", "--model", str(model), "--dataset", str(dataset),
                    "--system", "host", "--cache-dir", str(cache), *extra], cwd=workdir)


@pytest.mark.parametrize("extra", [("--rate-seconds", "1"), ("--target-qps", "100", "--rate-seconds", "1"),
                                   ("--target-qps", "0", "--rate-seconds", "0.01")])
def test_rate_seconds_only_with_a_measured_target(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path,
                                                  extra: tuple[str, ...]) -> None:
    _assert_refused(_run(workdir, demo_f32, demo_data / "val", cache_dir, *extra), "--rate-seconds")
    assert not (workdir / "results").exists()


def test_missing_dataset_dir(workdir: Path, demo_f32: Path, cache_dir: Path) -> None:
    _assert_refused(_run(workdir, demo_f32, workdir / "no_such_dir", cache_dir), "no_such_dir")
    assert not (workdir / "results").exists()


def test_missing_image(workdir: Path, demo_f32: Path, demo_data: Path) -> None:
    val = _val_copy(demo_data, workdir / "val")
    name = (val / "val_map.txt").read_text().split()[4]
    (val / name).unlink()
    _assert_refused(_run(workdir, demo_f32, val, workdir / "c"), name, "missing", results=workdir / "results")


def test_corrupt_image(workdir: Path, demo_f32: Path, demo_data: Path) -> None:
    val = _val_copy(demo_data, workdir / "val")
    name = (val / "val_map.txt").read_text().split()[6]
    (val / name).write_bytes(b"\xff\xd8 truncated")
    _assert_refused(_run(workdir, demo_f32, val, workdir / "c"), name, "not a decodable image",
                    results=workdir / "results")


@pytest.mark.parametrize("bad_line, needle", [("oops", "val_map.txt:3: expected"),
                                              ("DEMO_val_00000.JPEG 10", "val_map.txt:3: label 10 out of range 0..9")])
def test_bad_val_map(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path,
                     bad_line: str, needle: str) -> None:
    val = _val_copy(demo_data, workdir / "val")
    lines = (val / "val_map.txt").read_text().splitlines()
    lines[2] = bad_line
    (val / "val_map.txt").write_text("\n".join(lines) + "\n")
    _assert_refused(_run(workdir, demo_f32, val, cache_dir), needle)
    assert not (workdir / "results").exists()  # an input check: refused before anything is written


def test_model_not_fitting_its_card(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> None:
    model = workdir / "model"
    shutil.copytree(demo_f32, model)
    card = json.loads((model / "card.json").read_text())
    card["input_size"] = 48
    (model / "card.json").write_text(json.dumps(card))
    _assert_refused(_run(workdir, model, demo_data / "val", cache_dir), "does not fit card",
                    results=workdir / "results")


def test_unknown_system_profile(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> None:
    proc = run_cli(["run", "--mode", "accuracy", "--model", str(demo_f32), "--dataset", str(demo_data / "val"),
                    "--system", "c7i.metal", "--cache-dir", str(cache_dir)], cwd=workdir)
    _assert_refused(proc, "system profile 'c7i.metal' not found")


def test_bad_user_conf_value(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> None:
    (workdir / "user.conf").write_text("resnet50.Offline.target_qps = 12a\n")
    _assert_refused(_run(workdir, demo_f32, demo_data / "val", cache_dir), "user.conf:1: target_qps value '12a'")


def test_output_dir_not_writable(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> None:
    (workdir / "blocker").write_text("a file where a directory should be")
    proc = _run(workdir, demo_f32, demo_data / "val", cache_dir, "--results", str(workdir / "blocker" / "results"))
    _assert_refused(proc, "output directory not writable")


def test_stray_audit_config_is_refused(workdir: Path, demo_f32: Path, demo_data: Path, cache_dir: Path) -> None:
    (workdir / "audit.config").write_text("*.*.mode = 2\n")
    _assert_refused(_run(workdir, demo_f32, demo_data / "val", cache_dir), "audit.config")


@pytest.mark.parametrize("flag, value", [("--batches", "8,x"), ("--batches", "0"), ("--requests-per-stream", "")])
def test_tune_refuses_a_bad_list_before_measuring(workdir: Path, demo_f32: Path, flag: str, value: str) -> None:
    proc = run_cli(["tune", "--model", str(demo_f32), flag, value, "--profile-out", str(workdir / "t.yaml")],
                   cwd=workdir)
    _assert_refused(proc, flag, repr(value))
    assert not (workdir / "t.yaml").exists()
