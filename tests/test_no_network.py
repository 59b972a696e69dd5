"""Nothing goes out: an INT8 ``prepare`` (real NNCF post-training quantization of the demo model)
looks up no host name, opens no internet connection and leaves the home directory untouched.

The CLI runs in a child process with a fresh, empty ``HOME`` under a small wrapper that installs
a Python audit hook first: every name lookup and every AF_INET/AF_INET6 connect or send is
recorded to a file and refused (so the test itself sends nothing). A control run, in which NNCF is
imported before the CLI can switch its telemetry off, shows that the hook does see NNCF's
analytics and that NNCF would write ``~/intel``. Where ``strace`` is installed, the first run is
also traced at the system-call level, which covers code outside Python too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEMO_ONNX, REPO

GUARD = '''
import json, os, runpy, socket, sys

LOG = os.environ["NETGUARD_LOG"]
LOOKUPS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr")
SENDS = ("socket.connect", "socket.sendto", "socket.sendmsg")


def record(event, detail):
    with open(LOG, "a") as fh:
        fh.write(json.dumps({"event": event, "detail": detail}) + "\\n")


def hook(event, args):
    if event in LOOKUPS:
        record(event, repr(args[:2]))
        raise OSError("name lookup refused by the test")
    if event in SENDS and args[0].family in (socket.AF_INET, socket.AF_INET6):
        record(event, repr(args[1]))
        raise OSError("connection refused by the test")


sys.addaudithook(hook)
for name in filter(None, os.environ.get("NETGUARD_IMPORT_FIRST", "").split(",")):
    __import__(name)
sys.argv = ["mlperf-cpu", *sys.argv[1:]]
runpy.run_module("cli", run_name="__main__", alter_sys=True)
'''

# Switches a test runner's environment may carry; the child starts without them, as a user's shell would.
OUTSIDE_SWITCHES = ("NNCF_CI", "NNCF_DEV", "CI", "TF_BUILD", "JENKINS_URL", "HF_HUB_OFFLINE",
                    "HF_HUB_DISABLE_TELEMETRY", "DISABLE_TELEMETRY", "DO_NOT_TRACK", "PYTHONSAFEPATH",
                    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE_SWITCHES}
    return {**env, "HOME": str(home), "PYTHONPATH": str(REPO), **extra}


def _prepare_args(demo: Path, out: Path, cache: Path) -> list[str]:
    # A calibration subset keeps it quick; NNCF's telemetry is the same for 16 images as for 300.
    return ["prepare", "--model", str(DEMO_ONNX), "--precision", "int8", "--calib-list", str(demo / "cal_list.txt"),
            "--calib-dir", str(demo / "train"), "--calib-subset", "16", "--out", str(out), "--cache-dir", str(cache)]


def _guarded_prepare(tmp: Path, demo: Path, cache: Path, import_first: str = "",
                     trace: Path | None = None) -> tuple[list[dict], Path]:
    """INT8 prepare under the audit hook with a fresh HOME (and under strace, if ``trace`` is given);
    returns (the attempts the hook recorded, HOME)."""
    guard, log, home = tmp / "guard.py", tmp / "network.jsonl", tmp / "home"
    guard.write_text(GUARD)
    home.mkdir()
    env = _env(home, NETGUARD_LOG=str(log), NETGUARD_IMPORT_FIRST=import_first)
    strace = [] if trace is None else ["strace", "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(trace)]
    proc = subprocess.run([*strace, sys.executable, "-P", str(guard), *_prepare_args(demo, tmp / "models", cache)],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    if trace is not None and proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip().splitlines()[0]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (Path(proc.stdout.strip().splitlines()[-1]) / "model.xml").is_file()  # it did quantize
    attempts = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    return attempts, home


@pytest.fixture(scope="module")
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # the calibration images' cache, shared by the runs


def test_int8_prepare_sends_nothing_and_leaves_home_alone(tmp_path: Path, demo_data: Path, image_cache: Path) -> None:
    """No lookup or connection from Python code (the hook); where strace is installed, none from any
    code at all (a resolver query is a connect to port 53, so it shows there too)."""
    trace = tmp_path / "syscalls.txt" if shutil.which("strace") else None
    attempts, home = _guarded_prepare(tmp_path, demo_data, image_cache, trace=trace)
    assert attempts == []
    assert sorted(home.rglob("*")) == []
    if trace is not None:
        assert [line for line in trace.read_text().splitlines() if "AF_INET" in line] == []


def test_the_hook_sees_nncf_telemetry_when_it_is_not_switched_off(tmp_path: Path, demo_data: Path,
                                                                  image_cache: Path) -> None:
    """The instrument of the test above: NNCF imported before the CLI starts its telemetry with
    consent assumed. The hook records (and refuses) its analytics lookups, and NNCF writes ``~/intel``."""
    attempts, home = _guarded_prepare(tmp_path, demo_data, image_cache, import_first="nncf")
    assert any(a["event"] == "socket.getaddrinfo" for a in attempts), attempts
    assert (home / "intel").is_dir()
