"""bench/ is a package of the checkout: every bench imports as ``bench.NAME``, runs as
``python -P -m bench.NAME`` from any working directory, imports only the shared ``bench._*``
helpers (never another bench), and ``bench/run.sh`` lists the benches."""

from __future__ import annotations

import ast
import importlib
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from common.childproc import child_environment, python_command

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
BENCHES = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.name.startswith("_"))


def _bench_imports(path: Path) -> set[str]:
    """Every ``bench.*`` module ``path`` imports, at any depth (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("bench."))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench"):
            names.add(node.module)
    return names


def test_bench_is_a_regular_package_with_its_docstring() -> None:
    import bench

    assert Path(bench.__file__).resolve() == BENCH_DIR / "__init__.py"  # not a namespace package
    assert "ratio <number>" in bench.__doc__ and "python -P -m bench.NAME" in bench.__doc__
    assert {"harness_vs_benchmark_app", "server_breakdown", "feed_loops"} <= set(BENCHES)


@pytest.mark.parametrize("path", sorted(BENCH_DIR.glob("*.py")), ids=lambda p: p.name)
def test_benches_import_only_shared_helpers_and_leave_sys_path_alone(path: Path) -> None:
    for module in _bench_imports(path):
        helper = module.split(".")[1]
        assert helper.startswith("_"), f"{path.name} imports {module}: another bench's internals"
        assert (BENCH_DIR / f"{helper}.py").is_file(), f"{path.name} imports {module}, which does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    touched = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "path"
               and isinstance(n.value, ast.Name) and n.value.id == "sys"]
    assert not touched, f"{path.name}:{touched[0]} uses sys.path"


def test_every_bench_imports_as_a_module_of_the_package() -> None:
    for name in BENCHES:
        module = importlib.import_module(f"bench.{name}")
        assert module.__name__ == f"bench.{name}" and module.__package__ == "bench"
        assert Path(module.__file__).resolve() == BENCH_DIR / f"{name}.py"


def _help(name: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(python_command("-m", f"bench.{name}", "--help"), cwd=cwd, env=child_environment(),
                          capture_output=True, text=True, timeout=300)


def test_every_bench_runs_as_a_module_from_another_directory(tmp_path: Path) -> None:
    """``python -P -m bench.NAME --help`` from a directory holding a decoy ``bench`` package: -P keeps the
    working directory off the module path, so the checkout's bench runs (and the decoy never does)."""
    decoy = tmp_path / "bench"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the working directory was imported')\n")
    for name in BENCHES:
        (decoy / f"{name}.py").write_text("raise SystemExit('the working directory was imported')\n")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(BENCHES, pool.map(lambda n: _help(n, tmp_path), BENCHES)))
    for name, run in runs.items():
        assert run.returncode == 0, f"bench.{name}: exit {run.returncode}\n{run.stderr[-2000:]}"
        assert run.stdout.startswith("usage: "), f"bench.{name}: {run.stdout[:200]!r}"
        title = importlib.import_module(f"bench.{name}").__doc__.splitlines()[0]
        # argparse rewraps the description (breaking lines at spaces and hyphens): compare without whitespace
        assert "".join(title.split()) in "".join(run.stdout.split()), f"bench.{name}: not its own help"


def test_run_sh_without_a_name_lists_the_benches(tmp_path: Path) -> None:
    run = subprocess.run(["bash", str(BENCH_DIR / "run.sh")], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    usage = run.stderr.strip()
    assert usage.startswith("usage: bench/run.sh NAME [args]") and len(usage.splitlines()) == 1
    listed = usage.split("(NAME:", 1)[1].rstrip(")").split()
    assert listed == BENCHES  # the benches only: no bench/_*.py helper, no __init__


@pytest.mark.parametrize("name", ["_common", "nosuch", "../tests/conftest"])
def test_run_sh_refuses_what_is_not_a_bench(tmp_path: Path, name: str) -> None:
    """Refused before anything is installed or started: one ERROR line, exit 2."""
    run = subprocess.run(["bash", str(BENCH_DIR / "run.sh"), name], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.startswith(f"ERROR: no bench named '{name}'") and len(run.stderr.splitlines()) == 1
    assert "bootstrap" not in run.stderr
