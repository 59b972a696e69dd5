"""The preprocessed cache: built once, reused, rebuilt when a parameter or an image changes."""

import os
from pathlib import Path

import numpy as np
import pytest

from dataset.cache import build_cache
from dataset.preprocess import PreprocessSpec, preprocess_file
from dataset.val_map import parse_val_map
from common.errors import DatasetError


def test_cache_contents_reuse_and_rebuild(demo_data: Path, tmp_path: Path) -> None:
    val = demo_data / "val"
    samples = parse_val_map(val / "val_map.txt")[:40]
    spec = PreprocessSpec(input_size=32)
    info = build_cache(val, samples, spec, tmp_path, workers=2, progress=False)
    data = info.open()
    assert data.shape == (40, 3, 32, 32)
    for i in (0, 17, 39):
        np.testing.assert_array_equal(data[i], preprocess_file(val / samples[i].name, spec))
    mtime = info.data_path.stat().st_mtime_ns
    again = build_cache(val, samples, spec, tmp_path, progress=False)
    assert again.data_path == info.data_path and again.data_path.stat().st_mtime_ns == mtime
    other = build_cache(val, samples, PreprocessSpec(input_size=32, layout="NHWC"), tmp_path, progress=False)
    assert other.data_path != info.data_path and other.open().shape == (40, 32, 32, 3)


def test_changed_image_changes_key(demo_data: Path, tmp_path: Path) -> None:
    src = demo_data / "val"
    samples = parse_val_map(src / "val_map.txt")[:3]
    for s in samples:
        (tmp_path / s.name).write_bytes((src / s.name).read_bytes())
    spec = PreprocessSpec(input_size=32)
    first = build_cache(tmp_path, samples, spec, tmp_path / "c", progress=False)
    os.utime(tmp_path / samples[1].name, ns=(1, 1))
    assert build_cache(tmp_path, samples, spec, tmp_path / "c", progress=False).key != first.key


def test_corrupt_image_names_file_and_leaves_no_cache(demo_data: Path, tmp_path: Path) -> None:
    src = demo_data / "val"
    samples = parse_val_map(src / "val_map.txt")[:5]
    for s in samples:
        (tmp_path / s.name).write_bytes((src / s.name).read_bytes())
    (tmp_path / samples[3].name).write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=samples[3].name):
        build_cache(tmp_path, samples, PreprocessSpec(input_size=32), tmp_path / "c", workers=2, progress=False)
    assert not list((tmp_path / "c").glob("*.json")) and not list((tmp_path / "c").glob("*.u8"))


def test_missing_image_is_named(demo_data: Path, tmp_path: Path) -> None:
    samples = parse_val_map(demo_data / "val" / "val_map.txt")[:3]
    with pytest.raises(DatasetError, match=f"{samples[0].name}: dataset file missing"):
        build_cache(tmp_path, samples, PreprocessSpec(input_size=32), tmp_path / "c", progress=False)


def test_parallel_fill_over_many_chunks_matches_reference_in_order(demo_data: Path, tmp_path: Path) -> None:
    from dataset import cache as cache_module

    val = demo_data / "val"
    samples = parse_val_map(val / "val_map.txt")
    spec = PreprocessSpec(input_size=32)
    assert len(samples) > 3 * cache_module._CHUNK  # several chunks over two worker processes
    data = build_cache(val, samples, spec, tmp_path, workers=2, progress=False).open()
    assert data.shape == (len(samples), *spec.sample_shape)
    expect = np.stack([preprocess_file(val / s.name, spec) for s in samples])
    mismatched = [i for i in range(len(samples)) if not np.array_equal(data[i], expect[i])]
    assert not mismatched, f"rows differing from their image: {mismatched[:10]}"
    assert len({row.tobytes() for row in expect}) > len(samples) // 2  # rows really differ: order is checked


def test_stale_leftovers_of_a_killed_fill_are_not_a_cache(demo_data: Path, tmp_path: Path) -> None:
    """A killed process leaves ``<key>.u8.partial`` (or a renamed ``.u8`` without its ``.json``);
    neither is ever read as a finished cache, and the rebuild leaves no ``.partial``."""
    from dataset.cache import cache_key

    val = demo_data / "val"
    samples = parse_val_map(val / "val_map.txt")[:70]
    spec = PreprocessSpec(input_size=32)
    key = cache_key(val, samples, spec)
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / f"{key}.u8.partial").write_bytes(b"\xff" * 1000)  # wrong size and content
    info = build_cache(val, samples, spec, cache, workers=2, progress=False)
    assert not list(cache.glob("*.partial"))
    for i in (0, 33, 69):
        np.testing.assert_array_equal(info.open()[i], preprocess_file(val / samples[i].name, spec))

    # Killed between the data file's rename and the .json that marks it complete.
    (cache / f"{key}.json").unlink()
    info.data_path.write_bytes(b"\x00" * info.data_path.stat().st_size)
    again = build_cache(val, samples, spec, cache, workers=2, progress=False)
    np.testing.assert_array_equal(again.open()[5], preprocess_file(val / samples[5].name, spec))
    assert (cache / f"{key}.json").is_file() and not list(cache.glob("*.partial"))
