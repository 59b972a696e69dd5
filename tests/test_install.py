"""The real install: a wheel built from this checkout, installed (not editable) into a fresh venv
and run from an unrelated directory, finds its profiles, user.conf, zoo tables and demo weights
through ``common.resources``; the declared dependencies cover every import; runs and packages
record the installed versions.

The wheel is built offline (``pip wheel --no-build-isolation --no-index``) from a copy of the
checkout, and the venv borrows the project venv's installed dependencies through a ``.pth``
line (a plain path entry: the editable install's finder there is never activated), so nothing
is downloaded and the only ``cli`` the venv can import is the wheel's.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import AUTO_QPS, REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
# Generated or local top-level entries a wheel is never built from.
NOT_SOURCE = {".venv", ".git", "work", "data", "results", "build", "dist", "submission", ".pytest_cache"}


def _top_level_packages() -> set[str]:
    """Every top-level package of the checkout (a directory with an __init__.py) but the ones that
    run from a checkout only (pyproject.toml excludes them from the wheel)."""
    return {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "bench"}


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that would put the checkout on the module path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONHOME")}


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline from a copy of the checkout (the shared tree gets no build/ from it)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=lambda d, names: {n for n in names if Path(d) == REPO and
                                                        (n in NOT_SOURCE or n.endswith(".egg-info"))}
                    | {n for n in names if n == "__pycache__"})
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", root / "dist", src], cwd=root)
    (built,) = (root / "dist").glob("mlperf_cpu-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed, borrowing this venv's dependencies."""
    root = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    python = root / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=root.parent)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root.parent).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "project_venv_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    return root


@pytest.fixture()
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory far from the checkout (no user.conf, no configs/)."""
    here = tmp_path / "elsewhere"
    here.mkdir()
    return here


def test_wheel_carries_every_package_and_shipped_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {n.split("/")[0] for n in names if n.endswith("/__init__.py") and n.count("/") == 1}
    assert packages == _top_level_packages()
    for rel in ("user.conf", "mlperf.conf", "configs/c6i.2xlarge.yaml", "configs/reference_models.yaml",
                "models/zoo/zoo.csv", "models/zoo/int8_drop.csv", "models/searched/searchnet_epyc.json",
                "models/weights/decinet_demo.onnx", "models/weights/detector_demo.onnx"):
        data = zipfile.ZipFile(wheel).read(f"common/shipped/{rel}")
        assert data == (REPO / rel).read_bytes(), rel  # a copy of the checkout's file, not a second one
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert licence and b"Apache License" in zipfile.ZipFile(wheel).read(licence[0])


def test_installed_wheel_runs_from_another_directory(venv: Path, elsewhere: Path) -> None:
    python, cli = venv / "bin" / "python", venv / "bin" / "mlperf-cpu"
    where = _run([python, "-c", "import cli, common.resources as r; print(cli.__file__); print(r.shipped_root())"],
                 cwd=elsewhere).stdout.split()
    assert all(Path(p).resolve().is_relative_to(venv.resolve()) for p in where), where  # the wheel's own files

    version = _run([cli, "--version"], cwd=elsewhere).stdout.strip()
    assert version == (f"mlperf-cpu {VERSION}, LoadGen {importlib.metadata.version('mlcommons-loadgen')}, "
                       f"OpenVINO {importlib.metadata.version('openvino')}")

    described = _run([cli, "describe-system", "--system", "c6i.2xlarge", "--org", "Demo"], cwd=elsewhere)
    assert json.loads(described.stdout)["system_name"].startswith("AWS c6i.2xlarge")

    # The issue's own failure: the shipped profile found by name, from the installed package.
    loaded = _run([python, "-c", "from harness.profile import load_profile; "
                                 "print(load_profile('c6i.2xlarge', check_fits=False).cores)"], cwd=elsewhere)
    assert loaded.stdout.strip() == "4"

    # Tuning writes target_qps into the user.conf: never into the installed package's copy.
    tune = subprocess.run([cli, "pipeline", "--submission", "--tune", "--model", "m.onnx", "--dataset", "d",
                           "--calib-list", "c.txt"], cwd=elsewhere, env=_clean_env(), capture_output=True, text=True,
                          timeout=120)
    assert tune.returncode == 2 and "installed package's copy" in tune.stderr.strip().splitlines()[-1], tune.stderr


def test_installed_run_uses_shipped_user_conf_and_own_profile(venv: Path, elsewhere: Path, demo_f32: Path,
                                                              demo_data: Path) -> None:
    """A short run from the wheel: the user's ./configs/<name>.yaml is found by name, the shipped
    user.conf is the default, and result.json records the installed versions."""
    from harness.profile import load_profile
    from harness.tune import write_profile

    write_profile(elsewhere / "configs" / "mine.yaml", dataclasses.replace(load_profile("host"), name="mine"),
                  "the user's own profile")
    _run([venv / "bin" / "mlperf-cpu", "run", "--mode", "performance", "--model", demo_f32, "--dataset",
          demo_data / "val", "--system", "mine", "--cache-dir", elsewhere / "cache", "--min-duration-ms", "300",
          "--min-query-count", "1", "--target-qps", "200"], cwd=elsewhere)
    (result,) = (elsewhere / "results" / "mine").rglob("result.json")
    record = json.loads(result.read_text())
    user_conf = Path(record["user_conf"])
    assert user_conf.resolve().is_relative_to(venv.resolve()) and user_conf.name == "user.conf"
    assert user_conf.read_bytes() == (REPO / "user.conf").read_bytes()
    versions = record["versions"]
    assert versions["mlperf-cpu"] == VERSION
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()
        assert versions[name] == importlib.metadata.version(name), name


def test_package_writes_the_installed_versions_into_src(workdir: Path, tmp_path: Path, demo_f32: Path,
                                                         demo_data: Path, cache_dir: Path) -> None:
    """A packaged tree's src/versions.txt pins every installed dependency, as pip constraints."""
    from conftest import run_loadgen_test
    from harness.profile import load_profile
    from hostinfo.probe import PROJECT, installed_versions
    from modelprep.card import load_card
    from submit.package import package

    def run(mode: str, *extra: str):
        return run_loadgen_test(workdir, mode, demo_f32, demo_data / "val", cache_dir, *extra)[1]

    run("accuracy")
    if run("performance", "--min-duration-ms", "1000", *AUTO_QPS).validity != "VALID":
        run("performance", "--min-duration-ms", "1000", "--target-qps", "2000", "--replace")  # aim higher once
    fields = {"system_name": "Test VM", "cooling": "air (test value)", "host_memory_configuration": "test value"}
    package(workdir / "results", "host", load_card(demo_f32).label, "TestOrg", tmp_path / "tree", REPO,
            profile=load_profile("host"), system_overrides=fields, user_conf=workdir / "user.conf",
            allow_nonofficial=True)
    lines = (tmp_path / "tree" / "open" / "TestOrg" / "src" / "versions.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if not line.startswith("#"))
    assert pins == {k: v for k, v in installed_versions().items() if k != PROJECT}
    assert pins["openvino"] == importlib.metadata.version("openvino") and "numpy" in pins
    assert any(line.startswith(f"# {PROJECT}=={VERSION}") for line in lines)


# ----------------------------------------------------------------------------- without a wheel
def _module_level_imports(path: Path) -> set[str]:
    """Top-level names of the modules ``path`` imports at module level (not inside functions)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _all_imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _distribution_names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", r).group(0)).lower() for r in requirements}


@functools.lru_cache(maxsize=1)
def _providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _third_party(modules: set[str]) -> dict[str, set[str]]:
    """{module: the distributions providing it} for the modules that are neither stdlib nor ours."""
    provided = _providers()
    ours = _top_level_packages() | {"tests"}
    return {m: {re.sub(r"[-_.]+", "-", d).lower() for d in provided.get(m, [m])}
            for m in modules if m not in sys.stdlib_module_names and m not in ours and m != "__future__"}


def test_every_third_party_import_is_declared() -> None:
    """Module-level imports of the runtime packages are runtime dependencies; any import (lazy ones
    too, and the torch-only ``models`` and ``training``) is a runtime dependency or in an extra."""
    runtime = _distribution_names(PYPROJECT["project"]["dependencies"])
    extras = set().union(*(_distribution_names(v) for v in PYPROJECT["project"]["optional-dependencies"].values()))
    for package in sorted(_top_level_packages()):
        for path in sorted((REPO / package).rglob("*.py")):
            for module, dists in _third_party(_all_imports(path)).items():
                assert dists & (runtime | extras), f"{path}: imports {module} ({dists}), not declared"
            if package not in ("models", "training"):  # the train extra's (torch)
                for module, dists in _third_party(_module_level_imports(path)).items():
                    assert dists & runtime, f"{path}: imports {module} at module level, not a runtime dependency"


def test_constraints_pin_what_the_extras_pull_in() -> None:
    """constraints.txt pins each installed dependency of the project (every extra) at its installed version."""
    pins = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    pinned = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    from hostinfo.probe import PROJECT, installed_versions

    installed = {k: v.split("+")[0] for k, v in installed_versions().items() if k != PROJECT}
    assert pinned == installed


def test_user_files_win_over_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """./user.conf and ./configs/<name>.yaml in the working directory come before the shipped ones."""
    from cli.main import main_parser
    from harness.profile import load_profile

    monkeypatch.chdir(tmp_path)
    args = ["run", "--mode", "accuracy", "--model", "m", "--dataset", "d", "--system", "host"]
    assert main_parser().parse_args(args).user_conf.resolve() == (REPO / "user.conf").resolve()
    (tmp_path / "user.conf").write_text("resnet50.Offline.target_qps = 1\n")
    assert main_parser().parse_args(args).user_conf == Path("user.conf")

    shipped = (REPO / "configs" / "c6i.2xlarge.yaml").read_text()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "c6i.2xlarge.yaml").write_text(shipped.replace("description: AWS", "description: mine"))
    assert load_profile("c6i.2xlarge", check_fits=False).description.startswith("mine")
