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
    """Put into ``environ`` what every Python child needs: safe-path mode and telemetry off (returns it)."""
    telemetry_environment(environ)
    environ["PYTHONSAFEPATH"] = "1"
    return environ


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child started with ``python_command``: this process's, protected
    (``protect_environment``), the repository first on ``PYTHONPATH`` (in safe-path mode Python
    does not find it through the working directory), plus ``extra``."""
    env = protect_environment(dict(os.environ))
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *rest])
    env.update(extra or {})
    return env


def protect_children() -> None:
    """Protect the children a library starts for this process (``multiprocessing`` 'spawn', which
    takes this process's module path along; ``benchmark_app``): they inherit its environment."""
    protect_environment(os.environ)
