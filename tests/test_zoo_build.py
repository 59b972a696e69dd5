"""``python -m models.zoo_build`` on a small real excerpt of timm's published CSVs: every row kept,
MACs counted by the project's own counter at each row's eval size, timm's benchmark figure beside
ours, extra-data tags flagged, rows the pinned timm cannot build kept and marked."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytest.importorskip("torch")
if importlib.util.find_spec("timm") is None:
    pytest.skip("timm (train extra) is not installed", allow_module_level=True)

from models.zoo_table import load_zoo  # noqa: E402

SHA = "aa4b5850c1543fa488abf260f18390eda46cf85d"
# Real rows of results/results-imagenet.csv at SHA (the last one names an architecture timm lacks).
RESULTS = """model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation
resnet18.a1_in1k,288,73.158,26.842,91.030,8.970,11.69,1.000,bicubic
mobilenetv3_large_100.miil_in21k_ft_in1k,224,77.916,22.084,94.292,5.708,5.48,0.875,bilinear
mobilenetv3_large_100.ra_in1k,224,75.766,24.234,92.540,7.460,5.48,0.875,bicubic
mobileone_s0.apple_in1k,224,71.402,28.598,89.848,10.152,5.29,0.875,bilinear
squeezenet_like.in1k,224,60.000,40.000,80.000,20.000,"1,014.45",0.875,bicubic
"""
# Real rows of results/benchmark-infer-amp-nchw-pt291-cu130-5090.csv (timm's own GMACs).
BENCH = """model,infer_img_size,infer_samples_per_sec,infer_step_time,infer_batch_size,param_count,infer_gmacs,infer_macts
resnet18,288,1.0,1.0,256,11.69,3.01,4.11
mobilenetv3_large_100,224,1.0,1.0,256,5.48,0.23,4.41
mobileone_s0,224,1.0,1.0,256,5.29,1.09,15.48
"""


def _build(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "results-imagenet.csv").write_text(RESULTS)
    (tmp_path / "bench.csv").write_text(BENCH)
    return subprocess.run(
        [sys.executable, "-m", "models.zoo_build", "--results-csv", str(tmp_path / "results-imagenet.csv"),
         "--bench-csv", str(tmp_path / "bench.csv"), "--commit", SHA, "--out", str(tmp_path / "zoo.csv"),
         "--cache", str(tmp_path / "cache.jsonl"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=600)


def test_build_from_an_excerpt_of_the_published_csvs(tmp_path: Path) -> None:
    proc = _build(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (tmp_path / "zoo.csv").read_text()
    assert text.startswith(f"# source: huggingface/pytorch-image-models results/results-imagenet.csv @ {SHA}\n")
    entries = {e.row_key: e for e in load_zoo(tmp_path / "zoo.csv")}
    assert len(entries) == 5  # every published row is kept
    resnet = entries["resnet18.a1_in1k"]
    assert (resnet.img_size, resnet.top1, resnet.crop_pct, resnet.interpolation) == (288, 73.158, 1.0, "bicubic")
    # Counted at the row's eval size (288, not timm's default 224): 1.82 GMACs x (288/224)^2.
    assert resnet.gmacs == pytest.approx(3.0, abs=0.02) and resnet.timm_gmacs == 3.01
    assert resnet.macs_check == "agree" and resnet.family == "ResNet" and not resnet.extra_data
    # Two tags of one architecture share the count; only the in21k one is flagged.
    miil, ra = entries["mobilenetv3_large_100.miil_in21k_ft_in1k"], entries["mobilenetv3_large_100.ra_in1k"]
    assert miil.extra_data and not ra.extra_data and miil.gmacs == ra.gmacs == pytest.approx(0.2166, abs=1e-4)
    assert ra.depthwise_mac_fraction > 0.05 and ra.has_se and ra.activation == "relu+hswish"
    assert ra.macs_check == "differs"  # timm also counts SE pooling and element-wise ops
    # MobileOne is counted in its deploy (fused) form, timm's benchmark figure is the train form.
    mobileone = entries["mobileone_s0.apple_in1k"]
    assert mobileone.gmacs == pytest.approx(0.275, abs=0.005) and mobileone.macs_check == "differs"
    # An architecture the pinned timm lacks is kept, marked, with its published figures.
    missing = entries["squeezenet_like.in1k"]
    assert missing.status == "not_in_timm" and missing.gmacs == 0 and missing.params_m == 1014.45 and missing.note
    cache = [json.loads(line) for line in (tmp_path / "cache.jsonl").read_text().splitlines()]
    assert len(cache) == 3  # one count per (architecture, size)

    # A rerun reads the cache; a count that cannot finish in time is kept as a marked row.
    (tmp_path / "cache.jsonl").write_text("\n".join(json.dumps(c) for c in cache if c["arch"] != "resnet18") + "\n")
    proc = _build(tmp_path, "--timeout", "0.01")
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = {e.row_key: e for e in load_zoo(tmp_path / "zoo.csv")}
    assert entries["resnet18.a1_in1k"].status == "not_counted"
    assert "counting took over 0.01 s" in entries["resnet18.a1_in1k"].note
    assert entries["mobilenetv3_large_100.ra_in1k"].counted  # from the cache
