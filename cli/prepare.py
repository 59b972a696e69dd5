"""``mlperf-cpu prepare``: ONNX/IR -> served FP32 or INT8 IR + model card."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import ConfigError

from cli._options import DEFAULT_WORK, add_weights_options, card_overrides, weights_choice


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``prepare`` to ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("prepare", help="ONNX/IR -> served FP32 or INT8 IR + model card")
    p.add_argument("--model", required=True,
                   help=".onnx file, OpenVINO .xml, or a built-in architecture name (untrained unless --weights "
                        "or --pretrained; needs torch)")
    add_weights_options(p)
    p.add_argument("--precision", choices=("f32", "bf16", "int8"), required=True,
                   help="f32: real FP32 execution; bf16: the FP32 IR run in BF16; int8: NNCF PTQ")
    p.add_argument("--int8-rest", choices=("f32", "bf16"), default="f32",
                   help="execution precision of the layers INT8 leaves in float (default f32)")
    p.add_argument("--calib-list", type=Path, help="calibration list (file names, one per line)")
    p.add_argument("--calib-dir", type=Path, help="directory holding the calibration images")
    p.add_argument("--calib-subset", type=int, help="use this many calibration images (default: all)")
    p.add_argument("--calib-preset", choices=("performance", "mixed"), default="performance")
    p.add_argument("--bias-correction", choices=("fast", "full"), default="fast",
                   help="NNCF bias correction (default fast); full is slower to prepare and is what NNCF's "
                        "published MobileNetV3 figures need (models/zoo/int8_drop.csv)")
    p.add_argument("--overflow-fix", choices=("auto", "enable", "first_layer", "disable"), default="auto",
                   help="NNCF's 7-bit weight fix against saturating 16-bit INT8 sums; auto (default): every "
                        "layer on CPUs without VNNI/AMX, the first layer only on those with (recorded in the card)")
    p.add_argument("--check-dataset", type=Path,
                   help="held-out labelled images: INT8 vs FP32 top-1 and agreement, stored in the card")
    p.add_argument("--check-val-map", type=Path, help="default: <check-dataset>/val_map.txt")
    p.add_argument("--check-count", type=int, default=1000, help="held-out samples to check (default 1000)")
    p.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                   help="int8: keep the layers that cost accuracy in float (NNCF accuracy control) until the "
                        "held-out top-1 drop (--check-dataset minus the calibration list) is <= POINTS")
    p.add_argument("--layout", choices=("NCHW", "NHWC"), default="NCHW", help="uint8 input layout")
    p.add_argument("--task", choices=("classification", "detection"), default="classification",
                   help="detection: a YOLO-style [N, 4+classes, anchors] detector (COCO mAP; README "
                        "'Object detection')")
    p.add_argument("--out", type=Path, default=DEFAULT_WORK / "models", help="prepared-model root")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_WORK / "cache")
    c = p.add_argument_group("model card (override what the model's metadata or class count implies; see README)")
    c.add_argument("--name", help="model name (default: the card's, else the file name)")
    c.add_argument("--mean", help="R,G,B mean in 0..255 pixel units, e.g. 123.675,116.28,103.53")
    c.add_argument("--std", help="R,G,B std in 0..255 pixel units, e.g. 58.395,57.12,57.375")
    c.add_argument("--crop-pct", type=float, help="centre-crop fraction: resize short side to size/crop_pct")
    c.add_argument("--interpolation", choices=("area", "linear", "cubic"), help="resize filter")
    c.add_argument("--label-offset", type=int, help="added to the argmax (-1 for 1001-class models)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the model; print its preprocessing (stderr) and its directory."""
    from modelprep.agreement import CheckSet
    from modelprep.card import load_card
    from modelprep.prepare import PrepareRequest, describe_preprocessing, prepare
    from modelprep.quantize import CalibrationConfig
    from modelprep.source import resolve_source

    calibration = check = None
    if args.precision == "int8":
        if args.calib_list is None or args.calib_dir is None:
            raise ConfigError("--precision int8 needs --calib-list and --calib-dir")
        calibration = CalibrationConfig(args.calib_dir, args.calib_list, args.calib_subset,
                                        args.calib_preset, fast_bias_correction=args.bias_correction == "fast",
                                        overflow_fix=args.overflow_fix)
        if args.check_dataset is not None:
            check = CheckSet(args.check_dataset, args.check_val_map or args.check_dataset / "val_map.txt",
                             args.check_count)
    source = resolve_source(args.model, args.out / "sources", weights_choice(args))
    req = PrepareRequest(source, args.precision, args.out, args.cache_dir, args.layout, calibration,
                         args.int8_rest, check, card_overrides(args), args.task,
                         max_accuracy_drop=args.max_accuracy_drop)
    out = prepare(req)
    card = load_card(out)
    if card.is_detector:
        from modelprep.detector import describe_detector
        print(f"preprocessing: {describe_detector(card)}", file=sys.stderr)
    else:
        print(f"preprocessing: {describe_preprocessing(card)}", file=sys.stderr)
    print(out)
    return 0
