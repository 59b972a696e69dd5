"""MLCommons' own submission checker, run on a tree after this harness's rules.

The checker comes from a local checkout of ``mlcommons/inference`` that the user
names (never downloaded, never vendored) and is run the documented way:
``python -m submission_checker.main --input <tree> --version v6.1`` from the
checkout's ``tools/submission``. It is run so that it cannot change or leak anything:

- it reads a copy of the tree (regular files only, copied without following links)
  in a temporary directory, so the user's tree is never modified; its CSV and
  anything else it writes go to that directory too (``HOME`` and ``TMPDIR`` point
  there, no bytecode is written into the checkout), and the directory is removed;
- it runs in a network namespace of its own when the kernel allows one (only a
  loopback interface), with a time limit, in its own process group (killed whole
  on timeout);
- its output is captured; its error lines and its closing summary are relayed
  with the temporary path replaced by the user's.

A tree with links (symbolic or hard) or special files is not handed to it at all: ``check``
lists them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError, HarnessError
from records.rules import ROUND
from submit.treeview import TreeView

log = logging.getLogger(__name__)

CHECKER_DIR = Path("tools") / "submission"  # the checker runs from here, as MLCommons documents
CHECKER_MAIN = CHECKER_DIR / "submission_checker" / "main.py"
CHECKER_CONSTANTS = CHECKER_DIR / "submission_checker" / "constants.py"
DEFAULT_TIMEOUT_S = 600.0  # a tree of one system takes about a second; many systems take longer
SUMMARY_OK = "SUMMARY: submission looks OK"
# "[2026-12-07 13:03:15,335 main.py:364 INFO] message": the checker's logging format.
_LOG_LINE = re.compile(r"^\[[^\]]*? (?P<source>[\w.]+):\d+ (?P<level>[A-Z]+)\] ?(?P<message>.*)$")
_SUMMARY_SOURCE = "main.py"  # the summary block at the end is logged by main.py
_TRACEBACK_TAIL = 5
OUTPUT_CAP = 16 * 1024 * 1024  # the last 16 MiB of its output are read: its summary is at the end


@dataclass
class OfficialVerdict:
    """What the official checker said: ``ok`` only when it ended with its OK summary and exit 0."""

    ok: bool
    returncode: int | None
    lines: list[str] = field(default_factory=list)  # relayed: its errors and its summary block
    command: str = ""
    isolated: bool = False  # ran in a network namespace of its own

    @property
    def summary(self) -> str:
        """Its last ``SUMMARY:`` line, or why there is none."""
        found = [line for line in self.lines if "SUMMARY:" in line]
        if found:
            return found[-1]
        return "no SUMMARY line (it did not finish: " + (self.lines[-1] if self.lines else "no output") + ")"


def checker_root(checkout: Path) -> Path:
    """``<checkout>/tools/submission`` of a local mlcommons/inference checkout that has the round's checker;
    anything else is a ``ConfigError`` naming the path."""
    checkout = Path(checkout)
    if not (checkout / CHECKER_MAIN).is_file():
        raise ConfigError(f"--official {checkout}: not a checkout of mlcommons/inference (no {CHECKER_MAIN}); "
                          "clone https://github.com/mlcommons/inference and name its folder")
    try:
        constants = (checkout / CHECKER_CONSTANTS).read_text(errors="replace")
    except OSError as exc:
        raise ConfigError(f"{checkout / CHECKER_CONSTANTS}: cannot read ({exc.strerror})") from None
    if f'"{ROUND}"' not in constants:
        raise ConfigError(f"{checkout / CHECKER_CONSTANTS}: this submission checker does not know round {ROUND} "
                          "(update the checkout: git pull)")
    return checkout / CHECKER_DIR


def network_isolation() -> list[str]:
    """The command prefix that gives a child a network namespace of its own (loopback only), or [] when
    this kernel or user may not create one."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    for prefix in ([unshare, "--net"], [unshare, "--net", "--map-root-user"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return []


def copy_tree(view: TreeView, dest: Path) -> None:
    """Copy the regular files and directories of ``view`` to ``dest``, opening no link."""
    for directory in sorted(view.dirs):
        (dest / directory.relative_to(view.root)).mkdir(parents=True, exist_ok=True)
    for path in view.files:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as src, open(dest / path.relative_to(view.root), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in the checker's process group (none: nothing to do)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(path: Path, cap: int) -> str:
    """The last ``cap`` bytes of a file as text."""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - cap))
        return fh.read().decode("utf-8", errors="replace")


def relayed_lines(output: str, copy: Path, tree: Path) -> list[str]:
    """The lines of the checker's output worth showing: every ERROR, and its closing summary (the
    lines ``main.py`` logs); a crash's last lines when it never got to a summary. The copy's path
    is replaced by the user's tree path."""
    out: list[str] = []
    summary_started = False
    for raw in output.splitlines():
        m = _LOG_LINE.match(raw)
        if not m:
            continue
        message = m.group("message").strip()
        summary_started = summary_started or (m.group("source") == _SUMMARY_SOURCE and message == "---")
        if m.group("level") in ("ERROR", "CRITICAL") or (summary_started and message and message != "---"):
            out.append(f"{m.group('level')} {message}")
    if not any("SUMMARY:" in line for line in out):
        out += [line for line in output.strip().splitlines()[-_TRACEBACK_TAIL:] if line.strip()]
    return [line.replace(str(copy), str(tree)) for line in out]


def run_official_checker(tree: Path, checkout: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> OfficialVerdict:
    """Run the official checker of round ``ROUND`` on ``tree`` (see the module docstring)."""
    root = checker_root(checkout)
    tree = Path(tree)
    view = TreeView.scan(tree)
    if view.problems or view.linked:
        first = view.problems[0] if view.problems else f"{sorted(view.linked)[0]}: has other hard links"
        raise HarnessError(f"{tree}: official checker not run: the tree holds links, special files or unreadable "
                           f"folders (first: {first})")
    isolation = network_isolation()
    if not isolation:
        log.warning("no network namespace available here: the official checker runs with the host's network "
                    "(it does not use it)")
    with tempfile.TemporaryDirectory(prefix="mlperf-official-") as tmp:
        work = Path(tmp)
        copy = work / "submission"
        copy_tree(view, copy)
        args = ["-m", "submission_checker.main", "--input", str(copy), "--version", ROUND,
                "--csv", str(work / "summary.csv")]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "TMPDIR": str(work),
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
        command = f"cd {root} && {sys.executable} {' '.join(args)}"
        log.info("official checker: %s", command.replace(str(copy), str(tree)).replace(str(work), "$TMPDIR"))
        output = work / "checker-output.log"  # a file, not a pipe: memory stays bounded whatever it prints
        with output.open("wb") as sink:
            proc = subprocess.Popen([*isolation, sys.executable, *args], cwd=root, env=env,
                                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                raise HarnessError(f"{tree}: the official checker did not finish within {timeout_s:g} s "
                                   "(stopped)") from None
            _kill_group(proc.pid)  # anything it started and left running goes with it
        lines = relayed_lines(_tail(output, OUTPUT_CAP), copy, tree)
    ok = proc.returncode == 0 and any(SUMMARY_OK in line for line in lines)
    shown = command.replace(str(copy), str(tree)).replace(str(work), "$TMPDIR")
    return OfficialVerdict(ok, proc.returncode, lines, shown, bool(isolation))


def verify_tree(tree: Path, checkout: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
                ) -> OfficialVerdict | None:
    """The submission flow's last step: this harness's rules, then (with ``checkout``) the official
    checker. Logs both verdicts; raises ``SubmissionError`` naming every failed one."""
    from common.errors import SubmissionError
    from submit.check import check_tree

    problems = check_tree(tree)
    for problem in problems:
        log.error("%s", problem)
    failures = [f"{len(problems)} problem(s); first: {problems[0]}"] if problems else []
    log.info("%s: this harness's rules: %s", tree, f"{len(problems)} problem(s)" if problems else "OK")
    verdict = None
    if checkout is not None:
        verdict = run_official_checker(tree, checkout, timeout_s)
        for line in verdict.lines:
            log.info("official: %s", line)
        log.info("%s: official checker %s: %s", tree, ROUND, "OK" if verdict.ok else "FAILED")
        if not verdict.ok:
            failures.append(f"official checker {ROUND}: FAILED ({verdict.summary})")
    if failures:
        raise SubmissionError(f"{tree}: " + "; ".join(failures))
    return verdict
