"""Training programs: the demo classifier, the demo detector, and distillation (under torchrun).

``mlperf-cpu train [PROGRAM] OPTIONS`` is the one entry: ``PROGRAM`` is ``distill`` (the
default, started under ``torchrun``), ``demo`` or ``detector``. Each program module has
``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args, command) -> str | None`` (the
one-line summary the command prints). Importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PROGRAMS = ("distill", "demo", "detector")
DEFAULT_PROGRAM = "distill"


def split_program(argv: list[str]) -> tuple[str, list[str]]:
    """(program name, its arguments): the first argument if it names a program, else the default."""
    if argv and argv[0] in PROGRAMS:
        return argv[0], list(argv[1:])
    return DEFAULT_PROGRAM, list(argv)


def load_program(name: str) -> ModuleType:
    """The module of program ``name`` (imports torch: the 'train' extra)."""
    return importlib.import_module(f"training.{name}")
