"""Preprocessing must equal a plain re-implementation of the MLCommons reference steps,
on real image files of several kinds: landscape, portrait, tiny, grayscale, CMYK, PNG named .JPEG.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from dataset.preprocess import PreprocessSpec, decode_image, preprocess_file
from common.errors import DatasetError


def reference(path: Path, size: int = 224) -> np.ndarray:
    """The reference steps written out literally (imread, RGB, aspect resize, crop, CHW)."""
    img = cv2.imread(str(path))
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    height, width, _ = img.shape
    new_height = int(100.0 * size / 87.5)
    new_width = int(100.0 * size / 87.5)
    if height > width:
        w = new_width
        h = int(new_height * height / width)
    else:
        h = new_height
        w = int(new_width * width / height)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    height, width, _ = img.shape
    left, right = int((width - size) / 2), int((width + size) / 2)
    top, bottom = int((height - size) / 2), int((height + size) / 2)
    img = img[top:bottom, left:right]
    return np.asarray(img, dtype="float32").transpose([2, 0, 1])


def _images(tmp: Path) -> dict[str, Path]:
    """Write real photos from scikit-image in the shapes and formats ImageNet val contains."""
    astro = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)          # 512x512 colour
    coffee = cv2.cvtColor(skdata.coffee(), cv2.COLOR_RGB2BGR)            # 400x600 landscape
    out = {
        "landscape": (coffee, ".JPEG", None),
        "portrait": (np.ascontiguousarray(coffee.transpose(1, 0, 2)), ".JPEG", None),
        "odd_sizes": (cv2.resize(astro, (333, 517)), ".JPEG", None),
        "tiny": (cv2.resize(astro, (61, 45), interpolation=cv2.INTER_AREA), ".JPEG", None),
        "grayscale": (skdata.camera(), ".JPEG", None),                   # single channel
        "png_named_jpeg": (coffee, ".png", "png_as.JPEG"),
    }
    paths = {}
    for name, (img, ext, rename) in out.items():
        ok, buf = cv2.imencode(ext, img)
        assert ok
        path = tmp / (rename or f"{name}.JPEG")
        path.write_bytes(buf.tobytes())
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _images(tmp_path_factory.mktemp("imgs"))


@pytest.mark.parametrize("kind", ["landscape", "portrait", "odd_sizes", "tiny", "grayscale", "png_named_jpeg"])
def test_matches_reference(images: dict[str, Path], kind: str) -> None:
    ours = preprocess_file(images[kind], PreprocessSpec())
    assert ours.dtype == np.uint8 and ours.shape == (3, 224, 224)
    np.testing.assert_array_equal(ours.astype(np.float32), reference(images[kind]))


def test_nhwc_layout_is_a_transpose(images: dict[str, Path]) -> None:
    nchw = preprocess_file(images["landscape"], PreprocessSpec(layout="NCHW"))
    nhwc = preprocess_file(images["landscape"], PreprocessSpec(layout="NHWC"))
    np.testing.assert_array_equal(nchw, nhwc.transpose(2, 0, 1))


def test_cmyk_jpeg_decodes_like_opencv(tmp_path: Path) -> None:
    from PIL import Image

    rgb = skdata.astronaut()[:300, :200]
    path = tmp_path / "cmyk.JPEG"
    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    np.testing.assert_array_equal(preprocess_file(path, PreprocessSpec()).astype(np.float32), reference(path))
    assert decode_image(path).shape == (300, 200, 3)


def test_small_model_geometry(images: dict[str, Path]) -> None:
    spec = PreprocessSpec(input_size=32)
    assert spec.resize_size == 36
    np.testing.assert_array_equal(preprocess_file(images["odd_sizes"], spec).astype(np.float32),
                                  reference(images["odd_sizes"], 32))


def test_corrupt_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DatasetError, match="broken.JPEG: not a decodable image"):
        preprocess_file(bad, PreprocessSpec())
    with pytest.raises(DatasetError, match="absent.JPEG: cannot read image"):
        preprocess_file(tmp_path / "absent.JPEG", PreprocessSpec())


def test_spec_key_changes_with_every_parameter() -> None:
    base = PreprocessSpec()
    variants = [PreprocessSpec(input_size=192), PreprocessSpec(crop_pct=0.9),
                PreprocessSpec(interpolation="linear"), PreprocessSpec(layout="NHWC")]
    assert len({base.key(), *(v.key() for v in variants)}) == 5
