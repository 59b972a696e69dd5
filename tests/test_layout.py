"""The packages import one way, down the data flow: no import circle, no import from a later stage.

Every module's imports are read with ``ast`` (top-level, function-level and ``TYPE_CHECKING``
imports alike: a lazy import is still a dependency) and mapped to the project's top-level packages.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The stages in data-flow order; a package imports only packages before it. records (LoadGen logs ->
# typed run record, accuracy, the rule set) sits before harness because the runner writes its run
# record and verdict with it; hostctl and hostinfo sit before harness, which applies and records them.
FLOW = (
    "common", "dataset", "models", "training", "modelprep", "sut", "hostctl", "hostinfo",
    "records", "harness", "submit", "pipeline", "search", "cli", "bench",
)
# Top-level folders that may import anything: the suite and maintenance scripts.
FREE = ("tests", "scripts")
# Folders that hold copies or output, never the project's own code.
NOT_CODE = {"docs", "work", "results", "data", "submission", "configs", ".venv", ".git"}

# Imports that break the flow order and are known, as (importing module, imported module). Each one is
# printed by the test; any import breaking the order that is not listed here fails it.
KNOWN_EXCEPTIONS: tuple[tuple[str, str], ...] = ()


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_names(module: str, path: Path, tree: ast.AST) -> set[str]:
    """Absolute names of every module (or module attribute) ``tree`` imports, at any depth."""
    names: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _project_modules() -> dict[str, Path]:
    """Every Python module of the packages in FLOW that exist, by dotted name."""
    modules = {}
    for package in FLOW:
        for path in sorted((REPO / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[_module_name(path)] = path
    return modules


def _module_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports (``from pkg import mod`` counts as importing pkg.mod)."""
    modules = _project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        imported = _imported_names(module, path, tree)
        graph[module] = {name for name in imported if name in modules and name != module}
        # An import of a package attribute that is not a module still depends on the package.
        graph[module] |= {name.split(".")[0] for name in imported if name.split(".")[0] in FLOW
                          and name.split(".")[0] != module.split(".")[0]}
    return graph


def _package_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) -> the importing modules, across packages only."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for module, targets in graph.items():
        source = module.split(".")[0]
        for target in targets:
            if target.split(".")[0] != source:
                edges[(source, target.split(".")[0])].add(module)
    return edges


def _cycles(nodes: set[str], edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (each one holds a cycle)."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        successors[source].append(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in successors[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _module_graph()


def test_every_code_folder_has_a_place_in_the_flow():
    folders = {folder.name for folder in REPO.iterdir()
               if folder.is_dir() and folder.name not in NOT_CODE and not folder.name.startswith(".")
               and next(folder.rglob("*.py"), None) is not None}
    assert folders, "no Python folders found"
    unplaced = sorted(folders - set(FLOW) - set(FREE) - {"mlperf_cpu.egg-info"})
    assert not unplaced, f"top-level folders with code but no place in FLOW: {unplaced}"


def test_the_reader_sees_lazy_relative_and_package_imports(tmp_path):
    # The walker must see what the checks rely on: imports inside functions, relative imports and
    # `from package import module`; a walker that missed them would make the checks pass on anything.
    source = (
        "import common.errors\n"
        "from . import sibling\n"
        "from ..dataset.cache import Cache\n"
        "def lazy():\n"
        "    from harness import runner\n"
    )
    path = REPO / "sut" / "probe_for_test.py"
    names = _imported_names("sut.probe_for_test", path, ast.parse(source))
    assert {"common.errors", "sut.sibling", "dataset.cache", "harness.runner"} <= names


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("c", "a")}) == [["a", "b", "c"]]
    assert _cycles({"a", "b", "c"}, {("a", "b"), ("b", "c"), ("a", "c")}) == []


def test_no_import_circle_between_packages(graph):
    edges = _package_edges(graph)
    cycles = _cycles({module.split(".")[0] for module in graph}, set(edges))
    detail = [{pair: sorted(edges[pair]) for pair in edges if set(pair) <= set(cycle)} for cycle in cycles]
    assert not cycles, f"import circles between packages: {detail}"


def test_no_import_circle_between_modules(graph):
    cycles = _cycles(set(graph), {(module, target) for module, targets in graph.items() for target in targets})
    assert not cycles, f"import circles between modules: {cycles}"


def test_packages_import_only_earlier_stages(graph):
    print("known exceptions to the flow order:", list(KNOWN_EXCEPTIONS) or "none")
    rank = {package: position for position, package in enumerate(FLOW)}
    violations = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if rank[target.split(".")[0]] > rank[module.split(".")[0]]
    )
    new = [pair for pair in violations if pair not in KNOWN_EXCEPTIONS]
    assert not new, f"imports from a later stage of {FLOW}: {new}"
    stale = [pair for pair in KNOWN_EXCEPTIONS if pair not in violations]
    assert not stale, f"known exceptions that no longer happen (remove them from the list): {stale}"
