"""File helpers shared by every stage: content hashes and atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_files(paths: list[Path]) -> str:
    """sha256 over the given files' bytes, in order (one file: its usual sha256)."""
    h = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of one file's bytes."""
    return sha256_files([path])


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling, so a half-written file never exists."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
