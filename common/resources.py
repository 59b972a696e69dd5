"""The files the project ships: system profiles, the default user.conf, mlperf.conf, the closed
division's reference checksums, the zoo tables, searched plans and the demo weights.

Every reader finds them here, by their path in the checkout (``configs/c6i.2xlarge.yaml``,
``models/zoo/zoo.csv``, ...). In a checkout (editable install or ``PYTHONPATH``) that is the
checkout's own file. An installed wheel carries copies made at build time from those same files
(``setup.py``'s ``build_py``) under ``common/shipped/``, found with ``importlib.resources`` so
nothing depends on the working directory. Files the user names or keeps in the working
directory (``./user.conf``, ``./configs/<name>.yaml``) come first wherever a default applies.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from common.errors import ConfigError

SHIPPED_DIR = "shipped"  # the wheel's data directory inside this package (setup.py SHIPPED lists its files)
USER_CONFIG_DIR = Path("configs")  # the working directory's own profiles: looked up first, `tune` writes here
USER_CONF = Path("user.conf")  # the working directory's own LoadGen user settings


def _package_dir() -> Path:
    """This package's directory on disk (a wheel is installed unpacked, so always a real path)."""
    root = files("common")
    if not isinstance(root, Path):
        raise ConfigError(f"{root}: the project must be installed unpacked (pip install), not run from a zip")
    return root


def shipped_root() -> Path:
    """The top level the shipped files hang from: the wheel's data directory, else the checkout."""
    packaged = _package_dir() / SHIPPED_DIR
    return packaged if packaged.is_dir() else _package_dir().parent


def installed_from_wheel() -> bool:
    """Whether the shipped files are a wheel's copies (not the checkout's own files)."""
    return (_package_dir() / SHIPPED_DIR).is_dir()


def shipped(relpath: str) -> Path:
    """A shipped file by its path in the checkout, e.g. ``shipped("configs/c6i.2xlarge.yaml")``."""
    return shipped_root() / relpath


def profile_dirs() -> list[Path]:
    """Where profiles are looked up by name, first match wins: ``./configs``, then the shipped ones."""
    dirs = [USER_CONFIG_DIR, shipped("configs")]
    return [d for i, d in enumerate(dirs) if d.resolve() not in {e.resolve() for e in dirs[:i]}]


def default_user_conf() -> Path:
    """``./user.conf`` if the working directory has one, else the shipped default."""
    return USER_CONF if USER_CONF.is_file() else shipped("user.conf")


def is_packaged_copy(path: Path) -> bool:
    """Whether ``path`` is one of an installed wheel's shipped copies (read-only by intent)."""
    return installed_from_wheel() and Path(path).resolve().is_relative_to(shipped_root().resolve())
