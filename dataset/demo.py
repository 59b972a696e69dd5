"""The bundled demo dataset: scikit-learn's digits rendered in ImageNet val layout.

``load_digits()`` ships inside scikit-learn, so the demo builds fully offline
in a few seconds. Each 8x8 digit becomes a small tinted colour image of random
size and aspect (both portrait and landscape), written as JPEG; a few are
single-channel JPEGs and a few are PNG bytes under a ``.JPEG`` name, because
real ImageNet val has both and the harness must decode them like the reference.

Layout of the output directory::

    train/DEMO_train_00000.JPEG ... train/train_map.txt
    val/DEMO_val_00000.JPEG ...     val/val_map.txt
    cal_list.txt                    (names from the train split)
    dataset.json                    (written last: the completion marker)

The build goes into a temporary sibling directory that is renamed into place
at the end, so an interrupted build never leaves a directory that looks
complete.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from common.errors import DatasetError
from dataset.marker import BuildMarker, build_aside, refuse

logger = logging.getLogger(__name__)

DEMO_NAME = "demo-digits"
# Bump whenever the rendered bytes change, so stale builds are rebuilt.
DEMO_VERSION = 1
DEMO_NUM_CLASSES = 10
MARKER_FILE = "dataset.json"
MARKER = BuildMarker(MARKER_FILE, DEMO_NAME, DEMO_VERSION)
CAL_LIST_FILE = "cal_list.txt"

_VAL_FRACTION = 0.25
_CAL_PER_CLASS = 30
_GRAYSCALE_FRACTION = 0.03
_PNG_FRACTION = 0.01
_MIN_SIDE, _MAX_SIDE = 36, 80
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class _Split:
    """One split's source digits (8x8, values 0..16) and labels, in file order."""

    name: str
    images: np.ndarray
    labels: np.ndarray


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return (images [N,8,8] float, labels [N] int) from scikit-learn's bundled copy."""
    from sklearn.datasets import load_digits  # heavy import, only needed to build

    digits = load_digits()
    return digits.images, digits.target.astype(np.int64)


def _stratified_split(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices per class into (train, val), each shuffled, ~``_VAL_FRACTION`` val."""
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_val = int(round(len(idx) * _VAL_FRACTION))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    # Shuffle across classes so the map is not sorted by label, as in ImageNet val.
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def _random_colour(rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    """A random RGB colour with every channel in [low, high]."""
    return rng.integers(low, high + 1, size=3).astype(np.float32)


def render_digit(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render one 8x8 digit (0..16) as an HxWx3 uint8 RGB image of random size and tint.

    The digit is drawn at ~70-85% of the short side and kept near the centre,
    so the reference centre crop (87.5% of the short side) keeps it visible
    whatever the aspect ratio.
    """
    width, height = (int(v) for v in rng.integers(_MIN_SIDE, _MAX_SIDE + 1, size=2))
    short = min(width, height)
    glyph_h = int(short * rng.uniform(0.70, 0.85))
    glyph_w = int(np.clip(glyph_h * rng.uniform(0.85, 1.10), 8, short))
    glyph = np.clip(digit.astype(np.float32) * (255.0 / 16.0), 0, 255)
    glyph = cv2.resize(glyph, (glyph_w, glyph_h), interpolation=cv2.INTER_CUBIC)
    # Cubic overshoots; alpha must stay in 0..1.
    alpha = np.zeros((height, width), np.float32)
    jitter = max(1, short // 20)
    top = (height - glyph_h) // 2 + int(rng.integers(-jitter, jitter + 1))
    left = (width - glyph_w) // 2 + int(rng.integers(-jitter, jitter + 1))
    top = int(np.clip(top, 0, height - glyph_h))
    left = int(np.clip(left, 0, width - glyph_w))
    alpha[top:top + glyph_h, left:left + glyph_w] = np.clip(glyph / 255.0, 0.0, 1.0)
    background = _random_colour(rng, 0, 100)
    foreground = _random_colour(rng, 150, 255)
    rgb = background + alpha[..., None] * (foreground - background)
    rgb += rng.normal(0.0, 4.0, size=rgb.shape).astype(np.float32)  # sensor-like noise
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _encode(rgb: np.ndarray, kind: str) -> bytes:
    """Encode an RGB image as colour JPEG, grayscale JPEG or PNG bytes."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if kind == "gray":
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
                               [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    elif kind == "png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise DatasetError(f"OpenCV could not encode a demo image as {kind}")
    return buf.tobytes()


def _pick_kinds(count: int, rng: np.random.Generator) -> list[str]:
    """Choose which files of a split are grayscale JPEG or PNG (at least one of each)."""
    kinds = ["jpeg"] * count
    order = rng.permutation(count)
    n_gray = max(1, int(round(count * _GRAYSCALE_FRACTION)))
    n_png = max(1, int(round(count * _PNG_FRACTION)))
    for i in order[:n_gray]:
        kinds[i] = "gray"
    for i in order[n_gray:n_gray + n_png]:
        kinds[i] = "png"
    return kinds


def _write_split(root: Path, split: _Split, rng: np.random.Generator) -> tuple[list[str], dict[str, int]]:
    """Write a split's images and ``<split>_map.txt``; return the file names and kind counts."""
    split_dir = root / split.name
    split_dir.mkdir(parents=True)
    kinds = _pick_kinds(len(split.labels), rng)
    names: list[str] = []
    for i, (digit, kind) in enumerate(zip(split.images, kinds)):
        name = f"DEMO_{split.name}_{i:05d}.JPEG"
        (split_dir / name).write_bytes(_encode(render_digit(digit, rng), kind))
        names.append(name)
    lines = [f"{n} {int(label)}\n" for n, label in zip(names, split.labels)]
    (split_dir / f"{split.name}_map.txt").write_text("".join(lines))
    counts = {kind: kinds.count(kind) for kind in ("jpeg", "gray", "png")}
    return names, counts


def _calibration_names(names: list[str], labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Draw a class-balanced calibration list from the train split, in file order."""
    chosen: list[int] = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        chosen.extend(rng.choice(idx, size=min(_CAL_PER_CLASS, len(idx)), replace=False).tolist())
    return [names[i] for i in sorted(chosen)]


def read_marker(out_dir: Path) -> dict | None:
    """Return the parsed ``dataset.json`` of a built demo dataset, or None if absent/unreadable."""
    return MARKER.read(out_dir)


def is_built(out_dir: Path, seed: int = 0, val_size: int | None = None) -> bool:
    """True if ``out_dir`` holds a complete demo dataset of this version, seed and val size."""
    return MARKER.holds(out_dir, seed=seed, val_size=val_size)


def _build_into(root: Path, seed: int, val_size: int | None) -> dict:
    """Render the whole dataset into the empty directory ``root``; return the marker data.

    With ``val_size`` the val split is that long: its held-out digits are reused in
    turn, each time rendered afresh (new size, aspect, tint, position and noise), so
    a full-size (50,000-sample) accuracy run is possible without touching the train split.
    """
    images, labels = _load_digits()
    rng = np.random.default_rng(seed)
    train_idx, val_idx = _stratified_split(labels, rng)
    if val_size is not None:
        val_idx = np.resize(val_idx, val_size)
    summary: dict = {"name": DEMO_NAME, "version": DEMO_VERSION, "seed": seed, "val_size": val_size,
                     "num_classes": DEMO_NUM_CLASSES,
                     "source": "sklearn.datasets.load_digits", "counts": {}, "formats": {}}
    split_names: dict[str, list[str]] = {}
    for split_name, idx in (("train", train_idx), ("val", val_idx)):
        split = _Split(split_name, images[idx], labels[idx])
        names, kinds = _write_split(root, split, rng)
        split_names[split_name] = names
        summary["counts"][split_name] = len(names)
        summary["formats"][split_name] = kinds
    cal = _calibration_names(split_names["train"], labels[train_idx], rng)
    (root / CAL_LIST_FILE).write_text("".join(f"{n}\n" for n in cal))
    summary["counts"]["calibration"] = len(cal)
    summary["calibration_split"] = "train"
    MARKER.write(root, summary, indent=2, sort_keys=True)
    return summary


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything at ``out_dir`` other than a demo build or an empty dir."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DatasetError(f"{out_dir}: exists and is not a directory")
    if read_marker(out_dir) is None and any(out_dir.iterdir()):
        raise DatasetError(
            f"{out_dir}: not empty and not a demo dataset; refusing to overwrite it")
    refuse(MARKER.foreign(out_dir))


def build_demo_dataset(out_dir: Path, seed: int = 0, val_size: int | None = None) -> Path:
    """Build the demo dataset into ``out_dir`` (idempotent) and return ``out_dir``.

    Does nothing if ``out_dir`` already holds a complete build of this version
    and seed. A stale demo build is replaced; a non-empty directory that is not
    a demo build is a ``DatasetError`` rather than being deleted.
    """
    out_dir = Path(out_dir).absolute()
    if is_built(out_dir, seed, val_size):
        logger.info("demo dataset already built at %s (seed %d)", out_dir, seed)
        return out_dir
    _check_replaceable(out_dir)  # fail before rendering, not after
    summary = build_aside(out_dir, lambda tmp: _build_into(tmp, seed, val_size),
                          lambda root: is_built(root, seed, val_size))
    logger.info("built demo dataset at %s: %s", out_dir, summary["counts"])
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m dataset.demo --out DIR [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output dataset directory")
    parser.add_argument("--seed", type=int, default=0, help="split/rendering seed (default 0)")
    parser.add_argument("--val-size", type=int,
                        help="render this many val images (held-out digits re-rendered; e.g. 50000)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        path = build_demo_dataset(args.out, args.seed, args.val_size)
    except DatasetError as exc:
        logging.error("%s", exc)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
