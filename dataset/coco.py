"""COCO-layout detection datasets: an image directory plus an ``instances_*.json`` file.

The QSL index of an image is its position in the annotation file's ``images`` list, as in
the MLCommons YOLO reference (its accuracy script indexes the same list). The file is
checked here, once, so every problem is a one-line error naming the file: not JSON, not
COCO (the missing key), an annotation of an image id the file does not list, a listed image
that is not on disk. pycocotools then reads the checked data for the mAP.

``<root>/val2017/`` and ``<root>/annotations/instances_val2017.json`` is the layout the
reference's accuracy script expects; ``resolve_coco`` finds both from ``<root>``.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import DatasetError
from dataset.val_map import Sample, check_files_exist

DEFAULT_ANNOTATIONS = Path("annotations") / "instances_val2017.json"
IMAGE_DIRS = ("val2017", "val2017_safe")  # COCO's name, and the reference's licence-safe subset's
_TOP_KEYS = ("images", "annotations", "categories")
_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANNOTATION_KEYS = ("image_id", "category_id", "bbox")


@dataclass(frozen=True)
class CocoSet:
    """A checked COCO detection set: images in annotation-file order, their ids and sizes."""

    image_dir: Path
    annotation_file: Path
    names: tuple[str, ...]
    image_ids: np.ndarray  # int64 [N]: COCO image id of QSL index i
    sizes: np.ndarray  # int64 [N, 2]: (height, width) of QSL index i, from the annotation file
    data: dict[str, Any] = field(repr=False, compare=False)

    @property
    def samples(self) -> list[Sample]:
        """The images as cache samples (the label is unused for detection)."""
        return [Sample(name, 0) for name in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def coco(self) -> Any:
        """A pycocotools ``COCO`` over the checked data (its index messages silenced)."""
        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = self.data
            gt.createIndex()
        return gt


def is_coco_dataset(root: Path) -> bool:
    """Whether ``root`` has the reference layout (``annotations/instances_val2017.json``)."""
    return (Path(root) / DEFAULT_ANNOTATIONS).is_file()


def resolve_coco(root: Path, annotation_file: Path | None = None) -> tuple[Path, Path]:
    """(image dir, annotation file) of a COCO-layout dataset: ``<root>/val2017`` (or
    ``val2017_safe``) if it exists, else ``root``; and ``annotation_file`` or
    ``<root>/annotations/instances_val2017.json``."""
    root = Path(root)
    images = next((root / name for name in IMAGE_DIRS if (root / name).is_dir()), root)
    return images, Path(annotation_file) if annotation_file is not None else root / DEFAULT_ANNOTATIONS


def default_label_file(dataset: Path) -> Path:
    """A dataset's labels when none is named: ``val_map.txt`` (ImageNet layout), else the COCO
    annotation file of the reference layout if there is one."""
    val_map = Path(dataset) / "val_map.txt"
    return Path(dataset) / DEFAULT_ANNOTATIONS if not val_map.is_file() and is_coco_dataset(dataset) else val_map


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(f"{path}: COCO annotation file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not COCO JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not COCO JSON (not UTF-8 text)") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: not COCO JSON (expected an object with keys {list(_TOP_KEYS)})")
    return data


def _check_records(path: Path, data: dict[str, Any]) -> None:
    """Every key the reference and pycocotools read, and every annotation's image id."""
    for key in _TOP_KEYS:
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: not COCO JSON: missing key {key!r} (a list)")
    for kind, keys in (("images", _IMAGE_KEYS), ("annotations", _ANNOTATION_KEYS), ("categories", ("id",))):
        for position, rec in enumerate(data[kind]):
            missing = [k for k in keys if not isinstance(rec, dict) or k not in rec]
            if missing:
                raise DatasetError(f"{path}: not COCO JSON: {kind}[{position}] has no key {missing[0]!r}")
    ids = {img["id"] for img in data["images"]}
    if len(ids) != len(data["images"]):
        raise DatasetError(f"{path}: image ids repeat in 'images'")
    for position, ann in enumerate(data["annotations"]):
        if ann["image_id"] not in ids:
            raise DatasetError(f"{path}: annotations[{position}]: image id {ann['image_id']} is not in 'images'")


def load_coco(image_dir: Path, annotation_file: Path, count: int | None = None, check_images: bool = True) -> CocoSet:
    """Read and check a COCO detection set (the first ``count`` images, default all).

    Every listed image must exist under ``image_dir`` (unless ``check_images`` is off: scoring an
    accuracy log needs only the annotations); a missing one is an error naming it.
    """
    annotation_file = Path(annotation_file)
    data = _read_json(annotation_file)
    _check_records(annotation_file, data)
    images = data["images"][:count] if count else data["images"]
    if not images:
        raise DatasetError(f"{annotation_file}: no images listed")
    names = tuple(str(img["file_name"]) for img in images)
    if check_images:
        check_files_exist(image_dir, list(names), f"COCO image (listed in {annotation_file})")
    ids = np.array([int(img["id"]) for img in images], dtype=np.int64)
    sizes = np.array([(int(img["height"]), int(img["width"])) for img in images], dtype=np.int64)
    if (sizes < 1).any():
        bad = int(np.argmin(sizes.min(axis=1)))
        raise DatasetError(f"{annotation_file}: images[{bad}] ({names[bad]}) has a zero width or height")
    return CocoSet(Path(image_dir), annotation_file, names, ids, sizes, data)
