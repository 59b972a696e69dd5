"""The command line's layout: one module per subcommand, parser beside handler, and a fast ``--help``.

Every subcommand ``main_parser()`` offers lives in ``cli/<command>.py`` with ``add_parser(sub)`` and
``run(args) -> int``, and that ``run`` is the handler the parser dispatches to. ``--help`` of each,
in a real ``python -P -m cli`` process, exits 0 without importing torch or OpenVINO (handlers import
them lazily), and importing the entry module leaves them unloaded too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from cli.main import main_parser

HEAVY = ("torch", "openvino", "nncf")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``main_parser()``, by name."""
    actions = [a for a in main_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


COMMANDS = sorted(_subcommands())


def _python(code_or_args: list[str]) -> subprocess.CompletedProcess:
    """``python -P ...`` from an empty directory, with this checkout's packages importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-P", *code_or_args], cwd=REPO / "tests", env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_expected_commands_are_offered() -> None:
    assert set(COMMANDS) >= {"pipeline", "prepare", "run", "tune", "report", "models", "zoo", "search", "train",
                             "accuracy", "summary", "package", "check", "describe-system"}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_is_its_own_module(command: str) -> None:
    name = command.replace("-", "_")
    assert (REPO / "cli" / f"{name}.py").is_file(), f"cli/{name}.py"
    module = importlib.import_module(f"cli.{name}")
    assert callable(module.add_parser) and callable(module.run)
    # The parser built by main_parser() dispatches to this module's handler, and the module's own
    # add_parser builds the same command.
    assert _subcommands()[command].get_default("handler") is module.run
    sub = argparse.ArgumentParser().add_subparsers()
    module.add_parser(sub)
    assert list(sub.choices) == [command]


def test_main_holds_no_command() -> None:
    """cli/main.py is the entry: no parser or handler of a subcommand is defined in it."""
    import cli.main

    own = [n for n, v in vars(cli.main).items() if callable(v) and getattr(v, "__module__", "") == "cli.main"]
    assert sorted(own) == ["_VersionAction", "_close_progress_bars", "_setup_logging", "main", "main_parser"], own


@pytest.mark.parametrize("command", COMMANDS)
def test_help_exits_0_without_heavy_imports(command: str) -> None:
    probe = ("import runpy, sys\n"
             f"sys.argv = ['mlperf-cpu', {command!r}, '--help']\n"
             "try:\n"
             "    runpy.run_module('cli', run_name='__main__')\n"
             "except SystemExit as exc:\n"
             f"    heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
             "    print('HEAVY', heavy, file=sys.stderr)\n"
             "    raise\n")
    if command == "train":
        # train's options belong to the training program's own parser, which needs torch: its --help
        # is checked for the exit code and text only.
        proc = _python(["-m", "cli", "train", "--help"])
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "--teacher" in proc.stdout
        return
    proc = _python(["-c", probe])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"usage: mlperf-cpu {command}" in proc.stdout
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]


def test_importing_the_entry_loads_no_heavy_module() -> None:
    """``telemetry_off()`` must run before OpenVINO/NNCF load: importing cli.main and building its
    parser must not load them."""
    proc = _python(["-c", "import sys, cli.main; cli.main.main_parser(); "
                          f"print([m for m in {HEAVY!r} if m in sys.modules])"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_main_help_lists_every_command() -> None:
    proc = _python(["-m", "cli", "--help"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    for command in COMMANDS:
        assert command in proc.stdout
