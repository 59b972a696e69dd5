"""Architecture descriptors of a built torch model, counted with forward hooks.

The same definitions as the zoo table's columns (``models.zoo_build`` counts
models/zoo/zoo.csv with this function): MACs of every Conv2d and Linear that runs, split into depthwise
(``groups == in_channels > 1``), grouped, dense and linear; squeeze-excitation modules found by
their exact class names; activations classified by class name and weighted by their output
elements, leaving out gates (sigmoid/hard-sigmoid) and everything inside an SE module.
``search.descriptors`` counts the same things from a plan; for timm models with
re-parameterisable blocks (RepVGG, MobileOne) describe the deploy form, as the table does.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import torch
from torch import nn

from models._macs import count_params

SE_CLASS = re.compile(r"^(SqueezeExcite\w*|SEModule|SEBlock|SqueezeExcitation|EffectiveSEModule|SEWeightModule)$")
# class-name pattern -> label; the first match wins (hard-sigmoid before sigmoid, relu6 before relu)
ACT_CLASSES = ((r"hardswish|hard_swish|hswish", "hswish"), (r"hardsigmoid|hard_sigmoid|sigmoid", "gate"),
               (r"relu6", "relu6"), (r"leakyrelu|prelu", "lrelu"), (r"relu", "relu"), (r"silu|swish", "silu"),
               (r"gelu", "gelu"), (r"mish", "mish"), (r"tanh", "tanh"))
ACT_SHARE_MIN = 0.10


def activation_kind(module: nn.Module) -> str | None:
    """The activation label of a module's class, or None if it is not an activation."""
    name = type(module).__name__.lower()
    return next((label for rx, label in ACT_CLASSES if re.search(rx, name)), None)


def _conv_kind(m: nn.Conv2d) -> str:
    if m.groups > 1 and m.groups == m.in_channels:
        return "dw"
    if m.groups > 1:
        return "grouped"
    return "dense_kxk" if m.kernel_size[0] * m.kernel_size[1] > 1 else "dense_1x1"


def describe_module(model: nn.Module, size: int) -> dict[str, Any]:
    """zoo.csv's descriptors of ``model`` on one 3 x ``size`` x ``size`` image, plus the raw
    counts (``macs`` by kind with SE separate, ``acts`` by label, ``se_blocks``)."""
    macs: Counter = Counter()
    acts: Counter = Counter()
    se_blocks = 0
    se_names = [n for n, m in model.named_modules() if SE_CLASS.search(type(m).__name__)]

    def in_se(name: str) -> bool:
        return any(name.startswith(s + ".") for s in se_names)

    def count(kind: str, name: str, mac: int) -> None:
        macs["se" if in_se(name) else kind] += mac

    def on_se(*_: Any) -> None:
        nonlocal se_blocks
        se_blocks += 1

    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            def conv_hook(mod: nn.Conv2d, _inp: Any, out: torch.Tensor, name: str = name) -> None:
                k = mod.kernel_size[0] * mod.kernel_size[1]
                count(_conv_kind(mod), name, out.numel() * (mod.in_channels // mod.groups) * k)
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            def linear_hook(mod: nn.Linear, _inp: Any, out: torch.Tensor, name: str = name) -> None:
                count("linear", name, out.numel() * mod.in_features)
            hooks.append(m.register_forward_hook(linear_hook))
        elif SE_CLASS.search(type(m).__name__):
            hooks.append(m.register_forward_hook(on_se))
        elif (label := activation_kind(m)) and label != "gate" and not list(m.children()):
            def act_hook(_mod: nn.Module, _inp: Any, out: Any, name: str = name, label: str = label) -> None:
                if not in_se(name) and torch.is_tensor(out):
                    acts[label] += out.numel()
            hooks.append(m.register_forward_hook(act_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    total = sum(macs.values())
    coarse: Counter = Counter()
    for label, n in acts.items():
        coarse["relu" if label == "relu6" else label] += n
    denom = sum(coarse.values()) or 1
    shares = sorted(((n / denom, k) for k, n in coarse.items()), reverse=True)
    return {"gmacs": total / 1e9, "params_m": count_params(model) / 1e6, "img_size": size,
            "depthwise_mac_fraction": macs["dw"] / total, "has_se": int(se_blocks > 0),
            "activation": "+".join(k for s, k in shares if s >= ACT_SHARE_MIN) or "none",
            "macs": dict(macs), "acts": dict(acts), "se_blocks": se_blocks}
