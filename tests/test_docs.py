"""The guide and its pages: a short README, links that resolve, no development diary, and
docs/performance.md regenerated from the benches' JSON records by scripts/performance_table.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench._record import Value, command_line, cpu_name, figure, git_commit, write_json
from common.childproc import child_environment, python_command

REPO = Path(__file__).resolve().parent.parent

SCRIPT = REPO / "scripts" / "performance_table.py"
GUIDE_PAGES = ["README.md", "bench/README.md", "results/README.md",
               *(str(p.relative_to(REPO)) for p in sorted((REPO / "docs").glob("*.md"))),
               *(str(p.relative_to(REPO)) for p in sorted((REPO / "docs" / "notes").glob("*.md")))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NARRATIVE = re.compile(r"\bsession \d|\bissue #?\d|\bthis time\b|\bearlier\b|\bnow\b|\bagain\b", re.IGNORECASE)


def test_readme_is_a_short_guide() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) < 250, f"README.md has {len(lines)} lines"
    head = "\n".join(lines[:15])
    assert "./run_offline.sh" in head and "./run_tests.sh" in head  # the two setup commands come first


def test_docs_pages_exist() -> None:
    for page in ("submission", "scenarios", "detection", "models", "architecture", "troubleshooting",
                 "performance"):
        assert (REPO / "docs" / f"{page}.md").is_file(), page


@pytest.mark.parametrize("page", GUIDE_PAGES)
def test_relative_links_resolve(page: str) -> None:
    path = REPO / page
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        assert resolved.exists(), f"{page}: link {target} -> {resolved} does not exist"


@pytest.mark.parametrize("page", GUIDE_PAGES)
def test_no_development_diary(page: str) -> None:
    hits = [f"{page}:{i}: {line.strip()}" for i, line in enumerate((REPO / page).read_text().splitlines(), 1)
            if NARRATIVE.search(line)]
    assert not hits, "\n".join(hits)


def _record(bench: str, name: str, ratio: float, date: str, ours: float = 100.0, ref: float = 101.0) -> dict:
    """A record as a bench writes it, with its date set (two records of one figure need two dates)."""
    rec = figure(bench, ratio, Value("ours", ours, "samples/s"), Value("benchmark_app", ref, "FPS"),
                 name=name, ratio_is="ours / benchmark_app", goal=">= 0.95", note="untrained weights: speed only")
    return {**rec, "date_utc": date}


def _generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=60)


def test_record_says_where_and_how(tmp_path: Path) -> None:
    rec = figure("feed_loops", 0.97, Value("pool", 1.0, "samples/s"), Value("fixed", 2.0, "samples/s"),
                 ratio_is="pool / fixed")
    assert rec["cpu"] == cpu_name() and rec["cpu"]
    assert rec["commit"] == git_commit() and rec["commit"]
    assert rec["command"] == command_line()
    assert command_line(["bench/harness_vs_benchmark_app.py", "--model", "decinet_s"]) == \
        "bench/run.sh harness_vs_benchmark_app --model decinet_s"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["date_utc"])


def test_newest_record_per_bench_figure_wins(tmp_path: Path) -> None:
    src = tmp_path / "json"
    old = _record("harness_vs_benchmark_app", "resnet50 int8 Offline", 0.912, "2026-01-01T10:00:00Z", 91.2, 100.0)
    new = _record("harness_vs_benchmark_app", "resnet50 int8 Offline", 0.987, "2026-02-01T10:00:00Z", 98.7, 100.0)
    other = _record("harness_vs_benchmark_app", "decinet_s int8 Offline", 0.991, "2026-01-15T10:00:00Z")
    write_json(src / "a" / "new.json", {"rounds": []}, [new])  # the newer file first: dates decide, not order
    write_json(src / "b" / "old.json", {"rounds": []}, [old, other])
    (src / "card.json").write_text(json.dumps({"name": "not a bench record"}))
    (src / "broken.json").write_text("{ not json")
    out = tmp_path / "performance.md"

    done = _generate(str(src), "--out", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    rows = [line for line in page.splitlines() if line.startswith("| harness_vs_benchmark_app |")]
    assert len(rows) == 2  # one per figure of the bench
    current = next(r for r in rows if "resnet50" in r)
    assert "**0.987**" in current and "98.70" in current and "2026-02-01T10:00:00Z" in current
    assert "0.912" not in page
    assert new["command"] in current and new["commit"] in current
    assert f"## {cpu_name()}" in page
    assert "scripts/performance_table.py" in page.split("\n## ")[0]  # the header says how it is made
    # every other bench of bench/ is listed as not measured on this CPU
    not_measured = next(line for line in page.splitlines() if line.startswith("Not yet measured"))
    for bench in ("server_vs_offline", "feed_loops", "scaling_model"):
        assert f"`{bench}`" in not_measured
    assert "`harness_vs_benchmark_app`" not in not_measured


def test_other_cpus_sections_are_kept_and_this_cpus_is_replaced(tmp_path: Path) -> None:
    """A page regenerated on one machine keeps the tables another machine's records made."""
    src = tmp_path / "json"
    write_json(src / "mine.json", {}, [_record("feed_loops", "null model", 0.933, "2026-03-01T10:00:00Z")])
    other = ["## Other Vendor CPU (ISA-X)", "", "| bench | figure |", "|---|---|",
             "| feed_loops | null model | **0.777** |", ""]
    stale = [f"## {cpu_name()} (OLD)", "", "| feed_loops | null model | **0.111** |", ""]
    out = tmp_path / "performance.md"
    out.write_text("\n".join(["# Performance", "", *other, *stale]) + "\n")

    assert _generate(str(src), "--out", str(out)).returncode == 0
    page = out.read_text()
    assert "\n".join(other[:5]) in page  # the other CPU's table, unchanged
    assert "**0.111**" not in page and "**0.933**" in page  # this CPU's, regenerated
    assert page.count(f"## {cpu_name()}") == 1


def test_malformed_record_is_one_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"performance": [{"bench": "feed_loops", "ratio": "fast"}]}))
    out = tmp_path / "performance.md"
    done = _generate(str(bad), "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.startswith("ERROR: ") and str(bad) in done.stderr and len(done.stderr.splitlines()) == 1
    assert not out.exists()


def test_a_real_bench_run_feeds_the_page(tmp_path: Path) -> None:
    """feed_loops (a null model, no LoadGen: seconds) writes its record; the page shows that run."""
    out_json = tmp_path / "json" / "feed_loops.json"
    run = subprocess.run(python_command("-m", "bench.feed_loops", "--rounds", "1", "--seconds", "0.5",
                                        "--json", str(out_json)),
                         env=child_environment(), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (rec,) = json.loads(out_json.read_text())["performance"]
    medians = {m.group(1): float(m.group(2).replace(",", "")) for m in
               re.finditer(r"^(\S+)\s+median ([\d,]+) samples/s", run.stdout, re.MULTILINE)}
    assert rec["ours"]["value"] == pytest.approx(medians["pool"], rel=1e-3, abs=1)
    assert rec["reference"]["value"] == pytest.approx(medians["fixed"], rel=1e-3, abs=1)
    assert rec["ratio"] == pytest.approx(rec["ours"]["value"] / rec["reference"]["value"])
    assert rec["command"] == f"bench/run.sh feed_loops --rounds 1 --seconds 0.5 --json {out_json}"
    page = tmp_path / "performance.md"
    assert _generate(str(out_json.parent), "--out", str(page)).returncode == 0
    row = next(line for line in page.read_text().splitlines() if line.startswith("| feed_loops |"))
    assert f"**{rec['ratio']:.3f}**" in row and rec["date_utc"] in row and rec["command"] in row
