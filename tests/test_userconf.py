"""user.conf validation: every bad line is refused with file:line before LoadGen sees it."""

from pathlib import Path

import pytest

from common.errors import ConfigError
from common.loadgen_conf import lookup, parse_user_conf

REPO = Path(__file__).resolve().parent.parent


def _conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.conf"
    path.write_text(text)
    return path


def test_project_user_conf_is_valid() -> None:
    entries = parse_user_conf(REPO / "user.conf")
    assert lookup(entries, "resnet50", "Offline", "target_qps") > 0


def test_lookup_precedence(tmp_path: Path) -> None:
    entries = parse_user_conf(_conf(tmp_path, "*.*.min_duration = 1000\nresnet50.*.min_duration = 2000 # c\n"
                                              "*.Offline.min_duration = 3000\n"))
    assert lookup(entries, "resnet50", "Offline", "min_duration") == 2000
    assert lookup(entries, "bert", "Offline", "min_duration") == 3000
    assert lookup(entries, "bert", "Server", "min_duration") == 1000


@pytest.mark.parametrize("text, message", [
    ("resnet50.Offline.target_qps = fast\n", ":1: target_qps value 'fast' is not a number"),
    ("# ok\nresnet50.Offline.target_qps = -5\n", ":2: target_qps must be > 0"),
    ("resnet50.Offline.target_qps = 0\n", ":1: target_qps must be > 0"),
    ("resnet50.Offline.target_qsp = 10\n", "unknown LoadGen setting 'target_qsp' (did you mean 'target_qps'?)"),
    ("resnet50.Ofline.target_qps = 10\n", ":1: unknown scenario 'Ofline'"),
    ("resnet50.target_qps = 10\n", ":1: key 'resnet50.target_qps' is not 'model.scenario.key'"),
    ("resnet50.Offline.target_qps 10\n", ":1: expected 'model.scenario.key = value'"),
    ("resnet50.Offline.target_qps = 10 20\n", ":1: target_qps value '10 20' is not a number"),
])
def test_bad_lines(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_user_conf(_conf(tmp_path, text))
    assert message in str(err.value) and "user.conf" in str(err.value)


def test_seed_in_user_conf_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    parse_user_conf(_conf(tmp_path, "*.*.qsl_rng_seed = 1\n"))
    assert "ignored by LoadGen" in caplog.text
