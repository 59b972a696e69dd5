"""File helpers shared by every stage: content hashes, atomic writes, and swapping a built thing into place.

Nothing here overwrites in place: a file is written to a uniquely named sibling, flushed to disk and
renamed over its destination; a directory built aside is exchanged with the one it replaces. A
reader (or a crash) therefore sees either the old or the new version, never a mixture.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import secrets
import shutil
import tempfile
import time
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


def utc_stamp() -> str:
    """``20261207T130512Z``: a UTC time for names of staged and backed-up things."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def unique_sibling(path: Path, tag: str) -> Path:
    """A name beside ``path`` that no other process picks: ``.<name>.<tag>-<utc>-<pid>-<random>``.

    Hidden (a leading dot), so the results readers, ``summary`` and ``check`` pass over it.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{utc_stamp()}-{os.getpid()}-{secrets.token_hex(3)}")


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a uniquely named temporary sibling, fsynced, then renamed.

    Two writers of one path never share a temporary file, and a kill or a full disk leaves the
    previous file (or none) in place, never a truncated one. The file keeps the previous file's
    permissions, or gets the usual ones (0666 less the umask).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (``write_bytes_atomic``), UTF-8."""
    return write_bytes_atomic(path, text.encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def backup_path(path: Path) -> Path:
    """``<name>.bak-<utc>`` beside ``path`` (``-2``, ``-3``... if that exists already)."""
    path = Path(path)
    base = path.with_name(f"{path.name}.bak-{utc_stamp()}")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def replace_text_with_backup(path: Path, text: str) -> Path | None:
    """Write ``text`` to ``path`` atomically, first copying a previous, different file to
    ``backup_path(path)``. Returns the backup's path (None: no previous file, or the same text,
    in which case nothing is written)."""
    path = Path(path)
    backup = None
    if path.is_file():
        if path.read_bytes() == text.encode():
            return None
        backup = backup_path(path)
        shutil.copy2(path, backup)
    write_text_atomic(path, text)
    return backup


# ----------------------------------------------------------------------------- swapping directories
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in(new: Path, target: Path) -> None:
    """Put ``new`` (a file or directory built beside ``target``) at ``target``, then delete what was there.

    Both must be on one filesystem (siblings are). On Linux the two are exchanged in one step, so
    ``target`` always exists; elsewhere the old one is first renamed aside under a hidden name.
    Either way the old version is deleted only once the new one is in place.
    """
    new, target = Path(new), Path(target)
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        _fsync_dir(target.parent)
        return
    if _exchange(new, target):
        old = new  # the exchange left the previous version under the staged name
    else:
        old = unique_sibling(target, "old")
        os.rename(target, old)
        os.rename(new, target)
    _fsync_dir(target.parent)
    try:
        remove(old)
    except OSError:
        pass  # the new version is in place; what is left of the old one is hidden, never read


def remove(path: Path) -> None:
    """Delete a file or a directory tree (missing: nothing to do)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def same_tree(a: Path, b: Path) -> bool:
    """True when two directories hold the same relative file names with the same bytes."""
    def files(root: Path) -> dict[str, Path]:
        return {str(p.relative_to(root)): p for p in Path(root).rglob("*") if p.is_file()}

    left, right = files(a), files(b)
    if left.keys() != right.keys():
        return False
    return all(left[k].stat().st_size == right[k].stat().st_size and left[k].read_bytes() == right[k].read_bytes()
               for k in left)
