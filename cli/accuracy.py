"""``mlperf-cpu accuracy``: accuracy.txt from mlperf_log_accuracy.json (top-1, or COCO mAP)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``accuracy`` to ``sub`` (from ``add_subparsers``)."""
    a = sub.add_parser("accuracy", help="accuracy.txt from mlperf_log_accuracy.json + val_map.txt "
                                        "(or a COCO instances_*.json: mAP)")
    a.add_argument("--log", type=Path, required=True)
    a.add_argument("--val-map", type=Path, required=True, help="val_map.txt, or a COCO annotation file (.json)")
    a.add_argument("--out", type=Path)
    a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Score the accuracy log; print the result line and, with ``--out``, write it."""
    from dataset.val_map import parse_val_map
    from records.accuracy import read_accuracy_log, top1, write_accuracy_txt

    if args.val_map.suffix == ".json":  # a COCO annotation file: the detection benchmark's mAP
        from dataset.coco import load_coco
        from records.detection import coco_map, read_detection_log, write_map_txt

        coco = load_coco(args.val_map.parent, args.val_map, check_images=False)
        mean_ap = coco_map(read_detection_log(args.log), coco, str(args.log))
        if args.out:
            write_map_txt(mean_ap, args.out)
        print(f"{mean_ap.summary}{mean_ap.line()}")
        return 0
    samples = parse_val_map(args.val_map)
    result = top1(read_accuracy_log(args.log), samples, str(args.log))
    if args.out:
        write_accuracy_txt(result, args.out)
    print(result.line())
    return 0
