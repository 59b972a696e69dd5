"""Real photographs in ImageNet val layout, from the sample images scikit-image ships.

There is no ImageNet on the machines this project is tested on, but
scikit-image's sample data holds a few real photographs (a cat, a cup of
coffee, a rocket, a cameraman with a tripod, ...). Whole photos, with labels
a person chooses, check that a trained ImageNet model served by the harness
sees what a person sees; random crops of them give more, varied real images
for calibration and for held-out agreement checks, where the label is a
reference model's own prediction. Needs scikit-image (test and train extras);
nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from common.errors import DatasetError

# Colour (or grey) photographs in scikit-image's bundled data, not drawings or micrographs.
PHOTOS = ("chelsea", "coffee", "rocket", "camera", "astronaut", "coins", "clock", "horse", "moon",
          "brick", "grass", "gravel", "hubble_deep_field", "retina", "immunohistochemistry")
_MIN_CROP_SIDE = 96
_JPEG_QUALITY = 95


def photo(name: str) -> np.ndarray:
    """scikit-image photo ``name`` as uint8 RGB ``[H, W, 3]``."""
    from skimage import data  # noqa: PLC0415 - a test/train dependency, not a runtime one

    if name not in PHOTOS:
        raise DatasetError(f"unknown photo {name!r} (known: {', '.join(PHOTOS)})")
    img = np.asarray(getattr(data, name)())
    if img.dtype != np.uint8:
        img = (255 * img).clip(0, 255).astype(np.uint8) if img.max() <= 1 else img.clip(0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def random_crops(names: tuple[str, ...], count: int, seed: int, prefix: str = "",
                 min_area: float = 0.1) -> dict[str, np.ndarray]:
    """``count`` random crops (``min_area``-100 % of the area, aspect 3:4..4:3, mirrored half the time)
    of the photos, keyed ``<prefix><photo>_crop<i>``."""
    rng = np.random.default_rng(seed)
    sources = [photo(n) for n in names]
    crops = {}
    for i in range(count):
        k = int(rng.integers(len(sources)))
        img = sources[k]
        h, w = img.shape[:2]
        area = rng.uniform(min_area, 1.0) * h * w
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(min(h, max(_MIN_CROP_SIDE, round(np.sqrt(area / aspect)))))
        cw = int(min(w, max(_MIN_CROP_SIDE, round(np.sqrt(area * aspect)))))
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        crop = img[y:y + ch, x:x + cw]
        crops[f"{prefix}{names[k]}_crop{i:04d}"] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return crops


def write_images(out_dir: Path, images: dict[str, np.ndarray], labels: dict[str, int] | None = None) -> list[str]:
    """Write each image as ``<key>.JPEG`` into ``out_dir``; with ``labels``, also ``val_map.txt``.

    Returns the file names in order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for key, rgb in images.items():
        name = f"{key}.JPEG"
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
        if not ok:
            raise DatasetError(f"{out_dir / name}: JPEG encoding failed")
        (out_dir / name).write_bytes(buf.tobytes())
        names.append(name)
    if labels is not None:
        write_val_map(out_dir / "val_map.txt", {n: labels[k] for n, k in zip(names, images)})
    return names


def write_val_map(path: Path, labels: dict[str, int]) -> Path:
    """``name label`` lines, in the given order."""
    Path(path).write_text("".join(f"{name} {label}\n" for name, label in labels.items()))
    return Path(path)
