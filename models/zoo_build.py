"""Build the zoo table (``models/zoo/zoo.csv``) from timm's published ImageNet results.

    python -m models.zoo_build --results-csv results-imagenet.csv \\
        --bench-csv benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv --commit SHA

The inputs are local copies of ``results/results-imagenet.csv`` and one
``results/benchmark-infer-*.csv`` of ``huggingface/pytorch-image-models`` at commit ``SHA``.
Every results row becomes a table row: tag, eval size, crop, interpolation and top-1/top-5 as
published; parameters and MACs counted here (``models.descriptors.describe_module``, the
project's hook counter over every Conv2d and Linear that runs) on the architecture built
untrained at the row's eval size, in its deploy form (RepVGG/MobileOne fused). timm's own
GMACs from the benchmark CSV sit beside ours with a flag where they differ by more than 5 %.
Rows the pinned timm cannot build or count are kept, with the reason and no MACs.

Counting builds each (architecture, size) once on the meta device (shapes only, no memory),
falling back to a CPU build for models that need real tensors; each build runs in a worker
process with a time limit, and results go to a JSON-lines cache so a rerun resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from common.errors import ConfigError
from common.files import write_text_atomic
from models.zoo_table import COLUMNS, extra_training_data

SOURCE_REPO = "huggingface/pytorch-image-models"
SOURCE_FILE = "results/results-imagenet.csv"
MAC_KINDS = ("dense_kxk", "dense_1x1", "grouped", "dw", "se", "linear")
# A CPU build materialises every weight: beyond this many parameters (millions, from the
# results CSV) a model that fails on the meta device is left uncounted rather than risk the
# shared host's memory.
CPU_FALLBACK_MAX_PARAMS_M = 700.0
BENCH_DISAGREE = 0.05  # our GMACs vs timm's benchmark CSV: relative difference that is flagged
COUNT_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class SourceRow:
    """One row of timm's results CSV."""

    timm_name: str
    tag: str
    img_size: int
    top1: float
    top5: float
    params_m: float
    crop_pct: float
    interpolation: str

    @property
    def key(self) -> str:
        """``<timm_name>.<tag>``."""
        return f"{self.timm_name}.{self.tag}"


def _number(text: str) -> float:
    """A published figure, which timm writes with thousands separators (``1,014.45``)."""
    return float(text.replace(",", ""))


def read_results(path: Path) -> list[SourceRow]:
    """Parse timm's ``results-imagenet.csv``; a bad row is a one-line ``ConfigError``."""
    rows = []
    with Path(path).open(newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            try:
                name, _, tag = row["model"].partition(".")
                rows.append(SourceRow(name, tag, int(row["img_size"]), float(row["top1"]), float(row["top5"]),
                                      _number(row["param_count"]), float(row["crop_pct"]), row["interpolation"]))
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"{path}:{reader.line_num}: not a timm results row ({exc})") from None
    return rows


def read_bench(path: Path | None) -> dict[tuple[str, int], float]:
    """timm's benchmark GMACs by (architecture, image size) from a ``benchmark-infer-*.csv``."""
    if path is None:
        return {}
    out: dict[tuple[str, int], float] = {}
    with Path(path).open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                out[(row["model"].partition(".")[0], int(row["infer_img_size"]))] = _number(row["infer_gmacs"])
            except (KeyError, ValueError):
                continue  # rows without a MAC figure carry no cross-check
    return out


# --- counting (runs in a worker process) -------------------------------------------------

def _build(name: str, size: int, device: str) -> Any:
    """timm architecture ``name`` (``arch.tag``), untrained, 1000 classes, on ``device``, able to
    take ``size`` x ``size`` input (fixed-size models are built at ``size``)."""
    import torch  # noqa: PLC0415 - worker only

    from models._timm import create_timm  # noqa: PLC0415 - imports timm behind its shim

    with torch.device(device):
        try:
            model = create_timm(name, num_classes=1000, img_size=size)
        except TypeError:  # the architecture takes any input size and has no img_size argument
            model = create_timm(name, num_classes=1000)
    return model.eval()


def count_one(name: str, size: int, device: str) -> dict[str, Any]:
    """Parameters and MACs of ``name`` at ``size`` in its deploy form, counted on ``device``."""
    import torch  # noqa: PLC0415 - worker only

    from models._timm import _import_timm  # noqa: PLC0415
    from models.descriptors import describe_module  # noqa: PLC0415

    _import_timm()
    from timm.utils.model import reparameterize_model  # noqa: PLC0415 - after the shim

    torch.set_num_threads(1)
    model = reparameterize_model(_build(name, size, device))
    with torch.device(device):  # the counter's zeros input is made on the model's device
        found = describe_module(model, size)
    macs = found["macs"]
    total = sum(macs.values())
    return {"status": "ok", "device": device, "gmacs": round(total / 1e9, 4),
            "params_m_counted": round(found["params_m"], 3),
            "depthwise_mac_fraction": round(found["depthwise_mac_fraction"], 4), "has_se": found["has_se"],
            "activation": found["activation"],
            "mac_kinds": {k: round(macs.get(k, 0) / total, 4) for k in MAC_KINDS}}


def _count_task(job: tuple[str, int, float]) -> dict[str, Any]:
    """Worker entry: meta device first, the CPU if the model needs real tensors and is small enough."""
    name, size, params_m = job
    try:
        return count_one(name, size, "meta")
    except Exception as meta_exc:  # noqa: BLE001 - any failure of a foreign model is a reason, not a crash
        meta_reason = f"{type(meta_exc).__name__}: {str(meta_exc).splitlines()[0][:160] if str(meta_exc) else ''}"
    if params_m > CPU_FALLBACK_MAX_PARAMS_M:
        return {"status": "not_counted", "reason": f"meta device failed ({meta_reason}); {params_m:g} M "
                                                   f"parameters is too large to build on the CPU here"}
    try:
        return count_one(name, size, "cpu")
    except Exception as exc:  # noqa: BLE001
        text = str(exc).splitlines()[0][:160] if str(exc) else ""
        return {"status": "not_counted", "reason": f"{type(exc).__name__}: {text}"}


def count_all(jobs: Sequence[tuple[str, int, float]], cache: Path, timeout_s: float = COUNT_TIMEOUT_S,
              log: Any = sys.stderr) -> dict[tuple[str, int], dict[str, Any]]:
    """Count every ``(arch.tag, size, params_m)`` job not yet in the JSON-lines ``cache``, one
    worker process at a time, each with ``timeout_s``; return every cached result by (arch, size)."""
    done = _read_cache(cache)
    # A count that ran out of time is tried again when more time is given.
    todo = [j for j in jobs if (_arch(j[0]), j[1]) not in done
            or done[(_arch(j[0]), j[1])].get("timeout_s", timeout_s) < timeout_s]
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(1)
    try:
        for i, job in enumerate(todo, 1):
            if (_arch(job[0]), job[1]) not in done and (_arch(job[0]), job[1]) in _read_cache(cache):
                continue  # another builder sharing the cache counted it meanwhile
            start = time.monotonic()
            try:
                result = pool.apply_async(_count_task, (job,)).get(timeout_s)
            except multiprocessing.TimeoutError:
                pool.terminate()
                pool = ctx.Pool(1)
                result = {"status": "not_counted", "reason": f"counting took over {timeout_s:g} s",
                          "timeout_s": timeout_s}
            except Exception as exc:  # noqa: BLE001 - a worker killed (e.g. out of memory) is a reason
                pool.terminate()
                pool = ctx.Pool(1)
                result = {"status": "not_counted", "reason": f"worker failed: {type(exc).__name__}: {exc}"[:200]}
            record = {"arch": _arch(job[0]), "size": job[1], **result}
            with cache.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            done[(record["arch"], job[1])] = record
            print(f"[{i}/{len(todo)}] {job[0]} @{job[1]}: {result.get('gmacs', result.get('reason'))} "
                  f"({time.monotonic() - start:.1f} s)", file=log, flush=True)
    finally:
        pool.terminate()
    return {**_read_cache(cache), **done}


def _arch(name: str) -> str:
    return name.partition(".")[0]


def _read_cache(cache: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                out[(record["arch"], int(record["size"]))] = record
    return out


# --- assembling the table -----------------------------------------------------------------

# Architecture name pattern -> family (first match wins). The names the INT8 drop table and the
# accuracy predictor's leave-one-family-out use; an architecture matching none takes the name of
# the timm module that defines it (``byobnet``, ``vision_transformer``, ...).
FAMILIES = (
    (r"^seresnet", "SE-ResNet"), (r"^resnet\d+d$", "ResNet-D"), (r"^resnet\d+$", "ResNet"),
    (r"^regnetx", "RegNetX"), (r"^regnety", "RegNetY"),
    (r"efficientnet_lite", "EfficientNet-Lite"), (r"^(tf_)?efficientnet_b\d", "EfficientNet"),
    (r"^mobilenetv2", "MobileNetV2"), (r"mobilenetv3", "MobileNetV3"), (r"^mobilenetv4", "MobileNetV4"),
    (r"mnasnet", "MNASNet"), (r"^spnasnet", "SPNASNet"), (r"^fbnetv3", "FBNetV3"), (r"^fbnet", "FBNet"),
    (r"^ghostnet", "GhostNet"), (r"^repghostnet", "RepGhostNet"), (r"^repvgg", "RepVGG"),
    (r"^mobileone", "MobileOne"), (r"^convnext", "ConvNeXt"), (r"^hardcorenas", "HardCoReNAS"),
    (r"^rexnet", "ReXNet"), (r"^mixnet|^tf_mixnet", "MixNet"), (r"^tinynet", "TinyNet"), (r"^lcnet", "LCNet"),
    (r"^dla", "DLA"), (r"^densenet", "DenseNet"), (r"^inception", "Inception"), (r"^hgnetv2", "HGNetV2"),
    (r"^hgnet", "HGNet"), (r"^repvit", "RepViT"), (r"^efficientvit_b", "EfficientViT-MIT"),
    (r"^efficientvit_m", "EfficientViT-MSRA"), (r"^fastvit", "FastViT"), (r"^efficientformerv2", "EfficientFormerV2"),
    (r"^efficientformer", "EfficientFormer"), (r"^levit", "LeViT"), (r"^edgenext", "EdgeNeXt"),
    (r"^mobilevitv2", "MobileViTV2"), (r"^mobilevit", "MobileViT"), (r"^tiny_vit", "TinyViT"),
)
def family_of(timm_name: str, module: str = "") -> str:
    """The family label of an architecture: ``FAMILIES``' first match, else its timm module."""
    return next((label for rx, label in FAMILIES if re.search(rx, timm_name)), module or "other")


def _cfg(key: str) -> dict[str, Any]:
    """timm's pretrained config of ``arch.tag`` (metadata only, nothing is downloaded)."""
    from models._timm import _import_timm  # noqa: PLC0415

    timm = _import_timm()
    cfg = timm.models.get_pretrained_cfg(key) or timm.models.get_pretrained_cfg(key.partition(".")[0])
    return cfg.to_dict() if cfg is not None else {}


def _triple(values: Iterable[float]) -> str:
    return "/".join(f"{v:.4f}" for v in values)


def table_row(src: SourceRow, counted: dict[str, Any] | None, bench: dict[tuple[str, int], float],
              known: set[str], modules: dict[str, str]) -> dict[str, Any]:
    """One table row: the published figures of ``src`` and what was counted for its architecture."""
    cfg = _cfg(src.key) if src.timm_name in known else {}
    row: dict[str, Any] = {
        "timm_name": src.timm_name, "pretrained_tag": src.tag, "img_size": src.img_size, "top1": src.top1,
        "top5": src.top5, "params_m": src.params_m, "crop_pct": src.crop_pct, "interpolation": src.interpolation,
        "mean": _triple(cfg.get("mean", (0.485, 0.456, 0.406))), "std": _triple(cfg.get("std", (0.229, 0.224, 0.225))),
        "family": family_of(src.timm_name, modules.get(src.timm_name, "")),
        "extra_data": int(extra_training_data(src.tag)), "status": "ok", "note": "",
        **{k: "" for k in ("gmacs", "depthwise_mac_fraction", "grouped_mac_fraction", "has_se", "activation",
                           "timm_gmacs", "macs_check")}}
    if src.timm_name not in known:
        return {**row, "status": "not_in_timm", "note": "the pinned timm has no such architecture"}
    if counted is None or counted.get("status") != "ok":
        reason = (counted or {}).get("reason", "no count in the build's cache: python -m models.zoo_build counts it")
        return {**row, "status": "not_counted", "note": reason.replace("\n", " ")}
    kinds = counted["mac_kinds"]
    row.update(gmacs=counted["gmacs"], depthwise_mac_fraction=counted["depthwise_mac_fraction"],
               grouped_mac_fraction=kinds.get("grouped", 0.0), has_se=counted["has_se"],
               activation=counted["activation"])
    theirs = bench.get((src.timm_name, src.img_size))
    if theirs:
        row["timm_gmacs"] = theirs
        row["macs_check"] = "agree" if abs(counted["gmacs"] - theirs) <= BENCH_DISAGREE * theirs else "differs"
    return row


def header_lines(commit: str, bench_files: Sequence[tuple[str, str]], versions: str) -> list[str]:
    """The table's ``#`` header: source repository, file and commit, and what each figure is."""
    lines = [f"# source: {SOURCE_REPO} {SOURCE_FILE} @ {commit}"]
    lines += [f"# timm_gmacs: {SOURCE_REPO} {name} @ {sha}" for name, sha in bench_files]
    lines += [
        f"# built by: python -m models.zoo_build ({versions})",
        "# published (timm's FP32 evaluation): top1 top5 params_m img_size crop_pct interpolation; "
        "mean/std: timm's pretrained config of the tag",
        "# counted here (models.descriptors hook counter, Conv2d + Linear, untrained deploy form at img_size): "
        "gmacs depthwise_mac_fraction grouped_mac_fraction has_se activation",
        "# macs_check: agree/differs = ours within/beyond 5 % of timm_gmacs "
        "(timm also counts attention matmuls and some element-wise ops)",
        "# extra_data 1: the tag's weights saw data beyond ImageNet-1k; status: ok | not_counted | not_in_timm "
        "(note says why)",
    ]
    return lines


def build_table(results: Sequence[SourceRow], counted: dict[tuple[str, int], dict[str, Any]],
                bench: dict[tuple[str, int], float], commit: str, bench_files: Sequence[tuple[str, str]] = ()) -> str:
    """The table's text (header and CSV rows, in the results CSV's order)."""
    import io  # noqa: PLC0415

    import torch  # noqa: PLC0415

    from models._timm import _import_timm  # noqa: PLC0415

    timm = _import_timm()
    known = set(timm.list_models())
    from timm.models import _registry  # noqa: PLC0415 - after the shim

    modules = dict(_registry._model_to_module)
    buf = io.StringIO()
    buf.write("\n".join(header_lines(commit, bench_files, f"timm {timm.__version__}, torch {torch.__version__}"))
              + "\n")
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for src in results:
        writer.writerow(table_row(src, counted.get((src.timm_name, src.img_size)), bench, known, modules))
    return buf.getvalue()


def count_jobs(results: Sequence[SourceRow]) -> list[tuple[str, int, float]]:
    """One counting job per (architecture, size) the pinned timm knows, smallest models first."""
    from models._timm import _import_timm  # noqa: PLC0415

    known = set(_import_timm().list_models())
    jobs: dict[tuple[str, int], tuple[str, int, float]] = {}
    for src in results:
        if src.timm_name in known:
            jobs.setdefault((src.timm_name, src.img_size), (src.key, src.img_size, src.params_m))
    return sorted(jobs.values(), key=lambda j: j[2])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.zoo_build``: count what is missing from the cache and write the table."""
    p = argparse.ArgumentParser(prog="python -m models.zoo_build", description=__doc__.split("\n\n")[0])
    p.add_argument("--results-csv", type=Path, required=True, help=f"local copy of {SOURCE_FILE}")
    p.add_argument("--bench-csv", type=Path, action="append", default=[],
                   help="local copy of a results/benchmark-infer-*.csv (repeatable; timm's GMACs to cross-check)")
    p.add_argument("--bench-commit", action="append", default=[],
                   help="commit of each --bench-csv, in order (default: --commit)")
    p.add_argument("--commit", required=True, help=f"the {SOURCE_REPO} commit the CSVs were read at")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "zoo" / "zoo.csv")
    p.add_argument("--cache", type=Path, default=Path("work") / "zoo_build" / "macs_cache.jsonl",
                   help="JSON-lines cache of the counts (a rerun resumes from it)")
    p.add_argument("--timeout", type=float, default=COUNT_TIMEOUT_S, help="seconds per (architecture, size)")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{7,40}", args.commit):
        p.error(f"--commit {args.commit!r}: expected a git commit hash")
    results = read_results(args.results_csv)
    bench: dict[tuple[str, int], float] = {}
    for path in args.bench_csv:
        bench = {**read_bench(path), **bench}  # the first file named wins where several have a figure
    bench_commits = args.bench_commit + [args.commit] * (len(args.bench_csv) - len(args.bench_commit))
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    counted = count_all(count_jobs(results), args.cache, args.timeout)
    text = build_table(results, counted, bench, args.commit,
                       [(f"results/{p.name}", c) for p, c in zip(args.bench_csv, bench_commits)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, text)
    counted_rows = sum(1 for src in results if counted.get((src.timm_name, src.img_size), {}).get("status") == "ok")
    print(f"{args.out}: {len(results)} rows, MACs counted for {counted_rows}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
