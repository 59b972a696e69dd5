"""System profiles: the inference-pool settings (and system facts) for one machine type.

A profile is a YAML file in ``configs/`` (``c6i.2xlarge.yaml``, ...), or
``host``, which is derived from the running machine. It is validated once,
here, into frozen dataclasses that the rest of the harness takes as given.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from sut.errors import ConfigError

log = logging.getLogger(__name__)

HOST = "host"
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class EngineConfig:
    """OpenVINO inference-pool settings, named after the properties they set.

    ``num_threads`` is the total across streams (``INFERENCE_NUM_THREADS``). The
    execution precision is not here: it belongs to the served model (its card).
    """

    num_streams: int
    num_threads: int
    infer_requests: int
    batch_size: int
    pinning: bool = True

    def __post_init__(self) -> None:
        for name in ("num_streams", "num_threads", "infer_requests", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"engine.{name}: expected an integer >= 1, got {value!r}")
        if self.infer_requests < self.num_streams:
            raise ConfigError(
                f"engine.infer_requests ({self.infer_requests}) must be >= engine.num_streams "
                f"({self.num_streams}), or streams sit idle")
        if self.num_threads < self.num_streams:
            raise ConfigError(
                f"engine.num_threads ({self.num_threads}) must be >= engine.num_streams ({self.num_streams})")
        if not isinstance(self.pinning, bool):
            raise ConfigError(f"engine.pinning: expected true or false, got {self.pinning!r}")
        if self.infer_requests < 2 * self.num_streams:
            # Measured: with one request per stream the batch refill runs in series with
            # inference and the harness reaches ~0.965x benchmark_app instead of ~1.00x.
            log.warning("engine.infer_requests (%d) < 2 x num_streams (%d): each stream idles while its "
                        "batch is answered and refilled", self.infer_requests, self.num_streams)


@dataclass(frozen=True)
class SystemProfile:
    """One machine type: how many cores it has, how to drive them, and its description."""

    name: str
    cores: int
    engine: EngineConfig
    description: str = ""
    system: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for result JSON and reports."""
        return asdict(self)


def physical_cores() -> int:
    """Physical cores available to this process (affinity-aware)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or 0
    except ImportError:  # psutil is a declared dependency; this only guards odd installs
        cores = 0
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores or allowed, allowed))


def host_profile() -> SystemProfile:
    """Profile derived from the running machine: one single-thread stream per core,
    two requests per stream so batch gathering overlaps inference, batch 16."""
    cores = physical_cores()
    engine = EngineConfig(num_streams=cores, num_threads=cores, infer_requests=2 * cores,
                          batch_size=16, pinning=True)
    return SystemProfile(HOST, cores, engine, description="derived from this machine")


def _check_keys(data: dict[str, Any], allowed: set[str], origin: str) -> None:
    """Refuse unknown keys, suggesting the closest known one."""
    for key in data:
        if key not in allowed:
            near = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"{origin}: unknown key {key!r}{hint}")


def profile_from_dict(data: dict[str, Any], origin: str) -> SystemProfile:
    """Validate parsed YAML into a ``SystemProfile``; errors name ``origin`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    _check_keys(data, {f.name for f in fields(SystemProfile)}, origin)
    engine = data.get("engine")
    if not isinstance(engine, dict):
        raise ConfigError(f"{origin}: missing 'engine' mapping")
    if "inference_precision" in engine:
        raise ConfigError(f"{origin}: engine.inference_precision is a property of the model now: "
                          "remove it and use 'prepare --precision f32|bf16|int8 [--int8-rest f32|bf16]'")
    _check_keys(engine, {f.name for f in fields(EngineConfig)}, f"{origin}: engine")
    try:
        engine_cfg = EngineConfig(**engine)
    except TypeError as exc:
        raise ConfigError(f"{origin}: engine: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    for key in ("name", "cores"):
        if key not in data:
            raise ConfigError(f"{origin}: missing {key!r}")
    cores = data["cores"]
    if not isinstance(cores, int) or cores < 1:
        raise ConfigError(f"{origin}: cores: expected an integer >= 1, got {cores!r}")
    if engine_cfg.num_threads > cores:
        raise ConfigError(
            f"{origin}: engine.num_threads ({engine_cfg.num_threads}) exceeds cores ({cores})")
    return SystemProfile(str(data["name"]), cores, engine_cfg,
                         str(data.get("description", "")), dict(data.get("system") or {}))


def available_profiles(config_dir: Path = DEFAULT_CONFIG_DIR) -> list[str]:
    """Names of the profiles in ``config_dir`` plus ``host``."""
    return sorted([p.stem for p in Path(config_dir).glob("*.yaml")] + [HOST])


def load_profile(name_or_path: str, config_dir: Path = DEFAULT_CONFIG_DIR,
                 check_fits: bool = True) -> SystemProfile:
    """Load a profile by name (``configs/<name>.yaml`` or ``host``) or by YAML path.

    With ``check_fits``, a profile that wants more cores than this machine has is refused.
    """
    if name_or_path == HOST:
        profile = host_profile()
    else:
        path = Path(name_or_path)
        # Names contain dots (c6i.2xlarge), so only a .yaml/.yml ending or a slash means a path.
        if path.suffix not in (".yaml", ".yml") and "/" not in name_or_path:
            path = Path(config_dir) / f"{name_or_path}.yaml"
        if not path.is_file():
            names = available_profiles(config_dir)
            near = difflib.get_close_matches(name_or_path, names, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(
                f"system profile {name_or_path!r} not found{hint}; known: {', '.join(names)}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: invalid YAML") from None
        profile = profile_from_dict(data, str(path))
    if check_fits:
        have = physical_cores()
        if profile.engine.num_threads > have:
            raise ConfigError(
                f"system profile {profile.name!r} uses {profile.engine.num_threads} threads but this "
                f"machine has {have} physical cores; use '--system host' or a profile that fits")
    return profile
