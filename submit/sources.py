"""The project's own code for ``src/``: the git-tracked files, with the commit they came from."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from common.errors import SubmissionError

log = logging.getLogger(__name__)

MAX_SOURCE_FILE_BYTES = 50 * 2**20  # the checker's per-file limit


def _git(src_root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read only: never touch the index
    try:
        return subprocess.run(["git", "-C", str(src_root), *args], capture_output=True, check=True,
                              env=env, timeout=60).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        raise SubmissionError(f"{src_root}: not a git work tree (git {' '.join(args)} failed)") from None


def tracked_files(src_root: Path) -> list[str]:
    """Paths of the git-tracked files that exist in the work tree (no data, no venv, no results)."""
    names = [n for n in _git(src_root, "ls-files", "-z", "--cached").split("\0") if n]
    return sorted(n for n in names if (Path(src_root) / n).is_file())


def copy_sources(src_root: Path, dst: Path) -> dict[str, Any]:
    """Copy the git-tracked files of ``src_root`` to ``dst``; return the commit and modified files."""
    src_root = Path(src_root)
    files = tracked_files(src_root)
    if not files:
        raise SubmissionError(f"{src_root}: no git-tracked files to put under src/")
    for name in files:
        size = (src_root / name).stat().st_size
        if size > MAX_SOURCE_FILE_BYTES:
            raise SubmissionError(f"{src_root / name}: {size / 2**20:.0f} MiB, over the checker's 50 MiB file limit")
    if dst.exists():
        shutil.rmtree(dst)
    for name in files:
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_root / name, target, follow_symlinks=True)
    head = _git(src_root, "rev-parse", "HEAD").strip()
    modified = [n for n in _git(src_root, "diff", "--name-only", "HEAD").splitlines() if n]
    untracked = [n for n in _git(src_root, "ls-files", "--others", "--exclude-standard").splitlines() if n]
    if untracked:
        log.warning("%s: untracked files are not put under src/: %s", src_root, ", ".join(untracked))
    return {"commit": head, "modified": modified, "untracked": untracked, "files": len(files)}


