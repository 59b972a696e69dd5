"""System profiles: shipped ones load, bad ones are refused with the key named, and no profile
changes the host unasked."""

from pathlib import Path

import pytest
import yaml

from common.errors import ConfigError
from harness.profile import DEFAULT_CONFIG_DIR, available_profiles, host_profile, load_profile

SHIPPED = sorted(p for p in DEFAULT_CONFIG_DIR.glob("*.yaml")  # the system profiles among configs/*.yaml
                 if not p.name.endswith("-tuned.yaml") and "engine" in (yaml.safe_load(p.read_text()) or {}))


@pytest.mark.parametrize("name", ["c6i.2xlarge", "c6i.16xlarge", "m5zn.6xlarge", "c6i.32xlarge", "m5zn.12xlarge"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name, check_fits=False)
    assert profile.name == name and profile.engine.total_threads <= profile.cores


@pytest.mark.parametrize("cores", [1, 2, 8])
def test_host_profile_is_sized_by_the_cores_it_finds(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    import harness.profile

    monkeypatch.setattr(harness.profile, "physical_cores", lambda: cores)
    profile = load_profile("host")
    engine = profile.engine
    assert (profile.cores, engine.num_streams, engine.num_threads, engine.infer_requests, engine.batch_size) == \
        (cores, cores, cores, 2 * cores, 16)
    server = profile.engine_for("Server")
    assert (server.num_streams, server.num_threads, server.infer_requests) == (cores, cores, 8 * cores)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_no_shipped_profile_changes_the_host(path: Path) -> None:
    profile = load_profile(str(path), check_fits=False)
    for engine in [profile.engine, *profile.scenarios.values()]:
        assert (engine.keep_awake, engine.dispatch_slice_us, engine.issue_priority) == ("off", 0, 0)


def _allow_everything(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> None:
    """The host probes the host profile derives its host settings from, all answering ``allowed``."""
    import harness.profile

    for probe in ("virtual_machine", "pm_qos_writable", "custom_slices_supported"):
        monkeypatch.setattr(harness.profile, probe, lambda: allowed)
    monkeypatch.setattr(harness.profile, "realtime_allowed", lambda priority=1: allowed)


@pytest.mark.parametrize("allowed, host_tuning, server", [
    (True, False, ("off", 0, 0)),  # a host that allows everything is still left alone unasked
    (False, False, ("off", 0, 0)),
    (True, True, ("pm_qos", 100, 1)),
    (False, True, ("off", 0, 0)),
])
def test_the_host_profile_has_host_settings_only_with_host_tuning(monkeypatch: pytest.MonkeyPatch, allowed: bool,
                                                                  host_tuning: bool, server: tuple) -> None:
    _allow_everything(monkeypatch, allowed)
    profile = load_profile("host", host_tuning=host_tuning)
    got = profile.engine_for("Server")
    assert (got.keep_awake, got.dispatch_slice_us, got.issue_priority) == server
    for name in ("Offline", "SingleStream", "MultiStream"):
        engine = profile.engine_for(name)
        assert (engine.keep_awake, engine.dispatch_slice_us, engine.issue_priority) == ("off", 0, 0)


def test_a_profile_of_your_own_keeps_the_host_settings_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ncores: 1\nengine: {num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 1}\n"
                    "scenarios:\n  Server: {num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 1,\n"
                    "           keep_awake: loops, dispatch_slice_us: 200, issue_priority: 2}\n")
    for host_tuning in (False, True):
        server = load_profile(str(path), check_fits=False, host_tuning=host_tuning).engine_for("Server")
        assert (server.keep_awake, server.dispatch_slice_us, server.issue_priority) == ("loops", 200, 2)


def test_profile_bigger_than_machine_is_refused() -> None:
    with pytest.raises(ConfigError, match="uses 32 threads but this machine has"):
        load_profile("c6i.16xlarge")


def test_unknown_profile_suggests() -> None:
    with pytest.raises(ConfigError, match=r"'c6i.2xlarg' not found \(did you mean 'c6i.2xlarge'\?\)"):
        load_profile("c6i.2xlarg")
    assert "host" in available_profiles()


@pytest.mark.parametrize("body, message", [
    ("name: x\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_size: 0}\n",
     "engine.batch_size: expected an integer >= 1, got 0"),
    ("name: x\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_sise: 8}\n",
     "unknown key 'batch_sise' (did you mean 'batch_size'?)"),
    ("name: x\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 1, batch_size: 8}\n",
     "engine.infer_requests (1) must be >= engine.num_streams (2)"),
    ("name: x\ncores: 1\nengine: {num_streams: 2, num_threads: 2, infer_requests: 2, batch_size: 8}\n",
     "engine: num_threads (2) exceeds cores (1)"),
    ("name: x\ncores: 2\nengine: {num_streams: 1, num_threads: 1, infer_requests: 1, batch_size: 8,"
     " inference_precision: f32}\n", "engine: inference_precision is a property of the model, not of the profile"),
    ("name: x\ncores: 2\n", "missing 'engine'"),
    ("name: x\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_size: 8}\n"
     "scenarios: {SingleStrem: {num_streams: 1, num_threads: 2, infer_requests: 1, batch_size: 1}}\n",
     "scenarios: unknown key 'SingleStrem' (did you mean 'SingleStream'?)"),
    ("name: x\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_size: 8}\n"
     "scenarios: {Server: {num_streams: 1, num_threads: 4, infer_requests: 1, batch_size: 1}}\n",
     "scenarios.Server: num_threads (4) exceeds cores (2)"),
    ("name: x\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_size: 8}\n"
     "scenarios: {Server: {num_streams: 1, num_threads: 2, infer_requests: 1, batch_size: 1, max_wait_us: -5}}\n",
     "engine.max_wait_us: expected an integer >= 0, got -5"),
    ("name: [x\n", "invalid YAML"),
    ("name: x\ncores: 2\nwatchdog_s: -1\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_size: 8}\n",
     "bad.yaml: watchdog_s: expected seconds >= 0 (0: derived from the warm-up), got -1"),
    ("name: x\ncores: 2\nwatchdog_s: soon\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, batch_size: 8}\n",
     "bad.yaml: watchdog_s: expected seconds >= 0 (0: derived from the warm-up), got 'soon'"),
])
def test_bad_profiles(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path), check_fits=False)
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_missing_scenario_settings_name_the_profile_and_key(tmp_path: Path) -> None:
    path = tmp_path / "only-offline.yaml"
    path.write_text("name: only-offline\ncores: 2\nengine: {num_streams: 2, num_threads: 2, infer_requests: 4, "
                    "batch_size: 8}\n")
    profile = load_profile(str(path), check_fits=False)
    assert profile.engine_for("Offline") == profile.engine
    with pytest.raises(ConfigError, match="profile 'only-offline' has no engine settings for MultiStream: add a "
                                          "'scenarios: MultiStream:' mapping"):
        profile.engine_for("MultiStream")


def test_host_profile_has_every_scenario() -> None:
    profile = host_profile()
    single = profile.engine_for("SingleStream")
    assert (single.num_streams, single.infer_requests, single.batch_size) == (1, 1, 1)
    assert single.num_threads == profile.cores  # latency: one stream over every core
    assert profile.engine_for("MultiStream").batch_size * profile.engine_for("MultiStream").infer_requests >= 8
    assert profile.engine_for("Server").batch_size == 1


def test_watchdog_s_is_read_from_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "watched.yaml"
    path.write_text("name: watched\ncores: 1\nwatchdog_s: 45\n"
                    "engine: {num_streams: 1, num_threads: 1, infer_requests: 2, batch_size: 1}\n")
    assert load_profile(str(path), check_fits=False).watchdog_s == 45
    assert load_profile("host").watchdog_s == 0  # derived from the warm-up
