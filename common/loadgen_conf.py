"""The LoadGen conf format: checking user.conf before LoadGen reads it, editing it, and the
round's mlperf.conf that LoadGen carries inside itself.

LoadGen's own parser logs a bad line into the detail log and carries on; we
refuse it up front with the file and line, and warn about keys LoadGen would
silently ignore. Format: ``model.scenario.key = value`` with ``#`` comments.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from common.files import replace_text_with_backup
from common.suggest import did_you_mean

log = logging.getLogger(__name__)

SCENARIOS = ("*", "SingleStream", "MultiStream", "Server", "Offline")
# Keys LoadGen's TestSettings::FromConfig looks up (loadgen/test_settings_internal.cc).
KNOWN_KEYS = frozenset({
    "mode", "target_qps", "target_latency", "target_latency_percentile", "min_duration",
    "max_duration", "min_query_count", "max_query_count", "performance_sample_count_override",
    "accuracy_sample_count_override", "samples_per_query", "max_async_queries", "coalesce_queries",
    "performance_issue_unique", "performance_issue_same", "performance_issue_same_index",
    "sample_concatenate_permutation", "print_timestamps", "accuracy_log_rng_seed",
    "accuracy_log_probability", "accuracy_log_sampling_target", "use_token_latencies",
    "ttft_latency", "tpot_latency", "infer_token_latencies", "token_latency_scaling_factor",
    "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed", "test05",
    "test05_qsl_rng_seed", "test05_sample_index_rng_seed", "test05_schedule_rng_seed",
})
# Only the built-in mlperf.conf may set these; LoadGen ignores them in user.conf.
SEED_KEYS = frozenset(k for k in KNOWN_KEYS if k.endswith("_seed") and not k.startswith("accuracy_log"))
POSITIVE_KEYS = frozenset({"target_qps", "min_duration", "performance_sample_count_override"})
_BUILTIN_CONF_HEAD = b"# The format of this config file is 'key = value'."


@dataclass(frozen=True)
class ConfEntry:
    """One ``model.scenario.key = value`` line."""

    line: int
    model: str
    scenario: str
    key: str
    value: float


def _number(text: str) -> float | None:
    try:
        return float(int(text, 0))
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def parse_user_conf(path: Path) -> list[ConfEntry]:
    """Parse and validate ``path``; any malformed line is a ``ConfigError`` naming ``path:line``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: user.conf not found")
    entries: list[ConfEntry] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        if "=" not in line:
            raise ConfigError(f"{where}: expected 'model.scenario.key = value', got {raw.strip()!r}")
        lhs, rhs = (part.strip() for part in line.split("=", 1))
        parts = lhs.split(".")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"{where}: key {lhs!r} is not 'model.scenario.key'")
        model, scenario, key = parts
        if scenario not in SCENARIOS:
            raise ConfigError(f"{where}: unknown scenario {scenario!r}; expected one of {SCENARIOS}")
        if key not in KNOWN_KEYS:
            raise ConfigError(f"{where}: unknown LoadGen setting {key!r}{did_you_mean(key, KNOWN_KEYS)}")
        value = _number(rhs)
        if value is None or len(rhs.split()) != 1:
            raise ConfigError(f"{where}: {key} value {rhs!r} is not a number")
        if value < 0 or (key in POSITIVE_KEYS and value <= 0):
            raise ConfigError(f"{where}: {key} must be {'> 0' if key in POSITIVE_KEYS else '>= 0'}, got {rhs}")
        if key in SEED_KEYS:
            log.warning("%s: %s is ignored by LoadGen in user.conf (seeds come from its built-in mlperf.conf)",
                        where, key)
        entries.append(ConfEntry(lineno, model, scenario, key, value))
    return entries


def lookup(entries: list[ConfEntry], model: str, scenario: str, key: str) -> float | None:
    """The value LoadGen would use for ``key``: exact model/scenario beats wildcards, last line wins."""
    best: tuple[int, int] | None = None
    value = None
    for e in entries:
        if e.key != key or e.model not in (model, "*") or e.scenario not in (scenario, "*"):
            continue
        rank = ((e.model == model) * 2 + (e.scenario == scenario), e.line)
        if best is None or rank >= best:
            best, value = rank, e.value
    return value


def builtin_mlperf_conf() -> bytes:
    """The round's mlperf.conf as compiled into the installed LoadGen (a NUL-terminated string
    in its extension module); exactly one copy must be there."""
    import mlperf_loadgen

    origin = mlperf_loadgen.__file__
    blob = Path(origin).read_bytes()
    start = blob.find(_BUILTIN_CONF_HEAD)
    if start < 0:
        raise ConfigError(f"{origin}: LoadGen carries no built-in mlperf.conf")
    if blob.find(_BUILTIN_CONF_HEAD, start + 1) >= 0:
        raise ConfigError(f"{origin}: more than one mlperf.conf in the LoadGen binary")
    return blob[start:blob.index(b"\x00", start)]


def set_value(user_conf: Path, model: str, scenario: str, key: str, value: float, digits: int = 1) -> Path | None:
    """Set ``model.scenario.key = value`` in ``user_conf``, keeping every other line as it is.

    An existing line for exactly that key is replaced in place; otherwise the line is appended.
    Floats are written with ``digits`` decimals. The file is replaced atomically and a previous,
    different version is kept beside it (``user.conf.bak-<utc>``); returns that backup's path.
    """
    user_conf = Path(user_conf)
    line = f"{model}.{scenario}.{key} = {value:.{digits}f}" if isinstance(value, float) else \
        f"{model}.{scenario}.{key} = {value}"
    pattern = re.compile(rf"^\s*{re.escape(model)}\.{re.escape(scenario)}\.{re.escape(key)}\s*=.*$")
    lines = user_conf.read_text().splitlines() if user_conf.is_file() else []
    if any(pattern.match(old) for old in lines):
        lines = [line if pattern.match(old) else old for old in lines]
    else:
        lines.append(line)
    try:
        backup = replace_text_with_backup(user_conf, "\n".join(lines) + "\n")
    except OSError as exc:
        raise ConfigError(f"{user_conf}: cannot write ({exc.strerror})") from None
    if backup is not None:
        log.info("%s: %s.%s.%s = %s; the previous version is kept as %s", user_conf, model, scenario, key, value,
                 backup)
    return backup
