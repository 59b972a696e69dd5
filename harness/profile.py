"""Loading system profiles: the inference-pool settings (and system facts) for one machine type.

A profile is a YAML file in ``configs/`` (``c6i.2xlarge.yaml``, ...), or
``host``, which is derived from the running machine. It is validated once,
here, into the frozen ``sut.config`` records that the rest of the harness takes as given.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from common.errors import ConfigError
from common.names import check_name
from common.resources import USER_CONFIG_DIR, profile_dirs
from common.suggest import check_known, did_you_mean
from hostinfo.probe import physical_cores, virtual_machine
from hostctl.keepawake import pm_qos_writable
from hostctl.threadpriority import realtime_allowed
from hostctl.threadslice import custom_slices_supported
from sut.config import MIN_SLICE_US, EngineConfig, SystemProfile

log = logging.getLogger(__name__)

HOST = "host"
# Where `tune` writes a profile by name: the working directory's configs/ (looked up before the
# shipped profiles, common.resources.profile_dirs), never the installed package.
DEFAULT_CONFIG_DIR = USER_CONFIG_DIR


SCENARIO_NAMES = ("SingleStream", "MultiStream", "Server")  # Offline is the profile's 'engine'
HOST_ISSUE_PRIORITY = 1  # the lowest real-time priority is enough to outrank every SCHED_OTHER thread
SERVER_REQUESTS_PER_STREAM = 8  # host Server: queue bursts inside OpenVINO (host_scenarios)
LATENCY_SCENARIOS = ("SingleStream", "MultiStream")  # one query at a time: one instance only


def host_scenarios(cores: int, host_tuning: bool = False) -> dict[str, EngineConfig]:
    """Latency settings derived from the core count (starting points; ``tune --scenario`` measures).

    SingleStream: one stream over every core, one request, batch 1 (latency of one image).
    MultiStream: one stream over every core running the 8-sample query as one batch.
    Server: one single-thread stream per core, per-query dispatch. With ``host_tuning`` (the
    user's ``--host-tuning``; these change the host, so never by default) also
    ``host_server_tuning``: short scheduler slices, ``SCHED_FIFO`` for the issuing threads and,
    on a virtual machine, CPUs kept from halting between arrivals.
    ``SERVER_REQUESTS_PER_STREAM`` batch-1 requests per stream: a burst of arrivals waits in
    OpenVINO's own queue, which a stream takes its next request from the moment it finishes,
    instead of in ``issue_query`` waiting for an idle request, which lowered the p99
    (docs/notes/2026-11-30-server-tail-on-vms.md). Keeping a VM's CPUs awake helps when the host is
    slow at partial load (docs/scenarios.md, Host tuning).
    """
    tuning = host_server_tuning() if host_tuning else {}
    return {"SingleStream": EngineConfig(1, cores, 1, 1),
            "MultiStream": EngineConfig(1, cores, 1, 8),
            "Server": EngineConfig(cores, cores, SERVER_REQUESTS_PER_STREAM * cores, 1, max_wait_us=0, **tuning)}


def host_server_tuning() -> dict[str, Any]:
    """The host settings ``--host-tuning`` gives the ``host`` profile's Server: ``keep_awake``
    (``host_keep_awake``), the shortest custom slice where the kernel has them
    (``hostctl.threadslice``) and ``issue_priority`` where this process may use ``SCHED_FIFO``
    (``hostctl.threadpriority``: no inference thread preempts the issuing thread while it holds
    Python's lock)."""
    return {"keep_awake": host_keep_awake(),
            "dispatch_slice_us": MIN_SLICE_US if custom_slices_supported() else 0,
            "issue_priority": host_issue_priority()}


def host_issue_priority() -> int:
    """Server's ``issue_priority`` for this machine: ``HOST_ISSUE_PRIORITY`` where this process may
    use ``SCHED_FIFO`` (``hostctl.threadpriority``), else 0."""
    return HOST_ISSUE_PRIORITY if realtime_allowed(HOST_ISSUE_PRIORITY) else 0


def host_keep_awake() -> str:
    """Server's ``keep_awake`` for this machine: ``off`` on bare metal (not measured there);
    on a virtual machine ``pm_qos`` where this process may hold the CPU latency limit (a lower p99
    than the loops in every paired round: docs/notes/2026-11-30-server-tail-on-vms.md), else ``loops``."""
    if not virtual_machine():
        return "off"
    return "pm_qos" if pm_qos_writable() else "loops"


def host_profile(host_tuning: bool = False) -> SystemProfile:
    """Profile derived from the running machine. Offline: one single-thread stream per core,
    two requests per stream so each batch's refill overlaps inference, batch 16; the latency
    scenarios from ``host_scenarios`` (``host_tuning``: with its host settings)."""
    cores = physical_cores()
    engine = EngineConfig(num_streams=cores, num_threads=cores, infer_requests=2 * cores,
                          batch_size=16, pinning=True)
    return SystemProfile(HOST, cores, engine, description="derived from this machine",
                         scenarios=host_scenarios(cores, host_tuning))


def _engine_from_dict(engine: Any, origin: str, cores: int) -> EngineConfig:
    if not isinstance(engine, dict):
        raise ConfigError(f"{origin}: expected a mapping of engine settings")
    if "inference_precision" in engine:
        raise ConfigError(f"{origin}: inference_precision is a property of the model, not of the profile: "
                          "remove it and use 'prepare --precision f32|bf16|int8 [--int8-rest f32|bf16]'")
    _check_keys(engine, {f.name for f in fields(EngineConfig)}, origin)
    try:
        cfg = EngineConfig(**engine)
    except TypeError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if cfg.total_threads > cores:
        per = f" x instances ({cfg.instances})" if cfg.instances > 1 else ""
        raise ConfigError(f"{origin}: num_threads ({cfg.num_threads}){per} exceeds cores ({cores})")
    return cfg


def _check_keys(data: dict[str, Any], allowed: set[str], origin: str) -> None:
    """Refuse unknown keys, suggesting the closest known one."""
    check_known(data, allowed, origin)


def profile_from_dict(data: dict[str, Any], origin: str) -> SystemProfile:
    """Validate parsed YAML into a ``SystemProfile``; errors name ``origin`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    _check_keys(data, {f.name for f in fields(SystemProfile)}, origin)
    for key in ("name", "cores", "engine"):
        if key not in data:
            raise ConfigError(f"{origin}: missing {key!r}")
    check_name(str(data["name"]), f"{origin}: name")  # the results tree's results/<name>/ folder
    cores = data["cores"]
    if not isinstance(cores, int) or cores < 1:
        raise ConfigError(f"{origin}: cores: expected an integer >= 1, got {cores!r}")
    engine_cfg = _engine_from_dict(data["engine"], f"{origin}: engine", cores)
    scenarios_data = data.get("scenarios") or {}
    if not isinstance(scenarios_data, dict):
        raise ConfigError(f"{origin}: scenarios: expected a mapping of scenario name -> engine settings")
    _check_keys(scenarios_data, set(SCENARIO_NAMES), f"{origin}: scenarios")
    scenarios = {name: _engine_from_dict(value, f"{origin}: scenarios.{name}", cores)
                 for name, value in scenarios_data.items()}
    for name, cfg in [("engine", engine_cfg), *((f"scenarios.{k}", v) for k, v in scenarios.items())]:
        if cfg.keep_awake != "off" and name != "scenarios.Server":
            raise ConfigError(f"{origin}: {name}: keep_awake is for the Server scenario only (measured: the loops "
                              "make SingleStream's 90th percentile 34-62 % worse, pm_qos gained nothing there, "
                              "and Offline never idles)")
        if cfg.issue_priority and name != "scenarios.Server":
            raise ConfigError(f"{origin}: {name}: issue_priority is for the Server scenario only (measured: "
                              "SingleStream's 90th percentile 1.12x benchmark_app's with it against 1.01x without, "
                              "MultiStream's 99th 1.22x against 0.99x)")
    for name in LATENCY_SCENARIOS:
        if name in scenarios and scenarios[name].instances > 1:
            raise ConfigError(f"{origin}: scenarios.{name}: instances must be 1 ({name} has one query in "
                              "flight at a time: give its one instance every core instead)")
    try:
        return SystemProfile(str(data["name"]), cores, engine_cfg, str(data.get("description", "")),
                             dict(data.get("system") or {}), scenarios, data.get("watchdog_s", 0.0))
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def available_profiles(config_dir: Path | None = None) -> list[str]:
    """Names of the profiles in ``config_dir`` (default: ``./configs`` and the shipped ones) plus ``host``."""
    dirs = [Path(config_dir)] if config_dir is not None else profile_dirs()
    return sorted({p.stem for d in dirs for p in d.glob("*.yaml")} | {HOST})


def load_profile(name_or_path: str, config_dir: Path | None = None,
                 check_fits: bool = True, host_tuning: bool = False) -> SystemProfile:
    """Load a profile by name (``<config_dir>/<name>.yaml``, default ``./configs`` then the shipped
    profiles; or ``host``) or by YAML path.

    With ``check_fits``, a profile that wants more cores than this machine has is refused.
    ``host_tuning`` (``--host-tuning``) gives ``host`` its derived host settings; a YAML profile
    has the host settings its own keys set, with or without it.
    """
    if name_or_path == HOST:
        profile = host_profile(host_tuning)
    else:
        path = Path(name_or_path)
        # Names contain dots (c6i.2xlarge), so only a .yaml/.yml ending or a slash means a path.
        if path.suffix not in (".yaml", ".yml") and "/" not in name_or_path:
            dirs = [Path(config_dir)] if config_dir is not None else profile_dirs()
            path = next((d / f"{name_or_path}.yaml" for d in dirs if (d / f"{name_or_path}.yaml").is_file()),
                        dirs[-1] / f"{name_or_path}.yaml")
        if not path.is_file():
            names = available_profiles(config_dir)
            raise ConfigError(f"system profile {name_or_path!r} not found{did_you_mean(name_or_path, names)}; "
                              f"known: {', '.join(names)}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: invalid YAML") from None
        profile = profile_from_dict(data, str(path))
    if check_fits:
        have = physical_cores()
        threads = max([profile.engine.total_threads] + [e.total_threads for e in profile.scenarios.values()])
        if threads > have:
            raise ConfigError(
                f"system profile {profile.name!r} uses {threads} threads but this "
                f"machine has {have} physical cores; use '--system host' or a profile that fits")
    return profile
