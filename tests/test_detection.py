"""Object detection on the harness: COCO input, letterbox, detector preparation, post-processing,
mAP from the LoadGen accuracy log (exactly pycocotools on the same predictions), every scenario.

The detector is a tiny UNTRAINED YOLO-style network built here with torch (tests/detector_builders.py),
and the COCO set is written by the test, so the mAP is small but real.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import AUTO_QPS, compile_reference, run_cli, run_loadgen_test
from detector_builders import make_coco_set, make_detector

CARD = {"name": "tinydet", "task": "detection", "input_size": 64, "num_classes": 3, "category_ids": [1, 2, 3],
        "mean": [0, 0, 0], "std": [255, 255, 255], "letterbox_pad": 114, "trained": False, "macs": 0,
        "params": 0, "notes": "test detector, untrained"}


@pytest.fixture(scope="module")
def det_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("det")


@pytest.fixture(scope="module")
def coco_root(det_dir: Path) -> Path:
    return make_coco_set(det_dir / "coco")


@pytest.fixture(scope="module")
def det_onnx(det_dir: Path) -> Path:
    return make_detector(det_dir / "tinydet.onnx", card=CARD)


def _prepare(source: Path, precision: str, det_dir: Path, coco_root: Path | None = None, task: str = "detection"):
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    calib = CalibrationConfig(coco_root / "val2017", coco_root / "cal_list.txt") if precision == "int8" else None
    return prepare(PrepareRequest(source, precision, det_dir / "models", det_dir / "cache", calibration=calib,
                                  task=task))


@pytest.fixture(scope="module")
def det_f32(det_onnx: Path, det_dir: Path) -> Path:
    return _prepare(det_onnx, "f32", det_dir)


# ----------------------------------------------------------------------------- dataset
def test_coco_errors_name_the_file_and_the_problem(tmp_path: Path, coco_root: Path) -> None:
    from common.errors import DatasetError
    from dataset.coco import load_coco

    images = coco_root / "val2017"
    good = json.loads((coco_root / "annotations" / "instances_val2017.json").read_text())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match=r"bad\.json:1: not COCO JSON"):
        load_coco(images, bad)
    bad.write_text(json.dumps({k: v for k, v in good.items() if k != "categories"}))
    with pytest.raises(DatasetError, match=r"bad\.json: not COCO JSON: missing key 'categories'"):
        load_coco(images, bad)
    bad.write_text(json.dumps({**good, "images": [{"id": 1, "file_name": "a.jpg"}]}))
    with pytest.raises(DatasetError, match=r"images\[0\] has no key 'width'"):
        load_coco(images, bad)
    bad.write_text(json.dumps({**good, "annotations": good["annotations"] + [{**good["annotations"][0],
                                                                              "image_id": 4242}]}))
    with pytest.raises(DatasetError, match=r"image id 4242 is not in 'images'"):
        load_coco(images, bad)
    bad.write_text(json.dumps({**good, "images": good["images"] + [{"id": 7, "file_name": "gone.jpg",
                                                                    "width": 5, "height": 5}]}))
    with pytest.raises(DatasetError, match=r"gone\.jpg: COCO image .* file missing"):
        load_coco(images, bad)
    coco = load_coco(images, coco_root / "annotations" / "instances_val2017.json")
    assert coco.names[0] == good["images"][0]["file_name"] and coco.sizes[0].tolist() == [
        good["images"][0]["height"], good["images"][0]["width"]]


def test_letterbox_and_post_processing_map_boxes_back_to_original_pixels() -> None:
    """A box drawn in a 50x120 image is found where the letterbox put it, and a head predicting
    exactly that box is mapped back to the original pixels, normalised by the original size."""
    from dataset.preprocess import PreprocessSpec, letterbox_geometry, preprocess_array
    from sut.detection import DetectionPost, DetectionSettings, Letterboxes

    h, w, size = 50, 120, 64
    img = np.full((h, w, 3), 0, np.uint8)
    img[10:30, 40:100] = 255
    spec = PreprocessSpec(size, 1.0, "linear", "NCHW", "letterbox", 114)
    sample = preprocess_array(img, spec)
    geo = letterbox_geometry(h, w, size)
    assert sample.shape == (3, size, size) and sample[0, 0, 0] == 114 and geo.pad_x == 0 and geo.pad_y > 0
    ys, xs = np.nonzero(sample[0] > 200)
    x1, y1 = 40 * geo.scale + geo.pad_x, 10 * geo.scale + geo.pad_y
    x2, y2 = 100 * geo.scale + geo.pad_x, 30 * geo.scale + geo.pad_y
    assert abs(xs.min() - x1) <= 1 and abs(ys.min() - y1) <= 1 and abs(xs.max() + 1 - x2) <= 1
    head = np.zeros((1, 4 + 2, 10), np.float32)
    head[0, :4, 3] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    head[0, 5, 3] = 0.9  # class 1, one confident anchor; the others score 0
    post = DetectionPost(DetectionSettings(size, (7, 9)), Letterboxes(np.array([[h, w]]), size))
    (dets,) = post(head, np.array([0]))
    assert dets.dtype == np.float32 and dets.shape == (1, 7)
    np.testing.assert_allclose(dets[0], [0, 10 / h, 40 / w, 30 / h, 100 / w, 0.9, 9], atol=1e-5)


def test_nms_is_class_aware_and_keeps_the_best() -> None:
    from sut.detection import DetectionPost, DetectionSettings, Letterboxes

    head = np.zeros((1, 4 + 2, 8), np.float32)
    head[0, :4, :3] = np.array([[20, 20, 10, 10], [21, 20, 10, 10], [20, 21, 10, 10]]).T
    head[0, 4, :3] = [0.5, 0.8, 0.0]  # anchors 0, 1: class 0, overlapping: keep anchor 1 only
    head[0, 5, 2] = 0.6  # anchor 2: class 1, same place: kept (NMS is per class)
    post = DetectionPost(DetectionSettings(64, (1, 2)), Letterboxes(np.array([[64, 64]]), 64))
    (dets,) = post(head, np.array([0]))
    assert dets[:, 5].tolist() == pytest.approx([0.8, 0.6]) and dets[:, 6].tolist() == [1, 2]


# ----------------------------------------------------------------------------- preparation
def test_detector_and_classifier_are_refused_by_the_other_task(det_onnx: Path, det_dir: Path, tiny_onnx: Path):
    from common.errors import ModelError

    with pytest.raises(ModelError, match=r"a detector \(outputs \[1,7,64\].*--task detection"):
        _prepare(det_onnx, "f32", det_dir, task="classification")
    with pytest.raises(ModelError, match=r"not a YOLO-style detector: outputs \[\?,10\]"):
        _prepare(tiny_onnx, "f32", det_dir, task="detection")


def test_ultralytics_shaped_export_without_card_is_an_80_class_coco_detector(det_dir: Path) -> None:
    """[1, 84, 8400] at 640 and no metadata (what Ultralytics exports for YOLO11): 80 classes, COCO ids."""
    from dataset.constants import COCO80_CATEGORY_IDS
    from modelprep.card import load_card

    source = make_detector(det_dir / "yolo_like.onnx", input_size=640, num_classes=80, grids=(80, 40, 20))
    card = load_card(_prepare(source, "f32", det_dir))
    assert (card.task, card.num_classes, card.input_size) == ("detection", 80, 640)
    assert card.category_ids == COCO80_CATEGORY_IDS and card.category_ids[-1] == 90
    assert (card.mean, card.std, card.letterbox_pad, card.conf_threshold) == ((0, 0, 0), (255, 255, 255), 114, 0.001)


# ----------------------------------------------------------------------------- accuracy through LoadGen
def _direct_detections(model_dir: Path, coco_root: Path, cache: Path) -> dict[int, np.ndarray]:
    """Each sample through plain OpenVINO (batch 1, no LoadGen) and the card's post-processor."""
    from dataset.cache import build_cache
    from dataset.coco import load_coco, resolve_coco
    from modelprep.card import load_card
    from sut.detection import post_for

    card = load_card(model_dir)
    coco = load_coco(*resolve_coco(coco_root))
    data = build_cache(coco.image_dir, coco.samples, card.preprocess, cache).open()
    compiled = compile_reference(model_dir / "model.xml")
    post = post_for(card, coco.sizes)
    return {i: post(compiled(data[i:i + 1])[0], np.array([i]))[0] for i in range(len(coco))}


def _pycocotools_map(log: Path, annotations: Path) -> float:
    """The reference accuracy script's computation, written out here independently of records/."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(annotations))
    images = gt.dataset["images"]
    results, seen = [], set()
    for rec in json.loads(log.read_text()):
        if rec["qsl_idx"] in seen:
            continue
        seen.add(rec["qsl_idx"])
        data = np.frombuffer(bytes.fromhex(rec["data"]), np.float32).reshape(-1, 7)
        img = images[rec["qsl_idx"]]
        for _, ymin, xmin, ymax, xmax, score, label in data:
            ymin, ymax, xmin, xmax = ymin * img["height"], ymax * img["height"], xmin * img["width"], xmax * img["width"]
            results.append({"image_id": img["id"], "category_id": int(label), "score": float(score),
                            "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)]})
    ev = COCOeval(gt, gt.loadRes(results), iouType="bbox")
    ev.params.imgIds = sorted({images[i]["id"] for i in seen})
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])


@pytest.mark.parametrize("precision", ["f32", "int8"])
def test_map_from_the_loadgen_accuracy_log_equals_pycocotools_on_the_same_predictions(
        precision: str, det_onnx: Path, det_dir: Path, coco_root: Path, workdir: Path) -> None:
    from dataset.coco import load_coco, resolve_coco
    from records.detection import coco_map, read_detection_log
    from records.rules import parse_metric_txt

    model = _prepare(det_onnx, precision, det_dir, coco_root)
    if precision == "int8":  # the box decoding (everything after the head's convolutions) stays float
        from modelprep.card import load_card
        assert "box decoding" in load_card(model).calibration["kept_in_float"]
    _, result = run_loadgen_test(workdir, "accuracy", model, coco_root, det_dir / "cache")
    log = result.directory / "mlperf_log_accuracy.json"
    direct = _pycocotools_map(log, coco_root / "annotations" / "instances_val2017.json")
    ours = coco_map(read_detection_log(log), load_coco(*resolve_coco(coco_root)))
    assert direct > 0 and ours.map == direct  # exactly
    assert result.accuracy.metric == "mAP" and result.accuracy.top1_percent == round(100 * direct, 3)
    text = (result.directory / "accuracy.txt").read_text()
    cli = run_cli(["accuracy", "--log", str(log), "--val-map", str(coco_root / "annotations" / "instances_val2017.json")],
                  cwd=workdir)
    assert cli.returncode == 0 and cli.stdout.strip().splitlines()[-1] == f"mAP={100 * direct:.3f}%", cli.stderr
    assert f"mAP={100 * direct:.3f}%" in text.splitlines()
    assert parse_metric_txt(result.directory / "accuracy.txt", "mAP")[0] == round(100 * direct, 3)
    # The LoadGen path delivered each sample's own predictions: those of plain OpenVINO at batch 1, up
    # to the kernels' rounding (which may swap the order of near-equal scores, so rows are matched).
    logged = read_detection_log(log)
    for idx, dets in _direct_detections(model, coco_root, det_dir / "cache").items():
        assert logged[idx].shape == dets.shape
        closest = np.abs(logged[idx][:, None, :] - dets[None, :, :]).max(axis=2).min(axis=1)
        assert (closest < 2e-3).mean() > 0.95, (idx, closest.max())


@pytest.mark.parametrize("scenario", ["SingleStream", "MultiStream", "Server", "Offline"])
def test_every_scenario_runs_the_detector(scenario: str, det_f32: Path, coco_root: Path, det_dir: Path,
                                          workdir: Path) -> None:
    _, result = run_loadgen_test(workdir, "performance", det_f32, coco_root, det_dir / "cache",
                                 "--min-duration-ms", "300", "--min-query-count", "16", *AUTO_QPS,
                                 scenario=scenario)
    assert result.benchmark == "yolo" and result.loadgen["effective_performance_sample_count"] == 64  # mlperf.conf yolo.*
    assert result.latency_ms("99.00") > 0 and result.loadgen["result_query_count"] >= (1 if scenario == "Offline" else 16)


@pytest.mark.parametrize("scenario", ["SingleStream"])  # Offline: the same user.conf writer, another key
def test_tune_writes_the_yolo_keys_of_user_conf(scenario: str, det_f32: Path, workdir: Path) -> None:
    from common.loadgen_conf import lookup, parse_user_conf

    proc = run_cli(["tune", "--model", str(det_f32), "--scenario", scenario, "--seconds", "0.3", "--batches", "1,2",
                    "--requests-per-stream", "1", "--user-conf", "user.conf", "--profile-out",
                    str(workdir / "tuned.yaml"), "--name", "tuned"], cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    key = "target_qps" if scenario == "Offline" else "target_latency"
    conf = parse_user_conf(workdir / "user.conf")
    assert lookup(conf, "yolo", scenario, key) > 0 and f"yolo.{scenario}.{key}" in proc.stdout


def test_test01_compliance_of_the_detector(det_f32: Path, coco_root: Path, det_dir: Path, workdir: Path) -> None:
    """TEST01 (audit config sampling 64 responses, as compliance/TEST01/yolo) passes against the accuracy run."""
    short = ("--min-duration-ms", "300", "--min-query-count", "16", *AUTO_QPS)
    run_loadgen_test(workdir, "accuracy", det_f32, coco_root, det_dir / "cache")
    run_loadgen_test(workdir, "performance", det_f32, coco_root, det_dir / "cache", *short)
    _, test01 = run_loadgen_test(workdir, "TEST01", det_f32, coco_root, det_dir / "cache", *short)
    assert "accuracy_log_sampling_target = 64" in test01.audit_config
    assert test01.compliance["accuracy"]["passed"] is True, test01.compliance
    assert test01.compliance["accuracy"]["num_perf_log_qsl_idx_match"] > 0


def test_cli_refuses_bad_detection_input_in_one_line(det_onnx: Path, det_f32: Path, coco_root: Path,
                                                     det_dir: Path, workdir: Path) -> None:
    """prepare without --task detection names the detector's output shape; run on a non-COCO annotation
    file names the file and the missing key; both exit 2 with one ERROR line."""
    proc = run_cli(["prepare", "--model", str(det_onnx), "--precision", "f32", "--out", str(workdir / "m"),
                    "--cache-dir", str(det_dir / "cache")], cwd=workdir)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 2 and len(errors) == 1 and "[1,7,64]" in errors[0] and "--task detection" in errors[0]
    bad = workdir / "instances_bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": []}))
    proc = run_cli(["run", "--mode", "accuracy", "--model", str(det_f32), "--dataset", str(coco_root), "--val-map",
                    str(bad), "--system", "host", "--cache-dir", str(det_dir / "cache")], cwd=workdir)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
    assert "instances_bad.json: not COCO JSON: missing key 'categories'" in errors[0]
