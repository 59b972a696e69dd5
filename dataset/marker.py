"""The idempotent build of a generated dataset: a JSON marker written last, a build aside renamed in.

Both demo datasets (``dataset.demo``, ``dataset.coco_demo``) use it: a directory whose marker
names this dataset, version and parameters is complete and is kept; anything else is built
into a temporary sibling and renamed into place, so an interrupted build never looks complete;
a directory holding something the build did not write is refused rather than deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from common.errors import DatasetError


@dataclass(frozen=True)
class BuildMarker:
    """The marker file of one generated dataset: its file name, dataset name and version."""

    file: str
    name: str
    version: int

    def read(self, root: Path) -> dict | None:
        """The parsed marker at ``root``, or None if absent or unreadable."""
        try:
            data = json.loads((Path(root) / self.file).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def holds(self, root: Path, **expected: Any) -> bool:
        """Whether ``root`` holds a complete build of this dataset and version with the ``expected`` fields."""
        marker = self.read(root)
        return (marker is not None and marker.get("name") == self.name and marker.get("version") == self.version
                and all(marker.get(key) == value for key, value in expected.items()))

    def write(self, root: Path, data: dict, **dump: Any) -> None:
        """Write the marker last: its presence means everything else of the build is on disk."""
        (Path(root) / self.file).write_text(json.dumps({**data, "name": self.name, "version": self.version},
                                                       **dump) + "\n")

    def foreign(self, root: Path) -> str | None:
        """Why ``root`` may not be replaced by a build (another dataset's marker), or None."""
        marker = self.read(root)
        if marker is not None and marker.get("name") != self.name:
            return f"{root}: holds another dataset ({marker.get('name')!r}); refusing to overwrite it"
        return None


def build_aside(root: Path, build_into: Callable[[Path], dict], is_built: Callable[[Path], bool]) -> dict:
    """Run ``build_into`` on an empty temporary sibling of ``root`` and rename it to ``root``.

    The caller has checked that whatever is at ``root`` may be replaced. A concurrent builder
    that wins the rename is as good as this one when its result ``is_built``. Returns what
    ``build_into`` returned (the marker data).
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the result should read like any dataset
        summary = build_into(tmp)
        if root.exists():
            shutil.rmtree(root)
        try:
            os.rename(tmp, root)
        except OSError:
            if not is_built(root):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def refuse(message: str | None) -> None:
    """Raise ``DatasetError(message)`` when there is one."""
    if message:
        raise DatasetError(message)
