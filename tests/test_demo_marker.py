"""The demo datasets' one build marker: each builder refuses a directory that holds the other's build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import DatasetError
from dataset import coco_demo, demo


def test_each_demo_builder_refuses_the_other_demo_set(tmp_path: Path) -> None:
    coco = tmp_path / "coco"
    coco.mkdir()
    coco_demo.MARKER.write(coco, {"seed": 0, "counts": {}})
    with pytest.raises(DatasetError, match="coco: not empty and not a demo dataset"):
        demo.build_demo_dataset(coco)
    digits = tmp_path / "digits"
    digits.mkdir()
    demo.MARKER.write(digits, {"seed": 0, "val_size": None})
    with pytest.raises(DatasetError, match="digits: exists and is not a demo detection set"):
        coco_demo.build_coco_demo(digits)
    # Both builds are left as they were.
    assert json.loads((coco / coco_demo.STAMP_FILE).read_text())["name"] == "coco-demo-digits"
    assert json.loads((digits / demo.MARKER_FILE).read_text())["name"] == "demo-digits"


def test_a_marker_of_another_version_is_not_a_complete_build(tmp_path: Path) -> None:
    demo.MARKER.write(tmp_path, {"seed": 0, "val_size": None})
    assert demo.is_built(tmp_path)
    data = json.loads((tmp_path / demo.MARKER_FILE).read_text())
    (tmp_path / demo.MARKER_FILE).write_text(json.dumps({**data, "version": demo.DEMO_VERSION + 1}))
    assert not demo.is_built(tmp_path)
    assert not demo.is_built(tmp_path, seed=1)
