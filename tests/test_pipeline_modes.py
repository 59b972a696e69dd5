"""``pipeline --mode`` chooses the tests the bundled demo runs, as it does for a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli

RESULTS_MODES = {"accuracy", "performance"}


def _run_kinds(results: Path) -> dict[str, set[str]]:
    """``<system>/<model label>/<Scenario>`` -> the kinds of run (accuracy, performance) written there."""
    kinds: dict[str, set[str]] = {}
    for result in results.rglob("result.json"):
        relative = result.relative_to(results).parts
        kind = next(part for part in relative if part in RESULTS_MODES)
        scenario_dir = "/".join(relative[: relative.index(kind)])
        kinds.setdefault(scenario_dir, set()).add(kind)
    return kinds


def test_demo_with_mode_accuracy_runs_only_accuracy(demo_data: Path, session_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "user.conf").write_text((Path(__file__).resolve().parents[1] / "user.conf").read_text())
    results = tmp_path / "results"
    proc = run_cli(["pipeline", "--mode", "accuracy", "--demo-data", str(demo_data),
                    "--work", str(session_dir / "pipeline-work"), "--results", str(results)], cwd=tmp_path,
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kinds = _run_kinds(results)
    # The demo runs FP32 and INT8 of its model: two model folders, each with an accuracy run and nothing else.
    assert len(kinds) == 2, kinds
    assert all(found == {"accuracy"} for found in kinds.values()), kinds
    assert not list(results.rglob("performance")), "a performance run was started"


@pytest.mark.parametrize(("mode", "expected"), [
    ("all", ("accuracy", "performance")),
    ("accuracy", ("accuracy",)),
    ("performance", ("performance",)),
])
def test_requested_modes(mode: str, expected: tuple[str, ...]) -> None:
    from pipeline.flows import requested_modes

    assert tuple(m.value for m in requested_modes(mode)) == expected


def test_unknown_mode_is_a_config_error() -> None:
    from common.errors import ConfigError
    from pipeline.flows import requested_modes

    with pytest.raises(ConfigError, match="--mode 'TEST01'"):
        requested_modes("TEST01")
