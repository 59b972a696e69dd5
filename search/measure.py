"""INT8 throughput of a model on this host, through the project's own path, cached.

A model (a registered architecture name such as ``timm/fbnetv3_b.ra2_in1k`` or ``resnet50``,
or an ONNX file) is exported with UNTRAINED weights (speed only), quantized by NNCF on a few
demo calibration images, compiled with the system profile's Offline engine settings and kept
busy as a pool (``harness.tune.measuring_pool``, no LoadGen). Several models are measured in
interleaved rounds (A B C, A B C, ...) so that a change in the machine's load hits all of
them; the figure is the median of the rounds. Results are cached in
``<work>/zoo/speed_cache.json`` under a key of CPU model + engine settings + OpenVINO
version: another CPU, profile or OpenVINO measures again.

    from search.measure import measure_int8
    measure_int8("timm/fbnetv3_b", system="host", rounds=3, seconds=5)  # -> samples/s
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from common.files import sha256_file, write_text_atomic
from harness.profile import load_profile
from pipeline.flows import Workspace, demo_calibration, prepare_model
from sut.config import EngineConfig, SystemProfile

log = logging.getLogger(__name__)

UNTRAINED_NOTE = ("weights are UNTRAINED (seeded init): the speeds are real, accuracy is the published "
                  "FP32 figure of the trained weights")
CALIBRATION_IMAGES = 8  # enough for NNCF to place quantizers; the speed does not depend on the values


@dataclass(frozen=True)
class SpeedRecord:
    """One model's INT8 samples/s on this host: every round and their median."""

    model: str
    samples_per_s: float
    rounds: tuple[float, ...]
    seconds: float
    measured_at: str
    weights: str = "untrained (speed only)"
    reference: str = ""  # the model measured in the same interleaved rounds to compare with
    reference_samples_per_s: float = 0.0  # its median in those rounds

    @classmethod
    def from_rounds(cls, model: str, rounds: Sequence[float], seconds: float, reference: str = "",
                    reference_rounds: Sequence[float] = ()) -> "SpeedRecord":
        """The record of ``rounds`` measured now (median of the rounds), with the reference's median."""
        return cls(model, round(statistics.median(rounds), 2), tuple(round(r, 2) for r in rounds), seconds,
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), reference=reference,
                   reference_samples_per_s=round(statistics.median(reference_rounds), 2) if reference_rounds else 0.0)

    @property
    def speedup(self) -> float:
        """samples/s over the reference's in the same rounds (0.0 without a reference)."""
        return self.samples_per_s / self.reference_samples_per_s if self.reference_samples_per_s else 0.0


def host_key(engine: EngineConfig) -> str:
    """What a speed depends on besides the model: CPU model (as OpenVINO names it), engine
    settings, OpenVINO version. The one host identity of every speed cache (this module's and
    the search's, ``search.predict_speed``)."""
    import openvino as ov

    cpu = ov.Core().get_property("CPU", "FULL_DEVICE_NAME")
    return f"{cpu} | engine {json.dumps(asdict(engine), sort_keys=True)} | OpenVINO {ov.get_version()}"


def host_file_tag(key: str) -> str:
    """A file-name-safe tag for host key ``key``: the CPU name's first words and a hash of the
    whole key (engine settings and versions make it too long for a name)."""
    cpu = re.sub(r"[^A-Za-z0-9]+", "-", key.split(" | ")[0]).strip("-")[:40]
    return f"{cpu}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def model_key(model: str | Path) -> str:
    """The cache key of a model: its registered name, or ``onnx:<sha256 prefix>`` of a file."""
    path = Path(model)
    if path.suffix in (".onnx", ".xml") and path.is_file():
        return f"{path.suffix[1:]}:{sha256_file(path)[:16]}"
    return str(model)


class SpeedCache:
    """``<work>/zoo/speed_cache.json``: {host key: {model key: SpeedRecord}}, written atomically."""

    def __init__(self, path: Path, host: str) -> None:
        self.path, self.host = Path(path), host
        self._data: dict[str, dict[str, dict]] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def get(self, key: str, rounds: int = 1) -> SpeedRecord | None:
        """The cached record of ``key`` on this host if it has at least ``rounds`` rounds."""
        data = self._data.get(self.host, {}).get(key)
        if data is None or len(data["rounds"]) < rounds:
            return None
        return SpeedRecord(**{**data, "rounds": tuple(data["rounds"])})

    def put(self, key: str, record: SpeedRecord) -> None:
        """Store ``record`` for this host and write the file."""
        self._data.setdefault(self.host, {})[key] = asdict(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self._data, indent=1, sort_keys=True) + "\n")


def cache_path(work: Path) -> Path:
    """Where the speed cache of a work directory lives."""
    return Path(work) / "zoo" / "speed_cache.json"


def prepare_int8(model: str | Path, workspace: Workspace, calib_images: int = CALIBRATION_IMAGES) -> Path:
    """Export (if a name) and prepare ``model`` as INT8 on ``calib_images`` demo images."""
    return prepare_model(str(model), "int8", workspace, demo_calibration(workspace, calib_images))


def measure_interleaved(model_dirs: dict[str, Path], profile: SystemProfile, rounds: int, seconds: float,
                        progress: bool = True) -> dict[str, list[float]]:
    """Samples/s of every prepared model, ``rounds`` interleaved rounds of ``seconds`` each.

    Each model is compiled once (in the first round) and its pool kept for the later rounds,
    so a round costs its measuring time only."""
    import openvino as ov
    from tqdm import tqdm

    from harness.tune import measuring_pool
    from modelprep.card import load_card

    core, cfg = ov.Core(), profile.engine
    pools = {}
    out: dict[str, list[float]] = {key: [] for key in model_dirs}
    try:
        with tqdm(total=rounds * len(model_dirs), desc="measure INT8", unit="run",
                  disable=not progress or not model_dirs) as bar:
            for _ in range(rounds):
                for key, model_dir in model_dirs.items():
                    bar.set_postfix_str(key)
                    if key not in pools:
                        pools[key] = measuring_pool(core, model_dir, load_card(model_dir), cfg)
                    out[key].append(pools[key].warmup(2 * cfg.infer_requests, seconds))
                    bar.update()
    finally:
        for pool in pools.values():  # an unclosed pool keeps its compiled model and bank alive
            pool.close()
    return out


def measure_many(models: Sequence[str | Path], system: str = "host", rounds: int = 3, seconds: float = 5.0,
                 work: Path = Path("work"), use_cache: bool = True, progress: bool = True,
                 demo_data: Path | None = None, reference: str | Path | None = None) -> dict[str, SpeedRecord]:
    """INT8 samples/s of each model (keyed by ``model_key``): cached ones are read, the others
    prepared (calibration images from ``demo_data``, default ``<work>/demo``, built on first
    use) and measured in ``rounds`` interleaved rounds together, then cached.

    ``reference`` (one of ``models``, e.g. ``resnet50``) is measured again whenever anything
    else is, and every record measured with it carries its median from the same rounds, so a
    speed-up is never a ratio of two different runs."""
    from tqdm import tqdm

    profile = load_profile(system)
    cache = SpeedCache(cache_path(work), host_key(profile.engine))
    workspace = Workspace(work=Path(work), demo_data=demo_data or Path(work) / "demo")
    keys = {model_key(m): m for m in models}
    reference = model_key(reference) if reference is not None else None
    found = {k: r for k in keys if use_cache and (r := cache.get(k, rounds)) is not None
             and (reference is None or k == reference or r.reference == reference)}
    todo = [k for k in keys if k not in found]
    if reference is not None and todo and reference not in todo:
        todo.append(reference)
        found.pop(reference)
    dirs = {k: prepare_int8(keys[k], workspace) for k in tqdm(todo, desc="prepare INT8", unit="model",
                                                               disable=not progress or not todo)}
    speeds_of = measure_interleaved(dirs, profile, rounds, seconds, progress)
    for key, speeds in speeds_of.items():
        ref_rounds = speeds_of.get(reference, []) if reference is not None and key != reference else []
        found[key] = SpeedRecord.from_rounds(key, speeds, seconds, reference if ref_rounds else "", ref_rounds)
        cache.put(key, found[key])
        log.info("%s: INT8 %.1f samples/s (rounds %s; untrained weights, speed only)", key,
                 found[key].samples_per_s, ", ".join(f"{s:.1f}" for s in speeds))
    return {k: found[k] for k in keys}


def failure_line(exc: BaseException) -> str:
    """One line for a model that could not be exported or measured: the error's type and first line."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def measure_each(models: Sequence[str | Path], system: str, rounds: int, seconds: float, work: Path,
                 use_cache: bool, reference: str | Path) -> tuple[dict[str, SpeedRecord], dict[str, str]]:
    """``measure_many`` with ``reference`` that survives a model failing: on an error the models are
    measured one at a time (each with the reference) and each failure is returned as one line
    (timm architectures are foreign code: one that cannot be exported must not stop the others)."""
    try:
        return measure_many([*models, reference], system, rounds, seconds, work, use_cache, reference=reference), {}
    except Exception:  # noqa: BLE001 - find which model failed by measuring them one at a time
        if len(models) <= 1:
            raise
    records: dict[str, SpeedRecord] = {}
    failed: dict[str, str] = {}
    for name in models:
        try:
            records.update(measure_many([name, reference], system, rounds, seconds, work, use_cache,
                                        reference=reference))
        except Exception as exc:  # noqa: BLE001 - the caller reports the reason
            failed[str(name)] = failure_line(exc)
    if model_key(reference) not in records:
        records.update(measure_many([reference], system, rounds, seconds, work, use_cache))
    return records, failed


def measure_int8(model: str | Path, system: str = "host", rounds: int = 3, seconds: float = 5.0,
                 work: Path = Path("work"), use_cache: bool = True) -> float:
    """INT8 samples/s (median of ``rounds`` pool runs of ``seconds``) of ``model`` on this host
    under ``system``'s Offline engine settings; cached per CPU, engine settings and OpenVINO.

    ``model``: a registered architecture name (``resnet50``, ``timm/fbnetv3_b``) or an ONNX
    file. Weights are untrained: the figure is a speed only.
    """
    return measure_many([model], system, rounds, seconds, work, use_cache)[model_key(model)].samples_per_s
