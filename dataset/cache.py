"""The preprocessed-sample cache: one uint8 memmap per (dataset, preprocessing) pair.

Preprocessing runs once, in parallel over all cores, and writes every sample
into a partial file of its own (``<key>.u8.<pid>-<random>.partial``: two builds of
one key never write into each other's file, nor into one that is mapped), renamed
to ``<key>.u8`` when full; ``<key>.json`` is written last and marks the cache
complete. The key hashes every preprocessing parameter and the dataset's file list
(names, sizes, modification times), so a changed parameter or image rebuilds it and
an unchanged one is reused. A hit is checked against the size its shape implies; a
data file of any other size (truncated, say) is rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dataset.preprocess import PreprocessSpec, preprocess_file
from dataset.val_map import Sample, check_files_exist
from common.errors import DatasetError
from common.files import write_text_atomic

log = logging.getLogger(__name__)

_CHUNK = 16


@dataclass(frozen=True)
class CacheInfo:
    """Where a built cache lives and what it holds."""

    data_path: Path
    count: int
    sample_shape: tuple[int, ...]
    key: str

    def open(self) -> np.memmap:
        """Open the cache read-only as an (N, *sample_shape) uint8 memmap."""
        return np.memmap(self.data_path, dtype=np.uint8, mode="r",
                         shape=(self.count, *self.sample_shape))


def cache_key(root: Path, samples: list[Sample], spec: PreprocessSpec) -> str:
    """Hash of the preprocessing spec and of each file's name, size and mtime."""
    h = hashlib.sha256(spec.key().encode())
    for sample in samples:
        st = (root / sample.name).stat()
        h.update(f"{sample.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _fill_chunk(args: tuple[str, int, int, tuple[int, ...], list[str], PreprocessSpec, str]) -> int:
    """Worker: preprocess ``names`` into rows ``start..`` of the memmap at ``path``."""
    path, count, start, shape, names, spec, root = args
    out = np.memmap(path, dtype=np.uint8, mode="r+", shape=(count, *shape))
    for offset, name in enumerate(names):
        out[start + offset] = preprocess_file(Path(root) / name, spec)
    out.flush()
    return len(names)


def build_cache(root: Path, samples: list[Sample], spec: PreprocessSpec, cache_dir: Path,
                workers: int | None = None, progress: bool = True) -> CacheInfo:
    """Return the cache for ``samples`` under ``spec``, building it if absent.

    A missing or undecodable image raises ``DatasetError`` naming the file; the
    partial cache is removed so nothing incomplete is ever reused.
    """
    root = Path(root)
    check_files_exist(root, [s.name for s in samples], "dataset")
    key = cache_key(root, samples, spec)
    cache_dir = Path(cache_dir)
    data_path = cache_dir / f"{key}.u8"
    meta_path = cache_dir / f"{key}.json"
    info = CacheInfo(data_path, len(samples), spec.sample_shape, key)
    if meta_path.is_file() and data_path.is_file():
        wrong = _hit_problem(info, meta_path)
        if wrong is None:
            log.info("preprocessed cache hit: %s (%d samples)", data_path, len(samples))
            return info
        log.warning("preprocessed cache %s: %s; rebuilding it", data_path, wrong)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{cache_dir}: cannot create cache directory ({exc.strerror})") from None
    _remove_stale_partials(data_path)
    tmp_path = data_path.with_name(f"{data_path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        _write_all(root, samples, spec, tmp_path, workers or os.cpu_count() or 1, progress)
        os.replace(tmp_path, data_path)  # a reader mapping the old file keeps it until it lets go
    finally:
        tmp_path.unlink(missing_ok=True)
    meta = {"count": len(samples), "sample_shape": list(spec.sample_shape), "dtype": "uint8",
            "spec": asdict(spec), "root": str(root.resolve())}
    write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    log.info("preprocessed cache built: %s (%d samples)", data_path, len(samples))
    return info


def _remove_stale_partials(data_path: Path) -> None:
    """Delete partial files of this key left by processes that no longer exist (killed mid-fill);
    a live build's partial file is left alone."""
    for partial in data_path.parent.glob(f"{data_path.name}*.partial"):
        pid = partial.name[len(data_path.name):].lstrip(".").split("-")[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        partial.unlink(missing_ok=True)
        log.info("removed %s: left by a build that did not finish", partial)


def _alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _hit_problem(info: CacheInfo, meta_path: Path) -> str | None:
    """Why a cache found on disk cannot be used (None: it can): its data file must have exactly the
    bytes its shape implies, and its marker must describe that shape."""
    expected = info.count * int(np.prod(info.sample_shape))  # uint8: one byte per value
    size = info.data_path.stat().st_size
    if size != expected:
        return f"{size} bytes, expected {expected} ({info.count} samples of {'x'.join(map(str, info.sample_shape))})"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        return f"{meta_path.name} unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("count") != info.count or \
            list(meta.get("sample_shape") or []) != list(info.sample_shape):
        return f"{meta_path.name} describes another shape"
    return None


def _write_all(root: Path, samples: list[Sample], spec: PreprocessSpec, path: Path,
               workers: int, progress: bool) -> None:
    """Preprocess every sample into a fresh memmap at ``path`` using ``workers`` processes."""
    count, shape = len(samples), spec.sample_shape
    np.memmap(path, dtype=np.uint8, mode="w+", shape=(count, *shape)).flush()
    jobs = [(str(path), count, start, shape, [s.name for s in samples[start:start + _CHUNK]],
             spec, str(root)) for start in range(0, count, _CHUNK)]
    bar = _progress_bar(count, f"preprocess {root.name}", progress)
    try:
        if workers <= 1 or len(jobs) == 1:
            for job in jobs:
                bar.update(_fill_chunk(job))
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            try:
                for done in pool.map(_fill_chunk, jobs):
                    bar.update(done)
            except BaseException:
                # An interrupt or a bad image: drop the chunks not started, wait only for those in flight.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        bar.close()


def _progress_bar(total: int, desc: str, enabled: bool):  # -> tqdm
    """A tqdm bar on stderr (disabled in quiet mode)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, leave=False)
