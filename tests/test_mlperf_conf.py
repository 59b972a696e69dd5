"""The top-level mlperf.conf must be byte-identical to the one built into the pinned LoadGen."""

from pathlib import Path

from common.loadgen_conf import builtin_mlperf_conf

REPO = Path(__file__).resolve().parent.parent


def test_mlperf_conf_matches_loadgen() -> None:
    assert (REPO / "mlperf.conf").read_bytes() == builtin_mlperf_conf()


def test_builtin_conf_has_resnet50_rules() -> None:
    conf = builtin_mlperf_conf().decode()
    assert "resnet50.*.performance_sample_count_override = 1024" in conf
    assert "*.Offline.min_duration = 600000" in conf
