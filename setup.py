"""Build step of the wheel; the project's metadata is in pyproject.toml.

The files the harness ships (profiles, the default user.conf, mlperf.conf, the closed
division's reference checksums, the zoo tables, searched plans and the demo weights) keep
their one canonical place in the checkout. ``build_py`` copies them into the wheel under
``common/shipped/``, at the same relative paths, where ``common.resources`` finds them with
``importlib.resources``. An editable install copies nothing: a checkout reads its own files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED_DIR = Path("common") / "shipped"  # common.resources.SHIPPED_DIR
# Globs relative to the checkout's top level; each must match at least one file.
SHIPPED = ("user.conf", "mlperf.conf", "configs/*.yaml", "models/weights/*.onnx", "models/weights/*.json",
           "models/zoo/*.csv", "models/searched/*.json")
NOT_SHIPPED = "-tuned.yaml"  # profiles `tune` measured on one host (.gitignore)


def shipped_files() -> list[Path]:
    """The files the wheel carries, relative to the checkout's top level."""
    out: list[Path] = []
    for pattern in SHIPPED:
        matches = sorted(p for p in ROOT.glob(pattern) if p.is_file() and not p.name.endswith(NOT_SHIPPED))
        if not matches:
            raise SystemExit(f"setup.py: no file matches {pattern!r} under {ROOT}")
        out += [p.relative_to(ROOT) for p in matches]
    return out


class BuildPyWithShipped(build_py):
    """``build_py`` plus the shipped files copied under ``common/shipped/``."""

    def run(self) -> None:
        editable = getattr(self, "editable_mode", False)
        if not editable and Path(self.build_lib).is_dir():
            # An in-tree build (pip install .) reuses build/lib: a module or shipped file removed
            # from the checkout (a package moved, a profile deleted) must not linger in the next wheel.
            shutil.rmtree(self.build_lib)
        super().run()
        if editable:
            return
        dest = Path(self.build_lib) / SHIPPED_DIR
        for rel in shipped_files():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, dest / rel)


setup(cmdclass={"build_py": BuildPyWithShipped})
