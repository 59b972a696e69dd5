"""The bundled demo detection set: digits pasted onto photos, in COCO layout.

Everything comes from data packages ship, so it builds offline in seconds:
scikit-learn's 8x8 digits (upscaled, tinted, alpha-blended) are pasted at
random scales (12-60 % of the image's shorter side) and places, a few per
image with little overlap, onto random crops of scikit-image's photos
(``skimage.data``: flipped, resized to COCO-like sizes and aspect ratios).
Val images use digits held out from the train images' digits.

Layout, as COCO 2017::

    val2017/000000000001.jpg ...        (300 images)
    train2017/000000100001.jpg ...      (4,000 images)
    annotations/instances_val2017.json, instances_train2017.json
    cal_list.txt                        (100 train2017 file names, like coco_cal_images_list.txt)
    coco_demo.json                      (written last: the completion stamp)

Digit ``d`` has the SPARSE category id ``2*d + 1`` (1, 3, ..., 19), as COCO's
80 classes have ids up to 90: a consumer must map class index -> category id.
Boxes are COCO ``[x, y, w, h]`` in pixels, tight around the visible glyph.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from common.errors import DatasetError
from dataset.demo import _load_digits, _stratified_split
from dataset.marker import BuildMarker, build_aside

logger = logging.getLogger(__name__)

COCO_DEMO_NAME = "coco-demo-digits"
# Bump whenever the rendered bytes change, so stale builds are rebuilt.
COCO_DEMO_VERSION = 2
STAMP_FILE = "coco_demo.json"
MARKER = BuildMarker(STAMP_FILE, COCO_DEMO_NAME, COCO_DEMO_VERSION)
CAL_LIST_FILE = "cal_list.txt"
NUM_CLASSES = 10
# Class index d (the digit) -> COCO category id; sparse on purpose, like COCO's 80 -> 91.
CATEGORY_IDS = tuple(2 * d + 1 for d in range(NUM_CLASSES))
# val2017 has the round's 1,525 accuracy samples (the checker wants exactly that many for yolo).
SPLIT_SIZES = {"val2017": 1525, "train2017": 4000}
# val2017's first images are rendered before train2017 and the rest after it: the set once had
# 300 val images, and growing it this way left train2017 (and so the committed detector, which
# training.detector made from it) byte-identical.
_VAL_BEFORE_TRAIN = 300
CAL_COUNT = 100

_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
           "camera", "coins", "moon", "page", "text", "grass", "gravel", "brick", "colorwheel")
_SIDE_RANGE = (160, 400)      # longer side of an image, pixels
_ASPECTS = (0.6, 1.8)         # width / height
_SCALE_RANGE = (0.12, 0.60)   # glyph height / shorter image side
_MAX_OBJECTS = 6
_MAX_OVERLAP = 0.2            # intersection / smaller area allowed between pasted digits
_ALPHA_VISIBLE = 0.25         # glyph alpha that counts as part of the box
_JPEG_QUALITY = 90
_IMAGE_ID_BASE = {"val2017": 1, "train2017": 100001}


@dataclass(frozen=True)
class _Sources:
    """What images are made of: background photos and the split's digits."""

    photos: list[np.ndarray]
    digits: np.ndarray
    labels: np.ndarray


def _load_photos() -> list[np.ndarray]:
    """scikit-image's bundled photos as HxWx3 uint8 RGB (grayscale ones replicated)."""
    from skimage import data  # heavy import, only needed to build

    photos = []
    for name in _PHOTOS:
        img = np.asarray(getattr(data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return photos


def _background(photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random crop of a random photo, maybe flipped, resized to a COCO-like size."""
    photo = photos[int(rng.integers(len(photos)))]
    long_side = int(rng.integers(_SIDE_RANGE[0], _SIDE_RANGE[1] + 1))
    aspect = float(np.exp(rng.uniform(np.log(_ASPECTS[0]), np.log(_ASPECTS[1]))))
    width, height = (long_side, int(round(long_side / aspect))) if aspect >= 1 else \
        (int(round(long_side * aspect)), long_side)
    ph, pw = photo.shape[:2]
    # Crop a window of the target aspect covering 30-100 % of the photo's limiting side.
    frac = rng.uniform(0.3, 1.0)
    crop_w = min(pw, int(frac * min(pw, ph * aspect)))
    crop_h = min(ph, int(round(crop_w / aspect)))
    y0 = int(rng.integers(0, ph - crop_h + 1))
    x0 = int(rng.integers(0, pw - crop_w + 1))
    crop = photo[y0:y0 + crop_h, x0:x0 + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two [x0, y0, x1, y1] boxes over the smaller one's area
    (unlike IoU, also catches a small digit pasted inside a big one)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if smaller > 0 else 0.0


def _glyph_alpha(digit: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """An 8x8 digit (0..16) as an alpha mask of the given size, sometimes binarised."""
    alpha = cv2.resize(digit.astype(np.float32) / 16.0, (width, height), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.3:
        alpha = cv2.GaussianBlur((alpha > 0.45).astype(np.float32), (0, 0), max(0.5, height / 40))
    return np.clip(alpha, 0.0, 1.0)


def _contrasting_colour(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour far from the mean colour of ``patch`` (so the digit is visible)."""
    mean = patch.reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.integers(0, 256, size=3).astype(np.float32)
        if np.linalg.norm(colour - mean) > 160:
            return colour
    return np.where(mean > 127, 0.0, 255.0).astype(np.float32)


def _paste_digits(img: np.ndarray, src: _Sources, rng: np.random.Generator) -> list[tuple[int, list[float]]]:
    """Alpha-blend 1..6 digits into ``img`` in place; return (class, [x, y, w, h]) per digit."""
    height, width = img.shape[:2]
    short = min(height, width)
    placed: list[np.ndarray] = []
    objects: list[tuple[int, list[float]]] = []
    for _ in range(int(rng.integers(1, _MAX_OBJECTS + 1))):
        gh = int(short * rng.uniform(*_SCALE_RANGE))
        gw = min(width, max(6, int(gh * rng.uniform(0.7, 1.2))))
        for _attempt in range(10):
            y0, x0 = int(rng.integers(0, height - gh + 1)), int(rng.integers(0, width - gw + 1))
            cell = np.array([x0, y0, x0 + gw, y0 + gh], np.float32)
            if all(_overlap(cell, other) <= _MAX_OVERLAP for other in placed):
                break
        else:
            continue  # no free place for this size: fewer digits in this image
        k = int(rng.integers(len(src.labels)))
        alpha = _glyph_alpha(src.digits[k], gh, gw, rng)
        ys, xs = np.nonzero(alpha >= _ALPHA_VISIBLE)
        if len(ys) == 0:
            continue
        patch = img[y0:y0 + gh, x0:x0 + gw].astype(np.float32)
        colour = _contrasting_colour(patch, rng)
        img[y0:y0 + gh, x0:x0 + gw] = np.clip(
            np.rint(patch + alpha[..., None] * (colour - patch)), 0, 255).astype(np.uint8)
        placed.append(cell)
        box = [float(x0 + xs.min()), float(y0 + ys.min()),
               float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
        objects.append((int(src.labels[k]), box))
    return objects


def _write_split(root: Path, split: str, count: int, src: _Sources, rng: np.random.Generator,
                 coco: dict | None = None) -> dict:
    """Render ``count`` more images of one split into ``root/split``; return its COCO annotation
    dict (``coco`` extended, when given)."""
    (root / split).mkdir(parents=True, exist_ok=True)
    images = coco["images"] if coco else []
    annotations = coco["annotations"] if coco else []
    for i in range(len(images), len(images) + count):
        image_id = _IMAGE_ID_BASE[split] + i
        name = f"{image_id:012d}.jpg"
        img = np.ascontiguousarray(_background(src.photos, rng))
        objects = _paste_digits(img, src, rng)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        if not ok:
            raise DatasetError(f"{root / split / name}: JPEG encoding failed")
        (root / split / name).write_bytes(buf.tobytes())
        images.append({"id": image_id, "file_name": name, "width": img.shape[1], "height": img.shape[0]})
        for cls, box in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": CATEGORY_IDS[cls], "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": cid, "name": str(d), "supercategory": "digit"} for d, cid in enumerate(CATEGORY_IDS)]
    return {"info": {"description": f"{COCO_DEMO_NAME} {split}", "version": str(COCO_DEMO_VERSION)},
            "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def _build_into(root: Path, seed: int, sizes: Mapping[str, int]) -> dict:
    """Render the whole set into the empty directory ``root``; return the stamp data.

    val2017's first images are rendered first, so they do not depend on the split sizes.
    """
    digits, labels = _load_digits()
    rng = np.random.default_rng(seed)
    train_idx, val_idx = _stratified_split(labels, rng)
    photos = _load_photos()
    (root / "annotations").mkdir()
    counts: dict[str, dict[str, int]] = {}
    val_src = _Sources(photos, digits[val_idx], labels[val_idx])
    val_first = min(sizes["val2017"], _VAL_BEFORE_TRAIN)
    val = _write_split(root, "val2017", val_first, val_src, rng)
    train = _write_split(root, "train2017", sizes["train2017"],
                         _Sources(photos, digits[train_idx], labels[train_idx]), rng)
    names = sorted(img["file_name"] for img in train["images"])
    cal = sorted(rng.choice(names, size=CAL_COUNT, replace=False).tolist())
    (root / CAL_LIST_FILE).write_text("".join(f"{n}\n" for n in cal))
    val = _write_split(root, "val2017", sizes["val2017"] - val_first, val_src, rng, val)
    for split, coco in (("val2017", val), ("train2017", train)):
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
        counts[split] = {"images": len(coco["images"]), "annotations": len(coco["annotations"])}
    stamp = {"name": COCO_DEMO_NAME, "version": COCO_DEMO_VERSION, "seed": seed, "counts": counts,
             "category_ids": list(CATEGORY_IDS),
             "source": "sklearn.datasets.load_digits on skimage.data photos"}
    MARKER.write(root, stamp, indent=2)
    return stamp


def read_stamp(root: Path) -> dict | None:
    """The parsed stamp of a built demo set at ``root``, or None if absent/unreadable."""
    return MARKER.read(root)


def is_built(root: Path, seed: int = 0, sizes: Mapping[str, int] = SPLIT_SIZES) -> bool:
    """True if ``root`` holds a complete build of this version, seed and split sizes."""
    if not MARKER.holds(root, seed=seed):
        return False
    counts = (read_stamp(root) or {}).get("counts", {})
    return all(counts.get(split, {}).get("images") == n for split, n in sizes.items())


def _replaceable(root: Path) -> bool:
    """True for a directory holding only what a demo build writes (maybe incomplete or stale)."""
    if not root.is_dir():
        return False
    if MARKER.foreign(root):
        return False
    ours = {*SPLIT_SIZES, "annotations", CAL_LIST_FILE, STAMP_FILE}
    return all(entry.name in ours for entry in root.iterdir())


def build_coco_demo(root: Path, seed: int = 0, sizes: Mapping[str, int] = SPLIT_SIZES) -> Path:
    """Build the demo detection set into ``root`` (idempotent) and return ``root``.

    A complete build of this version, seed and ``sizes`` (images per split; the
    tests build smaller ones) is kept; an incomplete or stale one is rebuilt. A
    directory holding anything a build does not write is a ``DatasetError``
    rather than being deleted. The build goes to a temporary sibling renamed into place, so
    an interrupted build never looks complete.
    """
    root = Path(root).absolute()
    if set(sizes) != set(SPLIT_SIZES) or sizes["train2017"] < CAL_COUNT:
        raise ValueError(f"sizes must give both {sorted(SPLIT_SIZES)} with at least {CAL_COUNT} train images")
    if is_built(root, seed, sizes):
        return root
    if root.exists() and not _replaceable(root):
        raise DatasetError(f"{root}: exists and is not a demo detection set; refusing to overwrite it")
    build_aside(root, lambda tmp: _build_into(tmp, seed, sizes), lambda done: is_built(done, seed, sizes))
    logger.info("built demo detection set at %s", root)
    return root


def main(argv: list[str] | None = None) -> int:
    """``python -m dataset.coco_demo [--out DIR] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/coco_demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = build_coco_demo(args.out, args.seed)
    print(f"{root}: {json.dumps(read_stamp(root)['counts'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
