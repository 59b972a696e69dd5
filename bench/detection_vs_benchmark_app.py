"""Detection: the harness (post-processing included) vs benchmark_app, same INT8 IR, same engine settings.

The model is the registered ``yolo11l`` architecture (YOLOv11-L-shaped, 640x640, 80 classes,
exported with UNTRAINED seeded weights in the Ultralytics format) or any YOLO-style ONNX given
with ``--model``, prepared as a detector (``--task detection``; INT8 calibrated on the bundled
COCO-layout demo set's list). Only speed is meaningful. Each round runs OpenVINO's
``benchmark_app`` on the prepared IR (``bench/_bapp.py``: inference only) and then the harness's
LoadGen Offline performance test on the demo set's images, whose samples/s include the box
decoding + NMS of every response. The last line printed is ``ratio <median over rounds of ours /
benchmark_app>``.

    bench/run.sh detection_vs_benchmark_app [--model yolo11l|path.onnx] [--rounds 3] [--duration 60]
        [--system host|NAME|path.yaml] [--streams S] [--threads T] [--requests R] [--batch B]

The batch is 1 in both tools unless ``--batch`` is given (``DETECTOR_BATCH``: why, below).
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import REPO, UNTRAINED, WORK, WORKSPACE, require_train_extra, run_main

require_train_extra(__file__)

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from bench._bapp import BappResult, run_benchmark_app  # noqa: E402
from bench._bapp_rounds import add_round_args, bench_system, parse_round_args, run_rounds  # noqa: E402
from bench._record import Value, chosen_summary, figure, write_json  # noqa: E402
from bench._rounds import print_summary  # noqa: E402
from common.errors import HarnessError  # noqa: E402
from common.testspec import Mode, Overrides  # noqa: E402
from modelprep.card import load_card  # noqa: E402
from modelprep.quantize import CalibrationConfig  # noqa: E402
from pipeline.flows import TestSpec, prepare_model  # noqa: E402


# Batch 1 unless --batch says otherwise, in both tools. The host profile's Offline batch (16) suits
# light classifiers; for a 43-GMAC detector it is ~5 s of one stream, so a 60 s Offline run ends
# with one stream idle while the other runs the last batch, and a partial last batch is padded:
# measured 2026-11-29 with batch 16, per-round ratios 1.009 / 0.903 / 0.892 depending only on how
# LoadGen's sample count fell into batches. Batching buys such a model nothing on a CPU.
DETECTOR_BATCH = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="yolo11l",
                   help="registered detector architecture (default yolo11l) or a YOLO-style .onnx")
    p.add_argument("--precision", default="int8", choices=("int8", "f32", "bf16"), help="default int8")
    p.add_argument("--calib-subset", type=int, default=32, help="calibration images (default 32)")
    add_round_args(p, duration=60)
    p.add_argument("--json", type=Path, help="also write the figure's record (docs/performance.md) to this JSON file")
    args = parse_round_args(p, argv)
    if args.batch is None:
        args.batch = DETECTOR_BATCH
    return args


def demo_coco() -> Path:
    """The bundled COCO-layout demo set (its val2017 feeds the harness, its list calibrates)."""
    try:
        from dataset.coco_demo import build_coco_demo
    except ImportError:
        raise HarnessError("dataset.coco_demo (the bundled detection demo set) is not in this checkout") from None
    return build_coco_demo(WORKSPACE.demo_data.with_name("demo-coco"))


def benchmark(args: argparse.Namespace) -> int:
    """Prepare once, run the interleaved rounds, print the table, medians and ratio."""
    start = time.perf_counter()
    print(f"NOTE: {args.model} with {UNTRAINED}; the demo set's images stand in for COCO.", flush=True)
    system, profile = bench_system(args)
    coco = demo_coco()
    calibration = CalibrationConfig(coco / "train2017", coco / "cal_list.txt", subset_size=args.calib_subset)
    model_dir = prepare_model(args.model, args.precision, WORKSPACE, calibration=calibration, task="detection")
    card, e = load_card(model_dir), profile.engine
    print(f"model   : {model_dir} ({card.label}, {card.input_size} px, {card.num_classes} classes, "
          f"inference precision {card.inference_precision}; NMS in {card.nms})\n"
          f"engine  : {e.num_streams} streams, {e.num_threads} threads, {e.infer_requests} requests, "
          f"batch {e.batch_size}, pinning {e.pinning} (system {system})\n"
          f"setup   : {time.perf_counter() - start:.1f} s; {args.rounds} rounds x 2 runs x ~{args.duration} s\n",
          flush=True)
    logging.getLogger().setLevel(logging.WARNING)  # the rounds print their own table
    spec = TestSpec(Mode.PERFORMANCE, model_dir, coco, system, WORKSPACE, REPO / "user.conf",
                    overrides=Overrides(min_duration_ms=args.duration * 1000, min_query_count=1, target_qps=0))

    def reference(i: int) -> BappResult:
        return run_benchmark_app(model_dir / "model.xml", e, card.inference_precision, args.duration,
                                 cache_dir=WORKSPACE.cache / "ov_cache", out_dir=WORK / "bapp-det" / f"round{i}")

    rounds, _runs = run_rounds(args, reference, spec)
    print(f"wall time {time.perf_counter() - start:.1f} s; {args.model}: {UNTRAINED}; ours includes the "
          "decode + NMS of every response; note = LoadGen validity (INVALID only means the warm-up "
          "target_qps was off)")
    summaries = print_summary(rounds, args.busy_threshold)  # last line: "ratio <number>"
    if args.json:
        s = chosen_summary(summaries)
        write_json(args.json, {"summary": summaries}, [figure(
            "detection_vs_benchmark_app", s["median_of_ratios"], Value("ours", s["ours_median"], "samples/s"),
            Value("benchmark_app", s["reference_median"], "FPS"), name=f"{args.model} {args.precision} Offline",
            ratio_is="ours (decode + NMS included) / benchmark_app throughput, median of per-round ratios",
            goal=">= 0.95", note="untrained weights: speed only")])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
