"""Flags and argument helpers that several commands share.

Each command module adds its own flags; the ones here are spelled, documented and parsed once:
``--host-tuning``, ``--weights``/``--pretrained``, the model-card overrides, ``--watchdog-s``,
the system-description fields (``--org``, ``--set``, ``--system-fields``) and the log of the
parsed arguments.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from common.errors import ConfigError

log = logging.getLogger("mlperf_cpu")

DEFAULT_WORK = Path("work")


def log_arguments(args: argparse.Namespace) -> None:
    """Every parsed argument, one per line, at INFO (the run's log then says what it was asked)."""
    log.info("===== arguments =====")
    for key, value in sorted(vars(args).items()):
        if key not in ("handler", "command_line"):
            log.info("  %s = %s", key, value)


def add_host_tuning(parser: argparse.ArgumentParser) -> None:
    """``--host-tuning``, the one switch for changes beyond the harness's own process."""
    parser.add_argument("--host-tuning", action="store_true",
                        help="Server on the host profile: hold the CPU latency limit at 0 us (pm_qos; a busy loop "
                             "per CPU without root) on a virtual machine, run the issuing threads under SCHED_FIFO "
                             "and give the query threads short scheduler slices, for the test only (undone at its "
                             "end). Default: off, the host is left as it is")


def watchdog_seconds(text: str) -> float:
    """``--watchdog-s``: seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """``--weights`` and ``--pretrained`` (prepare and pipeline)."""
    w = parser.add_mutually_exclusive_group()
    w.add_argument("--weights", type=Path, metavar="FILE",
                   help="with --model timm/NAME[.tag]: a trained timm checkpoint (.safetensors, .pth, .bin), loaded "
                        "strictly; the card records its sha256, the tag's published top-1 and timm's preprocessing")
    w.add_argument("--pretrained", action="store_true",
                   help="with --model timm/NAME[.tag]: the tag's weights from timm's hub loader (needs the network)")


def weights_choice(args: argparse.Namespace) -> "WeightsChoice":  # noqa: F821 - imported lazily
    """``--weights FILE`` / ``--pretrained``: trained weights for ``--model timm/NAME[.tag]``."""
    from modelprep.weights import WeightsChoice

    return WeightsChoice(args.weights, args.pretrained)


def card_overrides(args: argparse.Namespace) -> dict:
    """The model-card fields given on the command line (``--name``, ``--mean``, ...), parsed."""
    out: dict = {}
    for key in ("name", "crop_pct", "interpolation", "label_offset"):
        if getattr(args, key, None) is not None:
            out[key] = getattr(args, key)
    for key in ("mean", "std"):
        text = getattr(args, key, None)
        if text is not None:
            try:
                values = tuple(float(v) for v in text.split(","))
            except ValueError:
                raise ConfigError(f"--{key} {text!r}: expected three numbers, e.g. 123.675,116.28,103.53") from None
            if len(values) != 3:
                raise ConfigError(f"--{key} {text!r}: expected three comma-separated numbers (R,G,B)")
            out[key] = values
    return out


def parse_assignments(items: list[str] | None, origin: str = "--set") -> dict[str, str]:
    """``["cooling=air", ...]`` -> ``{"cooling": "air"}``; values may contain '='."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{origin} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def load_overrides_file(path: Path) -> dict[str, Any]:
    """System description fields from a YAML or JSON mapping."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: invalid YAML/JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of system description fields")
    return data


def system_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--system-fields FILE`` then ``--set KEY=VALUE`` (which wins)."""
    out: dict[str, Any] = {}
    if args.system_fields is not None:
        out.update(load_overrides_file(args.system_fields))
    out.update(parse_assignments(args.set))
    return out


def add_system_field_args(p: argparse.ArgumentParser) -> None:
    """``--org``, ``--set`` and ``--system-fields`` (package and describe-system)."""
    p.add_argument("--org", required=True, help="submitting organisation (the open/<Org> folder name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a system description field (wins over the profile and detection); repeatable")
    p.add_argument("--system-fields", type=Path, metavar="FILE",
                   help="YAML/JSON mapping of system description fields (--set wins over it)")
