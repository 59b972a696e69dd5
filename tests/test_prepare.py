"""Model preparation on real ONNX files: conventions, the served graph, INT8, refusals."""

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from conftest import TINY_META, prepare_model
from onnx_builders import make_classifier

from dataset.constants import MLPERF_RESNET50_MEAN, TORCHVISION_MEAN, TORCHVISION_STD
from modelprep.card import load_card
from common.errors import DatasetError, ModelError

RNG = np.random.default_rng(0)


def _float_scores(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """Scores of the untouched source model on float input (the reference we must match)."""
    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outs = compiled(x)
    return next(v for v in outs.values() if v.dtype == np.float32 and v.ndim == 2)


def _served_top1(model_dir: Path, images: np.ndarray) -> np.ndarray:
    compiled = ov.Core().compile_model(str(model_dir / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(images)[0].reshape(-1)


def test_metadata_convention_and_exact_top1(tiny_onnx: Path, tmp_path: Path) -> None:
    model_dir = prepare_model(tiny_onnx, "f32", tmp_path / "m", tmp_path / "c")
    card = load_card(model_dir)
    assert (card.name, card.convention, card.num_classes, card.label_offset) == ("tiny.test", "metadata", 10, 0)
    assert card.precision == "f32" and card.input_size == 32 and card.mean == (127.5,) * 3
    model = ov.Core().read_model(model_dir / "model.xml")
    assert model.inputs[0].get_element_type() == ov.Type.u8
    assert model.outputs[0].get_element_type() == ov.Type.i32
    images = RNG.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)
    expect = _float_scores(tiny_onnx, (images.astype(np.float32) - 127.5) / 64.0).argmax(1)
    np.testing.assert_array_equal(_served_top1(model_dir, images), expect)


def test_mlcommons_1001_class_convention(tmp_path: Path) -> None:
    src = make_classifier(tmp_path / "resnet50_v1.onnx", input_size=224, num_classes=1001,
                          extra_argmax=True, input_name="input_tensor:0")
    model_dir = prepare_model(src, "f32", tmp_path / "m", tmp_path / "c")
    card = load_card(model_dir)
    assert card.convention == "mlcommons-1001" and card.label_offset == -1 and card.num_classes == 1000
    assert card.mean == MLPERF_RESNET50_MEAN and card.std == (1.0, 1.0, 1.0)
    images = RNG.integers(0, 256, (4, 3, 224, 224), dtype=np.uint8)
    expect = _float_scores(src, images.astype(np.float32) - np.float32(MLPERF_RESNET50_MEAN).reshape(1, 3, 1, 1))
    np.testing.assert_array_equal(_served_top1(model_dir, images), expect.argmax(1) - 1)


def test_torchvision_1000_class_convention_nhwc(tmp_path: Path) -> None:
    src = make_classifier(tmp_path / "tv.onnx", input_size=64, num_classes=1000)
    model_dir = prepare_model(src, "f32", tmp_path / "m", tmp_path / "c", layout="NHWC")
    card = load_card(model_dir)
    assert card.convention == "torchvision-1000" and card.label_offset == 0 and card.layout == "NHWC"
    images = RNG.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    x = (images.astype(np.float32) - np.float32(TORCHVISION_MEAN)) / np.float32(TORCHVISION_STD)
    expect = _float_scores(src, np.ascontiguousarray(x.transpose(0, 3, 1, 2))).argmax(1)
    np.testing.assert_array_equal(_served_top1(model_dir, images), expect)


def test_int8_quantizes_and_is_cached(demo_data: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    model_dir = prepare_model(tiny_onnx, "int8", tmp_path / "m", tmp_path / "c", demo_data)
    card = load_card(model_dir)
    assert card.precision == "int8" and card.calibration["images"] == 300
    ops = {op.get_type_name() for op in ov.Core().read_model(model_dir / "model.xml").get_ops()}
    assert "FakeQuantize" in ops
    mtime = (model_dir / "model.xml").stat().st_mtime_ns
    assert prepare_model(tiny_onnx, "int8", tmp_path / "m", tmp_path / "c", demo_data) == model_dir
    assert (model_dir / "model.xml").stat().st_mtime_ns == mtime



def test_full_bias_correction_from_the_command_line(demo_data: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    """--bias-correction full reaches NNCF and the card, and is not served from the fast run's cache."""
    from conftest import run_cli

    dirs = {}
    for mode in ("fast", "full"):
        proc = run_cli(["prepare", "--model", str(tiny_onnx), "--precision", "int8", "--out", str(tmp_path / "m"),
                        "--cache-dir", str(tmp_path / "c"), "--calib-dir", str(demo_data / "train"),
                        "--calib-list", str(demo_data / "cal_list.txt"), "--calib-subset", "16",
                        "--bias-correction", mode], cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (dirs[mode],) = [d for d in (tmp_path / "m").iterdir() if d.is_dir() and d not in dirs.values()]
        assert load_card(dirs[mode]).calibration["bias_correction"] == mode
    assert dirs["fast"] != dirs["full"]

def test_calibration_list_naming_absent_files(demo_data: Path, tiny_onnx: Path, tmp_path: Path) -> None:
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    lst = tmp_path / "cal.txt"
    names = (demo_data / "cal_list.txt").read_text().split()[:3]
    lst.write_text("\n".join(names + ["ILSVRC2012_val_00000001.JPEG"]) + "\n")
    req = PrepareRequest(tiny_onnx, "int8", tmp_path / "m", tmp_path / "c", "NCHW",
                         CalibrationConfig(demo_data / "train", lst))
    with pytest.raises(DatasetError, match="ILSVRC2012_val_00000001.JPEG: calibration image"):
        prepare(req)
    assert not list((tmp_path / "m").glob("*")) if (tmp_path / "m").exists() else True


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 2}, "not an image classifier: input rank 2"),
    ({"num_classes": 7}, "7-class model without 'mlperf_cpu.card' metadata"),
    ({"metadata": {**TINY_META, "input_size": 64}}, "metadata input_size 64 but the input is 32x32"),
    ({"metadata": {**TINY_META, "crop_pcnt": 0.9}},
     "mlperf_cpu.card metadata: unknown field 'crop_pcnt' (did you mean 'crop_pct'?)"),
])
def test_refused_models(tmp_path: Path, kwargs: dict, message: str) -> None:
    src = make_classifier(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelError) as err:
        prepare_model(src, "f32", tmp_path / "m", tmp_path / "c")
    assert message in str(err.value) and "bad.onnx" in str(err.value)
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())


def test_a_card_json_field_typo_is_refused_with_the_closest_field(tiny_onnx: Path, tmp_path: Path) -> None:
    import json

    from common.errors import ConfigError

    model_dir = prepare_model(tiny_onnx, "f32", tmp_path / "m", tmp_path / "c")
    card = json.loads((model_dir / "card.json").read_text())
    card["label_ofset"] = card.pop("label_offset")
    (model_dir / "card.json").write_text(json.dumps(card))
    typo = r"card.json: unknown card field 'label_ofset' \(did you mean 'label_offset'\?\)"
    with pytest.raises(ConfigError, match=typo):
        load_card(model_dir)


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nothing.onnx: model file not found"):
        prepare_model(tmp_path / "nothing.onnx", "f32", tmp_path / "m", tmp_path / "c")
    (tmp_path / "weights.pt").write_bytes(b"x")
    with pytest.raises(ModelError, match="expected an .onnx file or an OpenVINO .xml IR"):
        prepare_model(tmp_path / "weights.pt", "f32", tmp_path / "m", tmp_path / "c")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="junk.onnx: cannot read model"):
        prepare_model(tmp_path / "junk.onnx", "f32", tmp_path / "m", tmp_path / "c")


def test_bf16_and_int8_rest_are_recorded(tiny_onnx: Path, demo_data: Path, tmp_path: Path) -> None:
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    bf16 = load_card(prepare(PrepareRequest(tiny_onnx, "bf16", tmp_path / "m", tmp_path / "c")))
    assert (bf16.precision, bf16.inference_precision) == ("bf16", "bf16")
    calib = CalibrationConfig(demo_data / "train", demo_data / "cal_list.txt", subset_size=50)
    int8 = load_card(prepare(PrepareRequest(tiny_onnx, "int8", tmp_path / "m", tmp_path / "c",
                                            calibration=calib, int8_rest="bf16")))
    assert (int8.precision, int8.inference_precision) == ("int8", "bf16")
    assert int8.calibration["subset_size"] == 50


def test_accuracy_check_is_stored_in_card(demo_data: Path, tmp_path: Path) -> None:
    from conftest import DEMO_ONNX

    from modelprep.agreement import CheckSet
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    req = PrepareRequest(DEMO_ONNX, "int8", tmp_path / "m", tmp_path / "c",
                         calibration=CalibrationConfig(demo_data / "train", demo_data / "cal_list.txt"),
                         check=CheckSet(demo_data / "val", demo_data / "val" / "val_map.txt", 200))
    check = load_card(prepare(req)).accuracy_check
    assert check["samples"] == 200
    assert check["fp32_top1_percent"] >= 95 and check["agreement_percent"] >= 97
    assert abs(check["fp32_top1_percent"] - check["int8_top1_percent"]) <= 1.5


def test_builtin_architecture_name_exports_untrained(tmp_path: Path) -> None:
    from modelprep.source import resolve_source

    src = resolve_source("decinet_demo", tmp_path / "sources")
    card = load_card(prepare_model(src, "f32", tmp_path / "m", tmp_path / "c"))
    assert card.name == "decinet_demo.untrained" and card.trained is False
    assert card.input_size == 32 and card.num_classes == 10 and card.convention == "metadata"
    assert resolve_source("decinet_demo", tmp_path / "sources") == src  # cached export
    with pytest.raises(Exception, match="no such file or built-in architecture"):
        resolve_source("resnet5", tmp_path / "sources")


# ----------------------------------------------------------------------------- bring your own model
BYOM_META = {"input_size": 32, "mean": [127.5] * 3, "std": [64.0] * 3, "num_classes": 10}


def _prepare_cli(tmp_path: Path, src: Path, *extra: str):
    from conftest import run_cli

    return run_cli(["prepare", "--model", str(src), "--precision", "f32", "--out", str(tmp_path / "m"),
                    "--cache-dir", str(tmp_path / "c"), *extra], cwd=tmp_path, timeout=120)


def _stderr_line(proc, prefix: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def test_metadata_without_name_defaults_to_file_stem(tmp_path: Path) -> None:
    src = make_classifier(tmp_path / "my_classifier.v2.onnx", metadata=BYOM_META)
    card = load_card(prepare_model(src, "f32", tmp_path / "m", tmp_path / "c"))
    assert card.name == "my_classifier.v2" and card.convention == "metadata"
    assert (card.mean, card.std, card.num_classes) == ((127.5,) * 3, (64.0,) * 3, 10)


@pytest.mark.parametrize("where", ["metadata", "command line"])
def test_mean_std_in_unit_range_refused(tmp_path: Path, where: str) -> None:
    from common.errors import ConfigError

    unit = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    meta = {**BYOM_META, **unit} if where == "metadata" else BYOM_META
    src = make_classifier(tmp_path / "unit.onnx", metadata=meta)
    extra = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"] if where == "command line" else []
    proc = _prepare_cli(tmp_path, src, *extra)
    assert proc.returncode == 2, proc.stderr[-2000:]
    error = _stderr_line(proc, "ERROR")
    assert "0..1 units" in error and "0..255 pixel units" in error and "0.485" in error
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())
    if where == "metadata":  # the library refuses it too, naming the model
        with pytest.raises(ConfigError, match=r"unit\.onnx.*0\.\.1 units"):
            prepare_model(src, "f32", tmp_path / "m2", tmp_path / "c")


def test_command_line_card_overrides_win_and_are_served(tmp_path: Path) -> None:
    from modelprep.prepare import describe_preprocessing

    src = make_classifier(tmp_path / "byom.onnx", metadata={**BYOM_META, "name": "byom.meta"})
    proc = _prepare_cli(tmp_path, src, "--mean", "100,110,120", "--std", "50,60,70", "--label-offset", "1",
                        "--name", "byom.cli")
    assert proc.returncode == 0, proc.stderr[-2000:]
    model_dir = Path(proc.stdout.strip().splitlines()[-1])
    card = load_card(model_dir)
    assert (card.name, card.mean, card.std, card.label_offset) == ("byom.cli", (100.0, 110.0, 120.0),
                                                                  (50.0, 60.0, 70.0), 1)
    assert card.convention.startswith("metadata") and "command line" in card.convention
    assert all(k in card.convention for k in ("mean", "std", "label_offset", "name"))
    line = _stderr_line(proc, "preprocessing: ")
    assert line == f"preprocessing: {describe_preprocessing(card)}"
    assert "[100.0, 110.0, 120.0]" in line and "label offset +1" in line and "command line" in line
    # The served graph really uses them: same top-1 as the float model on (x - mean) / std, plus 1.
    images = RNG.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    x = (images.astype(np.float32) - np.float32([100, 110, 120]).reshape(1, 3, 1, 1)) \
        / np.float32([50, 60, 70]).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(_served_top1(model_dir, images), _float_scores(src, x).argmax(1) + 1)


def test_1000_class_model_without_metadata_prints_torchvision_convention(tmp_path: Path) -> None:
    src = make_classifier(tmp_path / "plain1000.onnx", input_size=32, num_classes=1000)
    proc = _prepare_cli(tmp_path, src)
    assert proc.returncode == 0, proc.stderr[-2000:]
    card = load_card(Path(proc.stdout.strip().splitlines()[-1]))
    assert card.name == "plain1000" and card.convention == "torchvision-1000" and card.label_offset == 0
    assert card.mean == TORCHVISION_MEAN and card.std == TORCHVISION_STD
    line = _stderr_line(proc, "preprocessing: ")
    assert line.startswith("preprocessing: plain1000: torchvision-1000:")
    assert f"mean {list(TORCHVISION_MEAN)} std {list(TORCHVISION_STD)}" in line and "label offset +0" in line


@pytest.mark.parametrize("choice,flags,expected", [
    ("auto", {"avx2", "fma"}, "enable"),  # 16-bit sums saturate: every layer gets 7-bit weights
    ("auto", {"avx2", "avx512f", "avx512_vnni"}, "first_layer"),
    ("auto", {"avx2", "avx_vnni"}, "first_layer"),
    ("auto", {"avx512_vnni", "amx_int8", "amx_tile"}, "first_layer"),
    ("auto", set(), "enable"),  # unknown CPU: the safe choice
    ("disable", {"avx2"}, "disable"),
    ("enable", {"amx_int8"}, "enable"),
])
def test_overflow_fix_follows_the_hosts_int8_instructions(choice: str, flags: set, expected: str) -> None:
    from modelprep.quantize import resolve_overflow_fix

    assert resolve_overflow_fix(choice, frozenset(flags)) == expected


def test_cpu_flags_reads_the_first_flags_line(tmp_path: Path) -> None:
    from common.cpuflags import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_vnni\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_vnni"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_overflow_fix_gives_seven_bit_weights_and_is_recorded(tiny_onnx: Path, demo_data: Path,
                                                              tmp_path: Path) -> None:
    """'enable' keeps every INT8 weight within 7 bits; 'disable' uses the full 8; each is in the card
    and in the prepared folder's name, so one never serves from the other's cache."""
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    dirs, widest = {}, {}
    for fix in ("enable", "disable"):
        calib = CalibrationConfig(demo_data / "train", demo_data / "cal_list.txt", subset_size=50, overflow_fix=fix)
        dirs[fix] = prepare(PrepareRequest(tiny_onnx, "int8", tmp_path / "m", tmp_path / "c", calibration=calib))
        assert load_card(dirs[fix]).calibration["overflow_fix"] == fix
        model = ov.Core().read_model(dirs[fix] / "model.xml")
        weights = [op.get_data() for op in model.get_ordered_ops()
                   if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8]
        assert weights, "no INT8 weights in the quantized model"
        widest[fix] = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert dirs["enable"] != dirs["disable"]
    assert widest["enable"] <= 64 < widest["disable"]
    with pytest.raises(Exception, match="overflow fix"):
        CalibrationConfig(demo_data / "train", demo_data / "cal_list.txt", overflow_fix="half")
