"""tune (real pool measurements on a tiny model) and the report's table arithmetic."""

import re
from pathlib import Path

import pytest
import yaml
from conftest import prepare_model, run_cli

from modelprep.card import ModelCard
from harness.profile import load_profile
from pipeline.report import Row, format_markdown
from common.loadgen_conf import lookup, parse_user_conf, set_value
from harness.tune import TARGET_QPS_MARGIN, grid


def test_grid_uses_every_core() -> None:
    points = grid(4, (8, 16), (1, 2))
    assert {p.num_streams for p in points} == {1, 2, 4} and all(p.num_threads == 4 for p in points)
    assert len(points) == 3 * 2 * 2


def test_set_value_keeps_other_lines(tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_text("# note\nresnet50.Offline.target_qps = 1\n*.*.min_duration = 600000\n")
    set_value(conf, "resnet50", "Offline", "target_qps", 1234.56)
    assert conf.read_text() == "# note\nresnet50.Offline.target_qps = 1234.6\n*.*.min_duration = 600000\n"


def test_tune_writes_profile_and_target(tiny_onnx: Path, tmp_path: Path) -> None:
    model = prepare_model(tiny_onnx, "f32", tmp_path / "m", tmp_path / "c")
    conf = tmp_path / "user.conf"
    conf.write_text("resnet50.Offline.target_qps = 1\n")
    proc = run_cli(["tune", "--model", str(model), "--seconds", "0.3", "--batches", "4,8",
                    "--requests-per-stream", "2", "--user-conf", str(conf), "--profile-out",
                    str(tmp_path / "tuned.yaml"), "--name", "tuned"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    profile = load_profile(str(tmp_path / "tuned.yaml"))
    assert profile.name == "tuned" and profile.engine.batch_size in (4, 8)
    best = float(proc.stdout.split("best: ")[1].split()[0])
    assert abs(lookup(parse_user_conf(conf), "resnet50", "Offline", "target_qps") - TARGET_QPS_MARGIN * best) < 0.2
    # the summary says how long an official run at that target lasts and how much faster it may be
    assert re.search(r"an official Offline run lasts ~69[23] s \(11\.[56] min\) at this rate, VALID unless the real "
                     r"run is over 1\.155x as fast", proc.stdout), proc.stdout[-400:]
    assert "samples/s measured" in (tmp_path / "tuned.yaml").read_text().splitlines()[0]
    assert yaml.safe_load((tmp_path / "tuned.yaml").read_text())["engine"]["infer_requests"] >= 2


def _card(name: str, precision: str, macs: int) -> ModelCard:
    return ModelCard(name=name, input_size=224, num_classes=1000, mean=(0.0,) * 3, std=(1.0,) * 3,
                     precision=precision, inference_precision="bf16" if precision == "bf16" else "f32",
                     trained=False, macs=macs)


def test_report_ratios() -> None:
    rows = [Row("resnet50 f32", Path("a"), _card("resnet50.untrained", "f32", 4_090_000_000), [40.0, 38.0, 39.0]),
            Row("resnet50 int8", Path("b"), _card("resnet50.untrained", "int8", 4_090_000_000), [390.0]),
            Row("decinet_s int8", Path("c"), _card("decinet_s.untrained", "int8", 1_100_000_000), [1170.0])]
    table = format_markdown(rows, cores=2, rounds=3, duration_ms=20000, system="host")
    assert "| resnet50 f32 | f32 | untrained | 4.09 | 39.0 | 19.5 | 1.00x | 0.10x |" in table
    assert "| decinet_s int8 | int8 (rest f32) | untrained | 1.10 | 1170.0 | 585.0 | 30.00x | 3.00x |" in table
    assert "untrained" in table.splitlines()[1]


USER_CONF = (
    "# Our LoadGen settings.\n"
    "#   resnet50.Offline.target_qps = 5   (a commented-out line stays as it is)\n"
    "*.*.min_duration = 600000\n"
    "\n"
    "*.Offline.performance_sample_count_override = 1024\n"
    "resnet50.Server.target_qps = 321.5\n"
    "resnet50.SingleStream.target_latency = 10\n"
    "   resnet50.Offline.target_qps   =  777 \n"
    "resnet50.Offline.min_query_count = 100  # keep\n"
    "\n"
)


@pytest.fixture(scope="module")
def tiny_prepared(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tune")
    return prepare_model(tiny_onnx, "f32", tmp / "m", tmp / "c")


def _tune(model: Path, conf: Path, tmp_path: Path, margin: str):
    proc = run_cli(["tune", "--model", str(model), "--seconds", "0.3", "--batches", "4",
                    "--requests-per-stream", "2", "--margin", margin, "--user-conf", str(conf),
                    "--profile-out", str(tmp_path / "tuned.yaml")], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = float(proc.stdout.split("best: ")[1].split()[0])
    target = proc.stdout.split("resnet50.Offline.target_qps = ")[1].split()[0]
    assert re.fullmatch(r"\d+\.\d", target), target  # one decimal
    # best is printed rounded to 0.1, so best x margin is known to within margin x 0.05 (+ 0.05 rounding).
    assert abs(float(target) - best * float(margin)) <= float(margin) * 0.05 + 0.05 + 1e-9
    return target


def test_tune_changes_only_the_offline_target_line(tiny_prepared: Path, tmp_path: Path) -> None:
    conf = tmp_path / "user.conf"
    conf.write_bytes(USER_CONF.encode())
    target = _tune(tiny_prepared, conf, tmp_path, "1.3")
    before, after = USER_CONF.splitlines(keepends=True), conf.read_text().splitlines(keepends=True)
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == [before.index("   resnet50.Offline.target_qps   =  777 \n")]
    assert after[changed[0]] == f"resnet50.Offline.target_qps = {target}\n"
    assert lookup(parse_user_conf(conf), "resnet50", "Offline", "target_qps") == float(target)
    assert lookup(parse_user_conf(conf), "resnet50", "Server", "target_qps") == 321.5


def test_tune_appends_the_target_when_absent(tiny_prepared: Path, tmp_path: Path) -> None:
    original = "".join(line for line in USER_CONF.splitlines(keepends=True) if "=  777" not in line)
    conf = tmp_path / "user.conf"
    conf.write_bytes(original.encode())
    target = _tune(tiny_prepared, conf, tmp_path, "1.1")
    text = conf.read_text()
    assert text == original + f"resnet50.Offline.target_qps = {target}\n"
