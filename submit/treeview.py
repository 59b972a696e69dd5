"""A read-only, size-capped view of a submission tree that may come from anyone.

``check`` looks at a tree only through this view. The view is one walk that never
follows a symbolic link: a link (to a file or a directory, inside the tree or out of
it), a special file (FIFO, socket, device) or a directory that cannot be listed is a
problem and is treated as absent, so no rule opens a file outside the tree or blocks
on a FIFO. Every file a rule reads is capped by its kind; a file over its cap is a
problem and is not read, and so is a file with more than one hard link (its other name
may be outside the tree: a packaged tree holds copies).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from records.loadgen_logs import DETAIL
from records.rules import Problem

MIB = 1024 * 1024
# A detail log holds one MLLOG line per setting and result (tens of KiB for a 600 s run); the cap
# leaves room for a log full of warnings. Everything else check reads is a small text or JSON file.
CAPS = {DETAIL: ("detail-log", 32 * MIB)}
TEXT_CAP = ("text/JSON", 4 * MIB)


def cap_for(path: Path) -> tuple[str, int]:
    """(name, bytes) of the cap on a file ``check`` reads, by its kind."""
    return CAPS.get(Path(path).name, TEXT_CAP)


def _kind(mode: int) -> str:
    """What a non-regular, non-directory file is, in words."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


@dataclass
class TreeView:
    """The regular files (with their sizes) and real directories under ``root``, and the problems
    of what is neither. Paths are ``root / relative``, as the user named the root."""

    root: Path
    files: dict[Path, int] = field(default_factory=dict)
    dirs: set[Path] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    linked: set[Path] = field(default_factory=set)  # regular files with more than one hard link
    _children: dict[Path, list[Path]] = field(default_factory=dict)
    _capped: set[Path] = field(default_factory=set)

    @classmethod
    def scan(cls, root: Path) -> "TreeView":
        """Walk ``root`` without following links (``root`` itself may be one: the user chose it)."""
        view = cls(Path(root))
        view.dirs.add(view.root)
        pending = [view.root]
        while pending:
            directory = pending.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                view.problems.append(Problem(directory, f"cannot be listed ({exc.strerror or type(exc).__name__})"))
                continue
            for entry in entries:
                path = directory / entry.name
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    view.problems.append(Problem(path, f"cannot be read ({exc.strerror or type(exc).__name__})"))
                    continue
                if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                    view._children.setdefault(directory, []).append(path)
                if stat.S_ISLNK(info.st_mode):
                    view.problems.append(Problem(path, "is a symbolic link: check never follows links and a "
                                                       "submission holds regular files only (not read)"))
                elif stat.S_ISDIR(info.st_mode):
                    view.dirs.add(path)
                    pending.append(path)
                elif stat.S_ISREG(info.st_mode):
                    view.files[path] = info.st_size
                    if info.st_nlink > 1:
                        view.linked.add(path)
                else:
                    view.problems.append(Problem(path, f"is {_kind(info.st_mode)}, not a regular file (not read)"))
        return view

    def is_file(self, path: Path) -> bool:
        """A regular file of the tree (a link or a special file is not)."""
        return Path(path) in self.files

    def is_dir(self, path: Path) -> bool:
        """A real directory of the tree (a link to one is not)."""
        return Path(path) in self.dirs

    def size(self, path: Path) -> int:
        """Size in bytes of a regular file of the tree (0 if it is not one)."""
        return self.files.get(Path(path), 0)

    def subdirs(self, path: Path) -> list[Path]:
        """The real directories directly under ``path``, sorted by name."""
        return [p for p in self._children.get(Path(path), []) if p in self.dirs]

    def has_entries(self, path: Path) -> bool:
        """Whether ``path`` holds any regular file or directory."""
        return bool(self._children.get(Path(path)))

    def readable(self, path: Path) -> bool:
        """A regular file within its cap. A file over its cap is listed as a problem (once) and is not read."""
        path = Path(path)
        if path not in self.files:
            return False
        name, cap = cap_for(path)
        if self.files[path] > cap or path in self.linked:
            if path not in self._capped:
                self._capped.add(path)
                why = (f"{self.files[path]:,} bytes, over check's {name} cap of {cap // MIB} MiB"
                       if self.files[path] > cap else "has other hard links (its other name may be outside the tree)")
                self.problems.append(Problem(path, f"{why}: not read"))
            return False
        return True

    def read_text(self, path: Path) -> str | None:
        """The text of a readable file (undecodable bytes replaced), or None. The file is opened without
        following a link and read up to its cap, so a file swapped after the walk is still bounded."""
        if not self.readable(path):
            return None
        _name, cap = cap_for(path)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.problems.append(Problem(path, "changed into a non-regular file while checking (not read)"))
                return None
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(cap + 1)
        finally:
            os.close(fd)
        if len(data) > cap:
            self.problems.append(Problem(path, "grew over its cap while checking (not read)"))
            return None
        return data.decode("utf-8", errors="replace")
