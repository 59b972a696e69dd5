"""System profiles: shipped ones load, bad ones are refused with the key named."""

from pathlib import Path

import pytest

from common.errors import ConfigError
from harness.profile import available_profiles, host_profile, load_profile
from hostinfo.probe import physical_cores


@pytest.mark.parametrize("name", ["c6i.2xlarge", "c6i.16xlarge", "m5zn.6xlarge", "c6i.32xlarge", "m5zn.12xlarge"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name, check_fits=False)
    assert profile.name == name and profile.engine.total_threads <= profile.cores


def test_host_profile_fits_this_machine() -> None:
    profile = load_profile("host")
    assert profile.cores == physical_cores() == host_profile().engine.num_streams


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
     " inference_precision: f32}\n", "engine: inference_precision is a property of the model now"),
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
