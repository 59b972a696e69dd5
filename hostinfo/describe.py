"""The system description of a submission: ``systems/<system>.json``.

Facts are read from the running machine (``hostinfo.probe``). A fact that cannot be read comes
from the system profile's ``system:`` mapping (``configs/<name>.yaml``) or from
explicit overrides; precedence is overrides > profile > detected. Nothing is
made up: a field still unknown is left out and reported by ``missing_fields``,
and ``write_system_json`` refuses to write a description with one missing.

Field names and which of them must be non-empty follow the round-v6.1
submission checker (``SYSTEM_DESC_REQUIRED_FIELDS`` and
``SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS`` in its ``constants.py``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping

from common.errors import ConfigError, SystemDescriptionError
from common.suggest import check_known
from hostinfo.probe import detect_host

log = logging.getLogger(__name__)

# Every field the checker requires to be present, in its order.
REQUIRED_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity",
    "host_storage_capacity", "host_storage_type", "accelerators_per_node", "accelerator_model_name",
    "accelerator_memory_capacity", "framework", "operating_system", "system_type", "other_software_stack",
    "host_processor_frequency", "host_processor_caches", "host_memory_configuration",
    "host_processor_interconnect", "host_networking", "host_networking_topology", "accelerator_frequency",
    "accelerator_host_interconnect", "accelerator_interconnect", "accelerator_interconnect_topology",
    "accelerator_memory_configuration", "accelerator_on-chip_memories", "cooling", "hw_notes", "sw_notes",
    "host_network_card_count", "system_type_detail",
)
# The subset that must also be non-empty (truthy).
NON_EMPTY_FIELDS = frozenset({
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count",
    "host_memory_capacity", "host_memory_configuration", "host_storage_capacity", "host_storage_type",
    "host_networking", "host_network_card_count", "host_networking_topology", "accelerators_per_node",
    "accelerator_model_name", "accelerator_memory_capacity", "accelerator_host_interconnect",
    "accelerator_memory_configuration", "accelerator_interconnect", "cooling", "framework",
    "operating_system", "other_software_stack",
})
# Fields that may legitimately be empty: written as "" when nothing else is known.
MAY_BE_EMPTY = tuple(f for f in REQUIRED_FIELDS if f not in NON_EMPTY_FIELDS)
# Optional fields a profile or override may also set (power and network-division submissions).
OPTIONAL_FIELDS = frozenset({
    "power_management", "filesystem", "boot_firmware_version", "management_firmware_version",
    "other_hardware", "number_of_type_nics_installed", "nics_enabled_firmware", "nics_enabled_os",
    "nics_enabled_connected", "network_speed_mbit", "power_supply_quantity_and_rating_watts",
    "power_supply_details", "disk_drives", "disk_controllers", "system_power_only",
    "system_power_capacity",
})
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS) | OPTIONAL_FIELDS
VALID_STATUS = ("available", "preview", "rdi")
VALID_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
NO_ACCELERATOR = "N/A"
_ACCELERATOR_FIELDS = ("accelerator_model_name", "accelerator_memory_capacity", "accelerator_frequency",
                       "accelerator_host_interconnect", "accelerator_interconnect",
                       "accelerator_interconnect_topology", "accelerator_memory_configuration",
                       "accelerator_on-chip_memories")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_folder_name(kind: str, name: str) -> str:
    """Submitter and system names become folder names: letters, digits, '.', '_', '-'."""
    if not _NAME_RE.match(name or ""):
        raise ConfigError(f"{kind} {name!r}: use letters, digits, '.', '_' and '-' only (it is a folder name)")
    return name


# ----------------------------------------------------------------------------- description
def harness_facts(org: str, division: str = "open", system_type: str = "edge") -> dict[str, str]:
    """Fields fixed by this harness and the entry: division, system type, one node, CPU only."""
    out = {"division": division, "submitter": org, "status": "available", "system_type": system_type,
           "number_of_nodes": "1", "accelerators_per_node": "0",
           "host_networking_topology": "N/A (single node: LoadGen and the SUT run in one process)"}
    out.update({name: NO_ACCELERATOR for name in _ACCELERATOR_FIELDS})
    return out


def _check_keys(data: Mapping[str, Any], origin: str) -> None:
    check_known(data, KNOWN_FIELDS, origin, "system description field", SystemDescriptionError)


def _text(value: Any) -> Any:
    """Numbers become strings (the checker treats 0 as empty); strings are stripped."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


def describe_system(profile_fields: Mapping[str, Any], org: str, overrides: Mapping[str, Any] | None = None,
                    *, origin: str = "system profile", division: str = "open", system_type: str = "edge",
                    sources: dict[str, str] | None = None, detect: bool = True) -> dict[str, Any]:
    """The ``systems/<system>.json`` content for this machine and submitter ``org``.

    ``profile_fields`` are the system profile's ``system:`` mapping (``origin`` names it in
    errors). Precedence: ``overrides`` > profile > detected > fixed defaults. A required
    field nothing supplies is left out: see ``missing_fields``. ``sources`` (if given) is
    filled with where each field came from.
    """
    check_folder_name("submitter", org)
    profile_fields = dict(profile_fields)
    _check_keys(profile_fields, origin)
    overrides = dict(overrides or {})
    _check_keys(overrides, "system overrides")
    fixed = harness_facts(org, division, system_type)
    detected = dict(detect_host()) if detect else {}
    desc: dict[str, Any] = {}
    where: dict[str, str] = {}
    for layer_name, layer in (("harness", fixed), ("detected", detected), ("profile", profile_fields),
                              ("override", overrides)):
        for key, value in layer.items():
            if layer_name in ("profile", "override") and key in detected and key not in fixed:
                seen = _text(detected[key])
                if _text(value) != seen and key in ("host_processor_core_count", "host_processors_per_node"):
                    log.warning("%s: %s = %r but this machine has %r", layer_name, key, value, seen)
            desc[key] = _text(value)
            where[key] = layer_name
    for key in MAY_BE_EMPTY:
        if key not in desc:
            desc[key] = ""
            where[key] = "empty"
    if sources is not None:
        sources.clear()
        sources.update(where)
    ordered = {k: desc[k] for k in REQUIRED_FIELDS if k in desc}
    ordered.update({k: v for k, v in sorted(desc.items()) if k not in ordered})
    return ordered


def missing_fields(desc: Mapping[str, Any]) -> list[str]:
    """Required fields that are absent, or empty where the checker wants a meaningful answer."""
    out = []
    for key in REQUIRED_FIELDS:
        if key not in desc or (key in NON_EMPTY_FIELDS and not desc[key]):
            out.append(key)
    return out


def description_problems(desc: Mapping[str, Any], division: str | None = None,
                         submitter: str | None = None) -> list[str]:
    """Every reason the checker (or our rules) would reject ``desc``; empty = fine."""
    problems = [f"field {k!r} is missing or empty" for k in missing_fields(desc)]
    status = str(desc.get("status", "")).lower()
    if status and status not in VALID_STATUS:
        problems.append(f"status {desc.get('status')!r} is not one of {VALID_STATUS}")
    if desc.get("system_type") and desc.get("system_type") not in VALID_SYSTEM_TYPES:
        problems.append(f"system_type {desc.get('system_type')!r} is not one of {VALID_SYSTEM_TYPES}")
    for key in ("number_of_nodes", "accelerators_per_node"):
        value = desc.get(key)
        if value not in (None, "") and not str(value).strip().isdigit():
            problems.append(f"{key} {value!r} is not a whole number (the checker multiplies them)")
    if division is not None and str(desc.get("division", "")).lower() != division.lower():
        problems.append(f"division {desc.get('division')!r} but the folder is {division!r}")
    if submitter is not None and str(desc.get("submitter", "")).lower() != submitter.lower():
        problems.append(f"submitter {desc.get('submitter')!r} but the folder is {submitter!r}")
    return problems


def write_system_json(path: Path, desc: Mapping[str, Any], allow_missing: bool = False) -> Path:
    """Write ``desc`` as ``systems/<system>.json``; refuse one with a missing required field."""
    path = Path(path)
    missing = missing_fields(desc)
    if missing and not allow_missing:
        raise SystemDescriptionError(
            f"{path}: system description lacks {', '.join(missing)} (not readable on this machine: set "
            f"{'it' if len(missing) == 1 else 'them'} in the profile's 'system:' mapping or with --set KEY=VALUE)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(desc), indent=4) + "\n")
    return path
