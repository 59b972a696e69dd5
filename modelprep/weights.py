"""Trained timm weights in: ``--model timm/NAME[.tag] --weights FILE`` (or ``--pretrained``) -> ONNX with a card.

A checkpoint is read here (``.safetensors`` with the ``safetensors`` package, ``.pth``/``.bin`` with
``torch.load(weights_only=True)``; a bare state dict, or one under ``state_dict``/``model`` as
timm's own checkpoint helpers accept, ``module.`` prefixes of a data-parallel save removed) and
loaded strictly into timm's architecture: every key present, none extra, every shape equal, or a
one-line ``ModelError`` naming the file and the first key that does not fit. ``--pretrained`` asks
timm's own hub loader instead, after a short reachability probe, so an offline machine gets one
line naming the tag rather than a hang.

The exported ONNX carries the card: ``trained: true``, the preprocessing of timm's pretrained
config for that tag (size, crop_pct, interpolation, mean/std), where the weights came from (file
and sha256, or the hub tag) and the tag's published top-1 from the zoo table (or that it is
unknown). Exports are cached by the checkpoint's sha256 (or the tag for hub weights).
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from common.errors import ConfigError, ModelError
from common.files import sha256_file

log = logging.getLogger(__name__)

TIMM_PREFIX = "timm/"
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".bin")
STATE_DICT_KEYS = ("state_dict", "model")  # a training checkpoint's weights, as timm's helpers look them up
HUB_PROBE_SECONDS = 5.0
# timm's interpolation names -> the dataset cache's OpenCV filters (models.zoo_table.INTERPOLATIONS).
INTERPOLATIONS = {"bicubic": "cubic", "bilinear": "linear", "area": "area"}


@dataclass(frozen=True)
class WeightsChoice:
    """Where a timm model's trained weights come from: a checkpoint file, or timm's hub (``--pretrained``)."""

    file: Path | None = None
    pretrained: bool = False

    def __post_init__(self) -> None:
        if self.file is not None and self.pretrained:
            raise ConfigError("--weights FILE and --pretrained: give one source of trained weights, not both")

    @property
    def given(self) -> bool:
        """Whether trained weights were asked for at all."""
        return self.file is not None or self.pretrained


def timm_name(spec: str, option: str) -> str:
    """``timm/NAME[.tag]`` -> ``NAME[.tag]``; anything else is a ``ConfigError`` naming ``option``."""
    if not spec.startswith(TIMM_PREFIX) or not spec[len(TIMM_PREFIX):]:
        raise ConfigError(f"{option} loads timm weights: --model must be timm/NAME[.tag] "
                          f"(e.g. timm/tf_efficientnet_lite0), got {spec!r}")
    return spec[len(TIMM_PREFIX):]


# ----------------------------------------------------------------------------- checkpoint files
def read_checkpoint(path: Path) -> dict[str, Any]:
    """The state dict in checkpoint ``path`` (one-line ``ModelError`` naming the file if it cannot be read)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise ModelError(f"{path}: expected a timm checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file  # noqa: PLC0415 - torch-side dependency (timm's)

            data: Any = load_file(str(path), device="cpu")
        else:
            import torch  # noqa: PLC0415 - the 'train' extra

            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch/safetensors raise many kinds; the user needs one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{path}: cannot read checkpoint: {first}") from None
    return _state_dict_of(data, path)


def _state_dict_of(data: Any, path: Path) -> dict[str, Any]:
    """The tensors of a loaded checkpoint: the dict itself, or its ``state_dict``/``model`` entry."""
    if isinstance(data, dict):
        for key in STATE_DICT_KEYS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not data:
        raise ModelError(f"{path}: no state dict (a mapping of tensor names to tensors, bare or under "
                         f"{' / '.join(STATE_DICT_KEYS)})")
    # A checkpoint saved from DataParallel/DistributedDataParallel prefixes every key.
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in data.items()}


def load_strict(model: Any, state: dict[str, Any], origin: Path) -> None:
    """Load ``state`` into ``model``: same keys, every shape equal, else a one-line ``ModelError``
    naming ``origin`` and the first key (in the model's order) that does not fit."""
    import torch  # noqa: PLC0415 - the 'train' extra

    target = model.state_dict()
    arch = type(model).__name__
    for key, slot in target.items():
        if key not in state:
            raise ModelError(f"{origin}: key {key} {tuple(slot.shape)} of {arch} is missing from the checkpoint "
                             f"({len(state)} tensors, the model has {len(target)})")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"{origin}: key {key} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(slot.shape):
            raise ModelError(f"{origin}: key {key} has shape {tuple(value.shape)}, {arch} expects "
                             f"{tuple(slot.shape)}")
    extra = [k for k in state if k not in target]
    if extra:
        raise ModelError(f"{origin}: key {extra[0]} {tuple(getattr(state[extra[0]], 'shape', ()))} is not in "
                         f"{arch} ({len(extra)} unexpected key(s))")
    model.load_state_dict(state, strict=True)


# ----------------------------------------------------------------------------- timm's hub
def _reachable(host: str, timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether a TCP connection to ``host``:443 opens within ``timeout`` seconds (name lookup included:
    it runs in a daemon thread, since a lookup ignores socket timeouts)."""
    done: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            done.append(True)
        except OSError:
            done.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(done and done[0])


def hub_weights(name: str, cfg: dict[str, Any]) -> Any:
    """timm ``name`` with its tag's weights from timm's hub loader; one-line ``ModelError`` naming the
    tag when timm publishes none or the machine cannot reach where they are."""
    from models._timm import hub_model  # noqa: PLC0415 - torch

    tag = f"{cfg['architecture']}.{cfg['tag']}"
    host = "huggingface.co" if cfg.get("hf_hub_id") else urlparse(cfg.get("url") or "").hostname
    if not host:
        raise ModelError(f"--pretrained timm/{tag}: timm publishes no weights for this tag")
    if not _reachable(host):
        raise ModelError(f"--pretrained timm/{tag}: cannot reach {host} (offline?); download the checkpoint "
                         "elsewhere and pass --weights FILE")
    try:
        return hub_model(tag)
    except Exception as exc:  # noqa: BLE001 - hub and HTTP errors of many kinds; the user needs one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"--pretrained timm/{tag}: timm's hub loader failed: {first}") from None


# ----------------------------------------------------------------------------- the card
def published_top1(tag: str) -> dict[str, Any]:
    """The zoo table's published FP32 top-1 of ``arch.tag`` and its source, or that it is unknown."""
    from models.zoo_table import load_zoo  # noqa: PLC0415

    for entry in load_zoo():
        if entry.key == tag:
            return {"published_top1_percent": entry.top1,
                    "published_top1_source": f"{entry.source} (timm's FP32 evaluation at {entry.img_size} px)"}
    return {"published_top1_percent": None, "published_top1_source": f"unknown: {tag} is not in the zoo table"}


def preprocessing_fields(cfg: dict[str, Any], tag: str) -> dict[str, Any]:
    """Card fields from timm's pretrained config of the tag: size, crop, filter, mean/std in 0..255 units."""
    height, width = (int(v) for v in cfg["input_size"][-2:])
    if height != width:
        raise ModelError(f"timm/{tag}: input {height}x{width} is not square; the harness serves square inputs")
    interpolation = INTERPOLATIONS.get(cfg.get("interpolation") or "bicubic")
    if interpolation is None:
        raise ModelError(f"timm/{tag}: interpolation {cfg.get('interpolation')!r} has no equivalent here "
                         f"({', '.join(INTERPOLATIONS)})")
    if (cfg.get("crop_mode") or "center") != "center":
        log.warning("timm/%s: timm evaluates with crop_mode %r; the harness resizes and centre-crops", tag,
                    cfg["crop_mode"])
    return {"input_size": height, "crop_pct": float(cfg.get("crop_pct") or 0.875), "interpolation": interpolation,
            "mean": [round(255.0 * m, 4) for m in cfg["mean"]], "std": [round(255.0 * s, 4) for s in cfg["std"]],
            # timm's label_offset 1 = a background class at index 0: the card subtracts it from the argmax.
            "label_offset": -int(cfg.get("label_offset") or 0)}


def trained_card(tag: str, cfg: dict[str, Any], weights: dict[str, Any], macs: int, params: int) -> dict[str, Any]:
    """The card an exported trained timm model carries in its ONNX metadata."""
    where = (f"checkpoint {weights['file']} (sha256 {weights['sha256']})" if weights["origin"] == "file"
             else f"timm's hub weights of {tag}")
    top1 = weights["published_top1_percent"]
    published = f"published top-1 {top1} % (timm's FP32 evaluation, zoo table)" if top1 is not None \
        else "published top-1 unknown (tag not in the zoo table)"
    return {"name": tag, **preprocessing_fields(cfg, tag), "macs": macs, "params": params, "trained": True,
            "weights": weights,
            "notes": f"trained weights: {where}, loaded strictly into timm {cfg['architecture']}; preprocessing from "
                     f"timm's pretrained config of {tag}; {published}"}


# ----------------------------------------------------------------------------- export
def export_trained_timm(spec: str, choice: WeightsChoice, out_dir: Path) -> Path:
    """``timm/NAME[.tag]`` with trained weights -> ONNX with its card in ``out_dir`` (reused when it exists)."""
    from models.export import export_onnx, file_stem  # noqa: PLC0415 - torch
    from models._macs import count_macs, count_params  # noqa: PLC0415
    from models._timm import create_timm, reparameterized, timm_pretrained_cfg  # noqa: PLC0415

    option = "--weights" if choice.file is not None else "--pretrained"
    cfg = timm_pretrained_cfg(timm_name(spec, option), option)
    tag = f"{cfg['architecture']}.{cfg['tag']}"
    if choice.file is not None:
        file = Path(choice.file)
        if not file.is_file():
            raise ModelError(f"{file}: weights file not found")
        digest = sha256_file(file)
        weights: dict[str, Any] = {"origin": "file", "file": file.name, "sha256": digest}
        out = Path(out_dir) / f"{file_stem('timm/' + tag)}.{digest[:12]}.onnx"
    else:
        weights = {"origin": "timm-hub", "hub_tag": tag, "hub_id": cfg.get("hf_hub_id") or cfg.get("url") or ""}
        out = Path(out_dir) / f"{file_stem('timm/' + tag)}.hub.onnx"
    if out.is_file():
        return out
    if choice.file is not None:
        model = create_timm(tag, num_classes=int(cfg.get("num_classes") or 1000))
        load_strict(model, read_checkpoint(choice.file), choice.file)
    else:
        model = hub_weights(tag, cfg)
    model = reparameterized(model.eval()).eval()
    weights.update(published_top1(tag))
    size = int(cfg["input_size"][-1])
    card = trained_card(tag, cfg, weights, count_macs(model, size), count_params(model))
    log.info("exporting timm/%s with trained weights (%s)", tag,
             weights.get("file") or weights.get("hub_tag"))
    tmp = out.with_name(f".{out.name}.partial")
    export_onnx(model, tmp, card, f"mlperf_cpu.modelprep.weights:{tag}")
    tmp.replace(out)
    return out
