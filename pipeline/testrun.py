"""One LoadGen test in its own process: where things go (``Workspace``), what to run (``TestSpec``)
and the child process that runs it (``run_test``).

A LoadGen test must run in its own process (LoadGen's ``FromConfig`` may be called once per
process), so ``run_test`` starts ``python -m cli run`` and reads back the ``RunResult`` the child
wrote; nothing parses the child's output. The flows (``pipeline.flows``), tune's Server search
(``pipeline.server_search``), ``report`` and the benches all run their tests through it.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from common.childproc import child_environment, python_command
from common.errors import HarnessError
from common.resources import default_user_conf
from common.testspec import Mode, Overrides, Scenario
from harness.profile import load_profile
from hostctl.lifetime import run_child
from modelprep.card import load_card
from records import results as run_records
from records.results import RunResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    """Where generated things go: prepared models and the image cache (``work/``), results, demo data."""

    work: Path = Path("work")
    results: Path = Path("results")
    demo_data: Path = Path("data/demo")

    @property
    def models(self) -> Path:
        """Prepared-model root."""
        return self.work / "models"

    @property
    def cache(self) -> Path:
        """Preprocessed-image cache (and OpenVINO's compiled-model cache inside it)."""
        return self.work / "cache"


@dataclass(frozen=True)
class TestSpec:
    """One LoadGen test to run in its own process."""

    mode: Mode
    model_dir: Path
    dataset: Path
    system: str
    workspace: Workspace
    user_conf: Path = field(default_factory=default_user_conf)  # ./user.conf, else the shipped one
    val_map: Path | None = None
    scenario: Scenario = Scenario.OFFLINE
    overrides: Overrides = field(default_factory=Overrides)
    # Measurement loops (report, benches, tune's probes) rerun into their own results on purpose;
    # the pipeline's steps go through run_step, which reuses a complete run or asks for --replace.
    replace: bool = True
    host_tuning: bool = False  # --host-tuning

    def argv(self) -> list[str]:
        """The ``mlperf-cpu run`` arguments for this test."""
        args = ["run", "--mode", self.mode.value, "--scenario", self.scenario.value,
                "--model", str(self.model_dir), "--dataset", str(self.dataset), "--system", self.system,
                "--user-conf", str(self.user_conf), "--results", str(self.workspace.results),
                "--cache-dir", str(self.workspace.cache)]
        if self.val_map is not None:
            args += ["--val-map", str(self.val_map)]
        if self.host_tuning:
            args.append("--host-tuning")
        flags = {"min_duration_ms": "--min-duration-ms", "min_query_count": "--min-query-count",
                 "target_qps": "--target-qps", "performance_sample_count": "--performance-sample-count"}
        for key, value in self.overrides.active().items():
            args += [flags[key], f"{value:g}" if isinstance(value, float) else str(value)]
        if self.replace:
            args.append("--replace")
        return args

    def run_dir(self) -> Path:
        """Where the child writes this test's logs and record."""
        profile = load_profile(self.system, check_fits=False)
        return run_records.run_dir(self.workspace.results, profile.name, load_card(self.model_dir).label, self.scenario,
                            self.mode)


def run_test(spec: TestSpec, quiet: bool = False) -> RunResult:
    """Run one test in a child process and return the record it wrote.

    ``quiet`` captures the child's output (its last error line is kept for the exception);
    otherwise the child prints to this process's terminal.
    """
    cmd = python_command("-m", "cli", *spec.argv())
    log.info("$ %s", shlex.join(["mlperf-cpu", *spec.argv()]))
    # Its own process group, dying with this process; stopped with its group if this one is interrupted.
    proc = run_child(cmd, child_environment(), capture=quiet)
    if proc.returncode != 0:
        last = (proc.stderr or "").strip().splitlines()[-1:] if quiet else []
        error = HarnessError(f"{spec.mode.value} run of {spec.model_dir} failed (exit {proc.returncode})"
                             + (f": {last[0]}" if last else ""))
        error.exit_code = proc.returncode
        raise error
    return RunResult.load(spec.run_dir())
