"""Names that become folder or file names are refused at the edge when they could leave the chosen
directory: a flag, a model's own card metadata, a stored card, a profile, a submitter name.

Each refusal is one ERROR line naming the value and where it came from, and nothing is written
outside the directories the user chose (real CLI processes on real ONNX files)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from conftest import TINY_META, prepare_model, run_cli
from onnx_builders import make_classifier

from common.errors import ConfigError, ModelError
from common.names import check_name
from common.model_metadata import CARD_METADATA_KEY


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def _error_line(proc) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def _prepare(cwd: Path, model: Path, out: Path, *extra: str):
    return run_cli(["prepare", "--model", str(model), "--precision", "f32", "--out", str(out),
                    "--cache-dir", str(out / "cache"), *extra], cwd=cwd)


def _with_metadata_text(src: Path, dst: Path, text: str) -> Path:
    """A copy of an ONNX file whose ``mlperf_cpu.card`` metadata is exactly ``text``."""
    model = onnx.load(str(src))
    for prop in model.metadata_props:
        if prop.key == CARD_METADATA_KEY:
            prop.value = text
    onnx.save(model, str(dst))
    return dst


def test_name_rule() -> None:
    for good in ("resnet50_v1", "c6i.2xlarge", "tiny.test", "decinet_s-int8", "_x", "A-1.b"):
        assert check_name(good, "test") == good
    for bad in ("", ".", "..", ".hidden", "a/b", "../x", "/abs/x", "a b", "a\\b", "x" * 129, "naïve", 7):
        with pytest.raises(ConfigError, match="test .*not a valid name"):
            check_name(bad, "test")


def test_prepare_refuses_a_name_flag_that_leaves_out(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    out = cwd / "a" / "b" / "out"
    out.mkdir(parents=True)
    model = make_classifier(cwd / "tiny.onnx", metadata=TINY_META)
    before = _files(tmp_path)
    line = _error_line(proc := _prepare(cwd, model, out, "--name", "../../../escaped"))
    assert proc.returncode == 2
    assert "--name '../../../escaped': not a valid name" in line
    assert _files(tmp_path) == before  # nothing written, least of all above --out


def test_prepare_refuses_an_absolute_card_name_in_the_model(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    target = tmp_path / "elsewhere" / "x"  # where an unchecked name would have put the model
    model = make_classifier(cwd / "abs.onnx", metadata={**TINY_META, "name": str(target)})
    out = cwd / "out"
    proc = _prepare(cwd, model, out)
    line = _error_line(proc)
    assert proc.returncode == ModelError.exit_code
    assert f"abs.onnx: {CARD_METADATA_KEY} metadata name '{target}': not a valid name" in line
    assert not (tmp_path / "elsewhere").exists()
    assert not any(p.is_dir() and p.name != "cache" for p in out.glob("*")), sorted(out.rglob("*"))


@pytest.mark.parametrize("text, needle", [
    ("{not json", "metadata is not valid JSON"),
    ('["a", "list"]', "metadata is not a JSON object (got a list)"),
    ('"a string"', "metadata is not a JSON object (got a str)"),
])
def test_prepare_refuses_metadata_that_is_not_a_json_object(tmp_path: Path, tiny_onnx: Path, text: str,
                                                            needle: str) -> None:
    model = _with_metadata_text(tiny_onnx, tmp_path / "bad.onnx", text)
    proc = _prepare(tmp_path, model, tmp_path / "out")
    assert proc.returncode == ModelError.exit_code
    assert f"bad.onnx: {CARD_METADATA_KEY} {needle}" in _error_line(proc)


def test_run_refuses_a_stored_card_whose_name_leaves_results(tmp_path: Path, tiny_onnx: Path, demo_data: Path) -> None:
    """A card.json edited (or written by another tool) to name a path is refused when it is read."""
    model = prepare_model(tiny_onnx, "f32", tmp_path / "models", tmp_path / "cache")
    card = json.loads((model / "card.json").read_text())
    (model / "card.json").write_text(json.dumps({**card, "name": "../../escaped"}))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = _files(tmp_path)
    proc = run_cli(["run", "--mode", "accuracy", "--model", str(model), "--dataset", str(demo_data / "val"),
                    "--system", "host", "--cache-dir", str(tmp_path / "cache"), "--results", str(cwd / "results")],
                   cwd=cwd)
    assert proc.returncode == 2
    assert "card name '../../escaped': not a valid name" in _error_line(proc)
    assert _files(tmp_path) == before


def test_profile_and_tune_names(tmp_path: Path) -> None:
    """A profile's name is the results tree's system folder; tune's --name is a profile file name."""
    profile = tmp_path / "evil.yaml"
    profile.write_text("name: ../../evil\ncores: 1\nengine: {num_streams: 1, num_threads: 1, infer_requests: 1, "
                       "batch_size: 1}\n")
    proc = run_cli(["describe-system", "--system", str(profile), "--org", "Org"], cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{profile}: name '../../evil': not a valid name" in _error_line(proc)

    proc = run_cli(["tune", "--model", str(tmp_path), "--name", "../../configs-elsewhere"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "--name '../../configs-elsewhere': not a valid name" in _error_line(proc)


def test_submitter_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    before = _files(tmp_path)
    proc = run_cli(["pipeline", "--submission", "--org", "../outside", "--out", str(tmp_path / "tree"),
                    "--results", str(tmp_path / "results"), "--work", str(tmp_path / "work")], cwd=tmp_path)
    assert proc.returncode == 2
    assert "--org '../outside': not a valid name" in _error_line(proc)
    assert _files(tmp_path) == before

    proc = run_cli(["package", "--results", str(tmp_path / "results"), "--system", "host", "--model", "m-f32",
                    "--org", "/abs/org", "--out", str(tmp_path / "tree")], cwd=tmp_path)
    assert proc.returncode == 2
    assert "--org '/abs/org': not a valid name" in _error_line(proc)
    assert _files(tmp_path) == before
