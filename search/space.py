"""The DeciNet-style search space: what a candidate network is, and which ones may be searched.

A ``Candidate`` is plain data (a frozen dataclass, YAML/JSON round-trip): the input
resolution, a stem, per-stage genes (block type, depth, width, stride, kernel,
expansion, groups, squeeze-excitation, activation) and an optional 1x1 head conv.
``plan`` resolves it into the exact layer widths (``Plan``) that the torch builder
(``models.searchnet``) builds and that ``search.descriptors`` counts without torch,
so the rules that turn genes into channels live here only.

A ``SearchSpace`` lists the allowed values of every gene; it is data too (YAML),
validated once, and it samples and mutates candidates.

Block types (all with BatchNorm after every conv, which folds away at export):

* ``basic``      kxk -> kxk (grouped by ``groups``), projection shortcut, act after the add
* ``bottleneck`` 1x1 -> kxk (stride, groups) -> 1x1, inner width ``width / expansion``
* ``ir``         inverted residual (MBConv): 1x1 to ``in x expansion`` -> depthwise kxk -> 1x1;
                 identity residual only when shapes match (MobileNetV2)
* ``fused``      fused-MBConv: kxk to ``in x expansion`` -> 1x1 (expansion 1: one kxk conv)

SE sits on the widest tensor of the block (ir/fused: the expanded one; basic/bottleneck: the
output, before the add); its squeeze width is a quarter of its channels (at least 8).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from common.errors import ConfigError
from common.suggest import check_known

BLOCKS = ("basic", "bottleneck", "ir", "fused")
ACTIVATIONS = ("relu", "hswish", "silu")
TOTAL_STRIDE = 32  # every candidate ends at resolution / 32 (7x7 at 224), like the zoo


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``): INT8
    kernels run whole vectors of channels."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


# ----------------------------------------------------------------------------- candidates
@dataclass(frozen=True)
class StageGene:
    """One stage: ``depth`` blocks of ``block``, ending with ``width`` channels; the first has ``stride``."""

    block: str
    depth: int
    width: int
    stride: int = 2
    kernel: int = 3
    expansion: int = 1
    groups: int = 1
    se: bool = False
    act: str = "relu"


@dataclass(frozen=True)
class Candidate:
    """A whole network of the space (ImageNet head: 1000 classes)."""

    resolution: int
    stem_width: int
    stages: tuple[StageGene, ...]
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_act: str = "relu"
    head_width: int = 0  # 0: no 1x1 conv before the pooling

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists), as written to YAML/JSON."""
        data = asdict(self)
        data["stages"] = [asdict(s) for s in self.stages]
        return data

    def key(self) -> str:
        """Stable short identifier (the measurement cache's key and file names)."""
        import hashlib

        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def summary(self) -> str:
        """One line: resolution, stem and each stage as ``block x depth @ width``."""
        parts = [f"{s.block}{'+se' if s.se else ''} k{s.kernel} e{s.expansion} g{s.groups} {s.act} "
                 f"x{s.depth} @{s.width}/{s.stride}" for s in self.stages]
        head = f", head {self.head_width}" if self.head_width else ""
        return (f"{self.resolution}px, stem {self.stem_kernel}x{self.stem_kernel}/{self.stem_stride} "
                f"@{self.stem_width} {self.stem_act}; " + "; ".join(parts) + head)


def _field(data: dict[str, Any], key: str, kind: type, origin: str, default: Any = ...) -> Any:
    """``data[key]`` checked against ``kind`` (one-line error naming ``origin.key``)."""
    if key not in data:
        if default is ...:
            raise ConfigError(f"{origin}: missing key {key!r}")
        return default
    value = data[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{origin}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _check_keys(data: Any, allowed: set[str], origin: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping, got {type(data).__name__}")
    check_known(data, allowed, origin)


def _choice(value: Any, options: tuple, origin: str) -> Any:
    if value not in options:
        raise ConfigError(f"{origin}: expected one of {list(options)}, got {value!r}")
    return value


def stage_from_dict(data: Any, origin: str) -> StageGene:
    """A validated ``StageGene`` from plain data."""
    _check_keys(data, {f for f in StageGene.__dataclass_fields__}, origin)
    gene = StageGene(
        block=_choice(_field(data, "block", str, origin), BLOCKS, f"{origin}.block"),
        depth=_field(data, "depth", int, origin), width=_field(data, "width", int, origin),
        stride=_choice(_field(data, "stride", int, origin, 2), (1, 2), f"{origin}.stride"),
        kernel=_choice(_field(data, "kernel", int, origin, 3), (1, 3, 5, 7), f"{origin}.kernel"),
        expansion=_field(data, "expansion", int, origin, 1), groups=_field(data, "groups", int, origin, 1),
        se=_field(data, "se", bool, origin, False),
        act=_choice(_field(data, "act", str, origin, "relu"), ACTIVATIONS, f"{origin}.act"))
    for key in ("depth", "width", "expansion", "groups"):
        if getattr(gene, key) < 1:
            raise ConfigError(f"{origin}.{key}: expected >= 1, got {getattr(gene, key)}")
    if gene.width % 8:
        raise ConfigError(f"{origin}.width: expected a multiple of 8, got {gene.width}")
    if gene.groups > 1 and gene.block not in ("basic", "bottleneck"):
        raise ConfigError(f"{origin}.groups: only basic/bottleneck blocks are grouped (ir is depthwise)")
    return gene


def candidate_from_dict(data: Any, origin: str = "candidate") -> Candidate:
    """A validated ``Candidate`` from plain data (``ConfigError`` naming the key otherwise)."""
    _check_keys(data, {f for f in Candidate.__dataclass_fields__}, origin)
    stages = _field(data, "stages", list, origin)
    if not stages:
        raise ConfigError(f"{origin}.stages: expected at least one stage")
    cand = Candidate(
        resolution=_field(data, "resolution", int, origin), stem_width=_field(data, "stem_width", int, origin),
        stages=tuple(stage_from_dict(s, f"{origin}.stages[{i}]") for i, s in enumerate(stages)),
        stem_kernel=_field(data, "stem_kernel", int, origin, 3), stem_stride=_field(data, "stem_stride", int, origin, 2),
        stem_act=_choice(_field(data, "stem_act", str, origin, "relu"), ACTIVATIONS, f"{origin}.stem_act"),
        head_width=_field(data, "head_width", int, origin, 0))
    if (cand.stem_kernel, cand.stem_stride) not in ((3, 2), (4, 4)):
        raise ConfigError(f"{origin}.stem_kernel/stem_stride: expected 3/2 or 4/4 (patchify), got "
                          f"{cand.stem_kernel}/{cand.stem_stride}")
    stride = cand.stem_stride
    for s in cand.stages:
        stride *= s.stride
    if stride != TOTAL_STRIDE:
        raise ConfigError(f"{origin}: total stride is {stride}, expected {TOTAL_STRIDE} (stem x stage strides)")
    if cand.resolution % TOTAL_STRIDE:
        raise ConfigError(f"{origin}.resolution: expected a multiple of {TOTAL_STRIDE}, got {cand.resolution}")
    return cand


def _load_data(path: Path) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML/JSON") from None


def load_candidate(path: Path) -> Candidate:
    """Read a candidate from YAML or JSON."""
    return candidate_from_dict(_load_data(path), str(path))


# ----------------------------------------------------------------------------- resolved layers
@dataclass(frozen=True)
class BlockPlan:
    """One block with every width resolved. ``mid`` 0: no expansion (ir: depthwise on the input;
    fused: one kxk conv); ``se`` 0: no squeeze-excitation, else its squeeze width."""

    block: str
    cin: int
    mid: int
    cout: int
    kernel: int
    stride: int
    groups: int
    se: int
    act: str


@dataclass(frozen=True)
class Plan:
    """The resolved network: what ``models.searchnet.SearchNet`` builds."""

    resolution: int
    stem: tuple[int, int, int, str]  # width, kernel, stride, act
    blocks: tuple[BlockPlan, ...]
    head: int
    head_act: str
    num_classes: int = 1000

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (blocks as lists in ``BlockPlan`` field order)."""
        return {"resolution": self.resolution, "stem": list(self.stem), "head": self.head,
                "head_act": self.head_act, "num_classes": self.num_classes,
                "blocks": [[getattr(b, f) for f in BlockPlan.__dataclass_fields__] for b in self.blocks]}


def _block_mid(gene: StageGene, cin: int) -> int:
    if gene.block == "bottleneck":
        return make_divisible(gene.width / gene.expansion)
    if gene.block in ("ir", "fused"):
        return 0 if gene.expansion == 1 else make_divisible(cin * gene.expansion)
    return gene.width  # basic: both convs at the output width


def se_width(channels: int) -> int:
    """Squeeze width of an SE on ``channels``."""
    return make_divisible(channels / 4)


def se_channels(b: BlockPlan) -> int:
    """Channels the SE of block ``b`` gates (its widest tensor)."""
    if b.block in ("ir", "fused"):
        return b.mid or (b.cin if b.block == "ir" else b.cout)
    return b.cout


def plan(cand: Candidate, num_classes: int = 1000) -> Plan:
    """Resolve ``cand`` into exact layer widths."""
    blocks: list[BlockPlan] = []
    cin = cand.stem_width
    for gene in cand.stages:
        for i in range(gene.depth):
            mid = _block_mid(gene, cin)
            b = BlockPlan(gene.block, cin, mid, gene.width, gene.kernel, gene.stride if i == 0 else 1,
                          gene.groups, 0, gene.act)
            if gene.se:
                b = replace(b, se=se_width(se_channels(b)))
            blocks.append(b)
            cin = gene.width
    last_act = cand.stages[-1].act
    return Plan(cand.resolution, (cand.stem_width, cand.stem_kernel, cand.stem_stride, cand.stem_act),
                tuple(blocks), cand.head_width, last_act, num_classes)


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """Inverse of ``Plan.to_dict`` (the registered searched models store this form)."""
    return Plan(int(data["resolution"]), tuple(data["stem"]), tuple(BlockPlan(*b) for b in data["blocks"]),
                int(data["head"]), data["head_act"], int(data.get("num_classes", 1000)))


# ----------------------------------------------------------------------------- the space
@dataclass(frozen=True)
class StageChoices:
    """Allowed genes of one stage."""

    stride: int
    depth: tuple[int, ...]
    width: tuple[int, ...]
    block: tuple[str, ...] = BLOCKS
    kernel: tuple[int, ...] = (3, 5)
    expansion: tuple[int, ...] = (1, 2, 3, 4, 6)
    groups: tuple[int, ...] = (1,)
    se: tuple[bool, ...] = (False, True)
    act: tuple[str, ...] = ACTIVATIONS


@dataclass(frozen=True)
class SearchSpace:
    """Allowed values of every gene. A 4x4/4 (patchify) stem takes over the first strided stage's
    downsampling (that stage then has stride 1), so every candidate ends at resolution / 32."""

    resolution: tuple[int, ...]
    stem_width: tuple[int, ...]
    stem: tuple[tuple[int, int], ...]  # (kernel, stride)
    stem_act: tuple[str, ...]
    head_width: tuple[int, ...]
    stages: tuple[StageChoices, ...] = field(default_factory=tuple)

    def sample(self, rng: random.Random) -> Candidate:
        """A uniformly random candidate."""
        kernel, stride = rng.choice(self.stem)
        genes = []
        for st in self.stages:
            block = rng.choice(st.block)
            genes.append(StageGene(block=block, depth=rng.choice(st.depth), width=rng.choice(st.width),
                                   stride=st.stride, kernel=rng.choice(st.kernel),
                                   expansion=rng.choice(self._expansions(st, block)),
                                   groups=rng.choice(st.groups) if block in ("basic", "bottleneck") else 1,
                                   se=rng.choice(st.se), act=rng.choice(st.act)))
        cand = Candidate(rng.choice(self.resolution), rng.choice(self.stem_width), tuple(genes), kernel, stride,
                         rng.choice(self.stem_act), rng.choice(self.head_width))
        return self._fix_strides(cand)

    @staticmethod
    def _expansions(st: StageChoices, block: str) -> tuple[int, ...]:
        if block == "basic":
            return (1,)
        if block == "bottleneck":  # a reduction: inner width = width / expansion
            return tuple(e for e in st.expansion if e in (2, 4)) or (4,)
        return st.expansion

    def _fix_strides(self, cand: Candidate) -> Candidate:
        """Stage strides from the space, the first strided one set to 1 under a stride-4 stem."""
        genes = [replace(g, stride=st.stride) for g, st in zip(cand.stages, self.stages)]
        if cand.stem_stride == 4:
            first = next(i for i, g in enumerate(genes) if g.stride == 2)
            genes[first] = replace(genes[first], stride=1)
        return replace(cand, stages=tuple(genes))

    def mutate(self, cand: Candidate, rng: random.Random, n: int = 1) -> Candidate:
        """``cand`` with ``n`` genes redrawn (a random donor supplies the new values, so they are valid)."""
        donor = self.sample(rng)
        for _ in range(n):
            which = rng.randrange(len(self.stages) + 3)
            if which == 0:
                cand = replace(cand, resolution=donor.resolution)
            elif which == 1:
                cand = replace(cand, stem_width=donor.stem_width, stem_kernel=donor.stem_kernel,
                               stem_stride=donor.stem_stride, stem_act=donor.stem_act)
            elif which == 2:
                cand = replace(cand, head_width=donor.head_width)
            else:
                i = which - 3
                attr = rng.choice(("block", "depth", "width", "kernel", "expansion", "se", "act", "groups"))
                old, new = cand.stages[i], donor.stages[i]
                if attr in ("block", "expansion", "groups"):  # these three must agree with each other
                    gene = replace(old, block=new.block, expansion=new.expansion, groups=new.groups)
                else:
                    gene = replace(old, **{attr: getattr(new, attr)})
                cand = replace(cand, stages=cand.stages[:i] + (gene,) + cand.stages[i + 1:])
        return self._fix_strides(cand)

    def crossover(self, a: Candidate, b: Candidate, rng: random.Random) -> Candidate:
        """Each stage (and the global genes) from ``a`` or ``b`` at random."""
        stages = tuple(rng.choice((x, y)) for x, y in zip(a.stages, b.stages))
        g = rng.choice((a, b))
        return self._fix_strides(replace(g, stages=stages, resolution=rng.choice((a, b)).resolution))


def space_from_dict(data: Any, origin: str = "space") -> SearchSpace:
    """A validated ``SearchSpace`` from plain data (``ConfigError`` naming the key otherwise)."""
    _check_keys(data, set(SearchSpace.__dataclass_fields__), origin)

    def seq(d: dict, key: str, kind: type, where: str, options: tuple | None = None) -> tuple:
        values = d.get(key)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{key}: expected a non-empty list, got {values!r}")
        for v in values:
            if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
                raise ConfigError(f"{where}.{key}: expected {kind.__name__} values, got {v!r}")
            if options is not None and v not in options:
                raise ConfigError(f"{where}.{key}: expected values in {list(options)}, got {v!r}")
        return tuple(values)

    stem = tuple(tuple(s) if isinstance(s, list) else s for s in seq(data, "stem", list, origin))
    for s in stem:
        if s not in ((3, 2), (4, 4)):
            raise ConfigError(f"{origin}.stem: expected [3, 2] or [4, 4] (kernel, stride), got {list(s)}")
    stages = []
    raw = data.get("stages")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{origin}.stages: expected a non-empty list of stages")
    for i, st in enumerate(raw):
        where = f"{origin}.stages[{i}]"
        _check_keys(st, set(StageChoices.__dataclass_fields__), where)
        stride = _choice(_field(st, "stride", int, where), (1, 2), f"{where}.stride")
        stages.append(StageChoices(
            stride=stride, depth=seq(st, "depth", int, where), width=seq(st, "width", int, where),
            block=seq(st, "block", str, where, BLOCKS) if "block" in st else BLOCKS,
            kernel=seq(st, "kernel", int, where, (1, 3, 5, 7)) if "kernel" in st else (3, 5),
            expansion=seq(st, "expansion", int, where) if "expansion" in st else (1, 2, 3, 4, 6),
            groups=seq(st, "groups", int, where) if "groups" in st else (1,),
            se=seq(st, "se", bool, where) if "se" in st else (False, True),
            act=seq(st, "act", str, where, ACTIVATIONS) if "act" in st else ACTIVATIONS))
        for w in stages[-1].width:
            if w % 8:
                raise ConfigError(f"{where}.width: expected multiples of 8, got {w}")
    space = SearchSpace(resolution=seq(data, "resolution", int, origin), stem_width=seq(data, "stem_width", int, origin),
                        stem=stem, stem_act=seq(data, "stem_act", str, origin, ACTIVATIONS),
                        head_width=seq(data, "head_width", int, origin), stages=tuple(stages))
    stride = 2 * 2 ** sum(st.stride == 2 for st in space.stages)
    if stride != TOTAL_STRIDE:
        raise ConfigError(f"{origin}.stages: a 3x3/2 stem and these stage strides give total stride {stride}, "
                          f"expected {TOTAL_STRIDE}")
    for r in space.resolution:
        if r % TOTAL_STRIDE:
            raise ConfigError(f"{origin}.resolution: expected multiples of {TOTAL_STRIDE}, got {r}")
    return space


def load_space(path: Path) -> SearchSpace:
    """Read a search space from YAML."""
    return space_from_dict(_load_data(path), str(path))


# Five stages after a 3x3/2 stem: 56, 28, 14, 14, 7 at 224 (resolutions inside the zoo table's range) (EfficientNet's layout without its
# 112x112 stage, which is memory-bound on CPUs). Widths span MobileNetV3 to ResNet-34 sizes.
DEFAULT_SPACE = SearchSpace(
    resolution=(224, 256),
    stem_width=(16, 24, 32, 48, 64),
    stem=((3, 2), (4, 4)),
    stem_act=ACTIVATIONS,
    head_width=(0, 1024, 1280),
    stages=(
        StageChoices(stride=2, depth=(1, 2, 3), width=(24, 32, 48, 64), groups=(1, 2)),
        StageChoices(stride=2, depth=(1, 2, 3, 4), width=(40, 48, 64, 96, 128), groups=(1, 2, 4)),
        StageChoices(stride=2, depth=(2, 3, 4, 5), width=(80, 96, 128, 192, 256), groups=(1, 2, 4)),
        StageChoices(stride=1, depth=(1, 2, 3, 4, 5), width=(112, 128, 160, 192, 256, 320), groups=(1, 2, 4)),
        StageChoices(stride=2, depth=(1, 2, 3, 4), width=(192, 256, 320, 384, 512, 640), groups=(1, 2, 4)),
    ),
)


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """Plain data (lists) of ``space``, as ``space_from_dict`` reads it."""
    def lists(x: Any) -> Any:
        if isinstance(x, (tuple, list)):
            return [lists(v) for v in x]
        if isinstance(x, dict):
            return {k: lists(v) for k, v in x.items()}
        return x

    return lists(asdict(space))
