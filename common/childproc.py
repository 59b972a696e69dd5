"""How the harness starts its own Python child processes.

A plain ``python -m cli`` (or ``python -c ...``) puts its working directory first on the
module path, so a ``cli.py`` or ``sut/`` in the directory a user runs from would be executed
instead of the harness. Every child therefore runs with Python's safe-path mode (``-P`` and
``PYTHONSAFEPATH=1``, Python >= 3.11), finds the harness through ``PYTHONPATH`` (the
repository first), and inherits the telemetry-off switches (``common.telemetry``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, MutableMapping

from common.telemetry import telemetry_environment

REPO = Path(__file__).resolve().parent.parent  # the directory holding the harness's packages


def python_command(*args: str) -> list[str]:
    """The command line of a Python child: this interpreter in safe-path mode, then ``args``
    (e.g. ``python_command("-m", "cli", "run", ...)``)."""
    return [sys.executable, "-P", *args]


def protect_environment(environ: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Put into ``environ`` what every child needs: safe-path mode, the repository first on
    ``PYTHONPATH`` and telemetry off (returns ``environ``)."""
    telemetry_environment(environ)
    environ["PYTHONSAFEPATH"] = "1"
    rest = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *rest])
    return environ


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: this process's, protected (``protect_environment``),
    plus ``extra``."""
    env = protect_environment(dict(os.environ))
    env.update(extra or {})
    return env


def protect_children() -> None:
    """Protect every child this process starts, including those a library starts for it
    (``multiprocessing`` 'spawn', ``benchmark_app``): they inherit this process's environment."""
    protect_environment(os.environ)
