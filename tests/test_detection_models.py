"""The detection side's models and data: the demo COCO set, the YOLO family, the committed detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
DETECTOR_ONNX = REPO / "models" / "weights" / "detector_demo.onnx"
CARD_FIELDS = {"name", "task", "input_size", "num_classes", "category_ids", "mean", "std", "letterbox_pad",
               "trained", "macs", "params", "notes"}
# Small splits: val2017 is rendered first, so these 64 val images are the first 64 of the full set.
SMALL = {"val2017": 64, "train2017": 120}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataset.coco_demo import build_coco_demo

    return build_coco_demo(tmp_path_factory.mktemp("det") / "coco_demo", sizes=SMALL)


def test_demo_set_is_coco_with_sparse_ids_and_boxes_inside(small_set: Path) -> None:
    from pycocotools.coco import COCO

    from dataset.coco_demo import CATEGORY_IDS

    assert CATEGORY_IDS == tuple(range(1, 20, 2))
    for split, count in SMALL.items():
        coco = COCO(str(small_set / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == count and len(coco.getAnnIds()) >= count
        assert sorted(coco.getCatIds()) == list(CATEGORY_IDS)
        used = {a["category_id"] for a in coco.dataset["annotations"]}
        assert used <= set(CATEGORY_IDS) and len(used) >= 8
        for ann in coco.dataset["annotations"]:
            img = coco.imgs[ann["image_id"]]
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= img["width"] and y + h <= img["height"]
            assert ann["area"] == pytest.approx(w * h) and ann["iscrowd"] == 0
        first = coco.imgs[coco.getImgIds()[0]]
        from PIL import Image

        with Image.open(small_set / split / first["file_name"]) as im:
            assert im.size == (first["width"], first["height"]) and im.mode == "RGB"
    cal = (small_set / "cal_list.txt").read_text().split()
    assert len(cal) == 100 and len(set(cal)) == 100
    assert all((small_set / "train2017" / name).is_file() for name in cal)


def test_demo_set_build_is_idempotent_and_refuses_foreign_dirs(small_set: Path, tmp_path: Path) -> None:
    from common.errors import DatasetError
    from dataset.coco_demo import STAMP_FILE, build_coco_demo

    stamp = small_set / STAMP_FILE
    before = stamp.stat().st_mtime_ns
    build_coco_demo(small_set, sizes=SMALL)
    assert stamp.stat().st_mtime_ns == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not a demo set")
    with pytest.raises(DatasetError, match="refusing to overwrite"):
        build_coco_demo(foreign, sizes=SMALL)
    assert (foreign / "keep.txt").is_file()


def test_incomplete_demo_set_is_rebuilt(tmp_path: Path) -> None:
    from dataset.coco_demo import STAMP_FILE, build_coco_demo, is_built

    sizes = {"val2017": 3, "train2017": 100}
    root = build_coco_demo(tmp_path / "d", sizes=sizes)
    (root / STAMP_FILE).unlink()
    (root / "val2017" / "000000000001.jpg").unlink()
    assert not is_built(root, sizes=sizes)
    build_coco_demo(root, sizes=sizes)
    assert is_built(root, sizes=sizes) and (root / "val2017" / "000000000001.jpg").is_file()


def test_yolo11l_is_yolov11_l_sized_and_exports_ultralytics_format(tmp_path: Path) -> None:
    import models
    from models._macs import count_macs, count_params
    from models.export import DETECTOR_IO_NAMES, export_onnx, untrained_card
    from dataset.constants import COCO80_CATEGORY_IDS

    card = models.default_card("yolo11l")
    assert (card.input_size, card.num_classes, card.task) == (640, 80, "detection")
    assert len(COCO80_CATEGORY_IDS) == 80 and COCO80_CATEGORY_IDS[-1] == 90 and 12 not in COCO80_CATEGORY_IDS
    assert "yolo11l" in models.list_models("detection") and "yolo11l" not in models.list_models()
    torch.manual_seed(0)
    net = models.create("yolo11l").eval()
    params = count_params(net)
    assert 24.5e6 < params < 26.5e6, params
    # Convolution MACs scale with the image area: 4x those at 320 are the 640 figure (~43 G).
    macs_640 = 4 * count_macs(net, 320)
    assert 40e9 < macs_640 < 47e9, macs_640
    size = 320
    data = untrained_card("yolo11l", macs_640, params)
    assert set(data) == CARD_FIELDS and data["trained"] is False and "untrained" in data["notes"]
    assert data["category_ids"] == list(COCO80_CATEGORY_IDS) and data["letterbox_pad"] == 114
    data["input_size"] = size
    out = tmp_path / "yolo11l_320.onnx"
    export_onnx(net, out, data, "test", DETECTOR_IO_NAMES)
    model = ov.Core().read_model(str(out))
    assert [p.get_any_name() for p in model.inputs] == ["images"]
    assert [p.get_any_name() for p in model.outputs] == ["output0"]
    compiled = ov.Core().compile_model(model, "CPU")
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    y = compiled(x)[compiled.output(0)]
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    assert y.shape == (1, 84, anchors) == (1, 84, 2100)
    assert np.all((y[:, 4:] >= 0) & (y[:, 4:] <= 1)) and np.all(y[:, 2:4] > 0)
    # Timed, never scored: every anchor passes the 0.001 threshold, the most post-processing work.
    assert np.all(y[0, 4:].max(axis=0) > 0.001)
    # Box centres lie around their anchor points: the grid runs over the whole input.
    assert 0 < y[0, 0].min() < 40 and size - 40 < y[0, 0].max() < size + 40


def _card(path: Path) -> dict:
    import onnx

    from common.model_metadata import CARD_METADATA_KEY

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(meta[CARD_METADATA_KEY])


def test_committed_detector_card() -> None:
    card = _card(DETECTOR_ONNX)
    assert set(card) == CARD_FIELDS
    assert card["task"] == "detection" and card["trained"] is True
    assert (card["input_size"], card["num_classes"]) == (128, 10)
    assert card["category_ids"] == list(range(1, 20, 2))
    assert (card["mean"], card["std"], card["letterbox_pad"]) == ([0, 0, 0], [255, 255, 255], 114)
    assert card["params"] > 0 and card["macs"] > 0
    assert DETECTOR_ONNX.stat().st_size < 3_000_000


def test_committed_detector_reaches_real_map_in_openvino(small_set: Path) -> None:
    """The committed weights, run by OpenVINO on val images preprocessed by the training's loader
    (the harness's letterbox), post-processed and scored by the runtime's own detection code as
    the training evaluates, reach a real mAP (a broken decode or mapping gives ~0)."""
    from dataset.coco_eval import coco_map
    from training.detector import load_split, post_processor, to_input

    card = _card(DETECTOR_ONNX)
    size, ids = card["input_size"], tuple(card["category_ids"])
    split = load_split(small_set, "val2017", size, ids)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(DETECTOR_ONNX)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    heads = np.asarray(compiled(to_input(split.pixels).numpy())[compiled.output(0)])
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    assert heads.shape == (len(split.coco), 4 + card["num_classes"], anchors)
    indices = np.arange(len(heads))
    dets = dict(zip(indices.tolist(), post_processor(split)(heads, indices)))
    assert {int(c) for d in dets.values() for c in d[:, 6]} <= set(ids)
    result = coco_map(dets, split.coco)
    # The committed weights give 0.642 mAP on these 64 images (one class per anchor, as the runtime;
    # a multi-label NMS gives 0.684).
    assert result.map >= 0.5 and result.images == len(split.coco), result
    # Shuffling the predictions between images must destroy the score: it is not free.
    shifted = {(i + 1) % len(dets): d for i, d in dets.items()}
    assert coco_map(shifted, split.coco).map < 0.1


def test_train_detector_runs_through_the_cli_and_exports_a_trained_card(small_set: Path, tmp_path: Path) -> None:
    """``mlperf-cpu train detector`` (two steps on the small set) trains, scores the whole val split
    with the runtime's scoring, exports a trained card, and passes its own OpenVINO-vs-torch check.
    (Two steps score ~0; that the scoring path gives the real figure is the test above.)"""
    import subprocess
    import sys

    out = tmp_path / "det.onnx"
    proc = subprocess.run([sys.executable, "-m", "cli", "train", "detector", "--data", str(small_set), "--out", str(out),
                           "--epochs", "1", "--train-images", "32", "--batch-size", "16", "--eval-every", "1"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"{out}: val2017 mAP@[.5:.95] ")
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["command"].startswith("mlperf-cpu train detector --data")
    assert log["eval"]["images"] == SMALL["val2017"] and log["history"][0]["val_map"] == log["val_map"]
    assert 0.0 <= log["val_map"] <= 1.0 and log["openvino_torch_max_abs_diff"] <= 1e-2
    card = _card(out)
    assert set(card) == CARD_FIELDS and card["trained"] is True and "mlperf-cpu train detector" in card["notes"]
