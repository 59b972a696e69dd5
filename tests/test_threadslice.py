"""Short scheduler slices for the query-carrying threads (hostctl.threadslice): granted per thread,
taken back by an undo, validated in profiles, and recorded by a real Server run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import run_server_with, undo_while_held
from host_facts import needs

from common.errors import ConfigError
from harness.profile import load_profile, profile_from_dict
from hostctl.threadslice import SliceClaim, custom_slices_supported, on_new_thread, thread_slice_us

needs_custom_slices = needs(custom_slices_supported, "this kernel has no EEVDF custom slices (Linux < 6.12)")


@needs_custom_slices
def test_a_claim_gives_each_calling_thread_the_slice_once_and_no_other_thread() -> None:
    default = on_new_thread(thread_slice_us)
    wanted = 100 if default != 100 else 200
    claim = SliceClaim(wanted)

    def claimed_twice() -> int | None:
        claim()
        claim()
        return thread_slice_us()

    assert on_new_thread(claimed_twice) == wanted
    assert on_new_thread(claimed_twice) == wanted
    assert claim.report() == {"slice_us": wanted, "threads": 2, "granted_us": [wanted]}
    assert thread_slice_us() == default  # the test's own thread never asked
    assert on_new_thread(thread_slice_us) == default  # nor is it inherited by new threads


@needs_custom_slices
def test_undo_gives_a_living_thread_its_default_slice_back_and_stops_claiming() -> None:
    default = on_new_thread(thread_slice_us)
    claim = SliceClaim(100 if default != 100 else 200)
    undone, seen = undo_while_held(claim, thread_slice_us)
    assert undone == 1  # the one thread that claimed, still running
    assert seen == [claim.value, default]
    assert on_new_thread(lambda: (claim(), thread_slice_us())[1]) == default  # no claim after an undo


def test_a_zero_claim_does_nothing() -> None:
    claim = SliceClaim(0)
    before = thread_slice_us()
    claim()
    assert thread_slice_us() == before and claim.report()["threads"] == 0


def test_dispatch_slice_is_validated_with_the_file_and_key() -> None:
    data = dataclasses.asdict(load_profile("host"))
    data["scenarios"]["Server"]["dispatch_slice_us"] = 50
    with pytest.raises(ConfigError, match=r"my.yaml: scenarios.Server: engine.dispatch_slice_us: expected 0 "
                                          r"\(kernel default\) or 100..100000 \(microseconds\), got 50"):
        profile_from_dict(data, "my.yaml")
    data["scenarios"]["Server"].update(dispatch_slice_us=100, instances=2, num_threads=1, num_streams=1,
                                       infer_requests=2)
    with pytest.raises(ConfigError, match=r"dispatch_slice_us: applies to one-instance pools only"):
        profile_from_dict(data, "my.yaml")


@needs_custom_slices
def test_server_run_records_the_slice_of_its_issue_and_callback_threads(demo_int8: Path, demo_data: Path,
                                                                         cache_dir: Path, tmp_path: Path) -> None:
    proc, run = run_server_with(tmp_path, demo_int8, demo_data / "val", cache_dir, "sliced", 1000,
                                dispatch_slice_us=100, keep_awake=False)
    # LoadGen's issue thread and OpenVINO's callback thread (at least) carried queries
    assert run.dispatch_slice is not None and run.dispatch_slice["threads"] >= 2
    assert run.dispatch_slice["granted_us"] == [100]
    assert run.profile.engine_for("Server").dispatch_slice_us == 100
    assert "query-carrying threads ran with a 100 us scheduler slice" in proc.stdout + proc.stderr
