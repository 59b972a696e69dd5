"""The top-level mlperf.conf must be byte-identical to the one built into the pinned LoadGen."""

from pathlib import Path

import mlperf_loadgen

REPO = Path(__file__).resolve().parent.parent
_HEAD = b"# The format of this config file is 'key = value'."


def builtin_mlperf_conf() -> bytes:
    """Extract the rules file LoadGen compiled into its extension module (a NUL-terminated string)."""
    blob = Path(mlperf_loadgen.__file__).read_bytes()
    start = blob.find(_HEAD)
    assert start >= 0, "LoadGen binary carries no mlperf.conf"
    assert blob.find(_HEAD, start + 1) < 0, "more than one mlperf.conf in the LoadGen binary"
    return blob[start:blob.index(b"\x00", start)]


def test_mlperf_conf_matches_loadgen() -> None:
    assert (REPO / "mlperf.conf").read_bytes() == builtin_mlperf_conf()


def test_builtin_conf_has_resnet50_rules() -> None:
    conf = builtin_mlperf_conf().decode()
    assert "resnet50.*.performance_sample_count_override = 1024" in conf
    assert "*.Offline.min_duration = 600000" in conf
