"""Architecture descriptors of a candidate, counted from its resolved ``Plan`` without torch.

Two uses, one count:

* the accuracy predictor's inputs, defined exactly as the zoo table's columns
  (``models.zoo_build``): GMACs of Conv2d + Linear, parameters, the depthwise share of
  the MACs, whether any squeeze-excitation runs, the dominant activation(s) by output elements
  (gates and everything inside SE excluded, labels with >= 10 % share, largest first);
* the throughput predictor's inputs: MACs by kind (dense kxk, dense 1x1, grouped, depthwise,
  linear), activation elements by kind, SE blocks and the elements they gate, residual-add
  elements and a memory-traffic proxy (input + output elements of every conv).

``models.descriptors.describe_module`` counts the same quantities with forward hooks on a
built torch model; the tests check that both agree, and that the hook count reproduces
zoo.csv for a timm architecture.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from search.space import BlockPlan, Candidate, Plan, plan

ACT_SHARE_MIN = 0.10  # zoo.csv's rule for listing an activation in the label


@dataclass
class _Counter:
    """Accumulates per-image counts while walking a plan."""

    macs: Counter
    acts: Counter
    params: int = 0
    memory: int = 0
    se_blocks: int = 0
    se_elems: int = 0
    add_elems: int = 0
    convs: int = 0

    def conv(self, cin: int, cout: int, k: int, stride: int, groups: int, hw_in: int, *, se: bool = False,
             act: str | None = None) -> int:
        hw_out = -(-hw_in // stride)
        mac = hw_out * hw_out * cout * (cin // groups) * k * k
        if groups > 1 and groups == cin:
            kind = "dw"
        elif groups > 1:
            kind = "grouped"
        else:
            kind = "dense_kxk" if k > 1 else "dense_1x1"
        self.macs["se" if se else kind] += mac
        self.params += cout * (cin // groups) * k * k + (cout if se else 2 * cout)  # SE: bias; else BN
        if not se:
            self.memory += hw_in * hw_in * cin + hw_out * hw_out * cout
            self.convs += 1
        if act:
            self.acts[act] += hw_out * hw_out * cout
        return hw_out

    def squeeze_excite(self, channels: int, squeeze: int, hw: int) -> None:
        if not squeeze:
            return
        self.conv(channels, squeeze, 1, 1, 1, 1, se=True)
        self.conv(squeeze, channels, 1, 1, 1, 1, se=True)
        self.se_blocks += 1
        self.se_elems += hw * hw * channels


def _block(c: _Counter, b: BlockPlan, hw: int) -> int:
    """Count block ``b`` on an ``hw`` x ``hw`` input; return its output size."""
    if b.block == "basic":
        out = c.conv(b.cin, b.cout, b.kernel, b.stride, b.groups, hw, act=b.act)
        c.conv(b.cout, b.cout, b.kernel, 1, b.groups, out)
        c.squeeze_excite(b.cout, b.se, out)
    elif b.block == "bottleneck":
        c.conv(b.cin, b.mid, 1, 1, 1, hw, act=b.act)
        out = c.conv(b.mid, b.mid, b.kernel, b.stride, b.groups, hw, act=b.act)
        c.conv(b.mid, b.cout, 1, 1, 1, out)
        c.squeeze_excite(b.cout, b.se, out)
    elif b.block == "ir":
        ch = b.mid or b.cin
        if b.mid:
            c.conv(b.cin, b.mid, 1, 1, 1, hw, act=b.act)
        out = c.conv(ch, ch, b.kernel, b.stride, ch, hw, act=b.act)
        c.squeeze_excite(ch, b.se, out)
        c.conv(ch, b.cout, 1, 1, 1, out)
    else:  # fused
        out = c.conv(b.cin, b.mid or b.cout, b.kernel, b.stride, 1, hw, act=b.act)
        c.squeeze_excite(b.mid or b.cout, b.se, out)
        if b.mid:
            c.conv(b.mid, b.cout, 1, 1, 1, out)
    if b.block in ("basic", "bottleneck"):
        if b.stride > 1 or b.cin != b.cout:
            c.conv(b.cin, b.cout, 1, b.stride, 1, hw)
        c.add_elems += out * out * b.cout
        c.acts[b.act] += out * out * b.cout
    elif b.stride == 1 and b.cin == b.cout:
        c.add_elems += out * out * b.cout
    return out


def activation_label(acts: dict[str, int]) -> str:
    """zoo.csv's ``activation``: labels with >= 10 % of the activation elements, largest first."""
    total = sum(acts.values()) or 1
    shares = sorted(((v / total, k) for k, v in acts.items() if v), reverse=True)
    return "+".join(k for s, k in shares if s >= ACT_SHARE_MIN) or "none"


def describe_plan(p: Plan) -> dict[str, Any]:
    """Every descriptor of ``p`` (per image, at its resolution)."""
    c = _Counter(Counter(), Counter())
    hw = c.conv(3, p.stem[0], p.stem[1], p.stem[2], 1, p.resolution, act=p.stem[3])
    for b in p.blocks:
        hw = _block(c, b, hw)
    last = p.blocks[-1].cout
    if p.head:
        c.conv(last, p.head, 1, 1, 1, hw, act=p.head_act)
        last = p.head
    c.macs["linear"] += last * p.num_classes
    c.params += last * p.num_classes + p.num_classes
    total = sum(c.macs.values())
    return {
        # zoo.csv columns
        "gmacs": total / 1e9, "params_m": c.params / 1e6, "img_size": p.resolution,
        "depthwise_mac_fraction": c.macs["dw"] / total, "has_se": int(c.se_blocks > 0),
        "activation": activation_label(c.acts),
        # speed features
        "macs": total, "params": c.params, **{f"macs_{k}": c.macs[k] for k in MAC_KINDS},
        **{f"act_{k}": c.acts[k] for k in ("relu", "hswish", "silu")},
        "se_blocks": c.se_blocks, "se_elems": c.se_elems, "add_elems": c.add_elems,
        "memory": c.memory, "convs": c.convs,
    }


MAC_KINDS = ("dense_kxk", "dense_1x1", "grouped", "dw", "se", "linear")


def describe(cand: Candidate) -> dict[str, Any]:
    """Descriptors of a candidate (1000 classes)."""
    return describe_plan(plan(cand))
