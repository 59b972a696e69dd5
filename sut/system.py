"""The system description of a submission: ``systems/<system>.json``.

Facts are read from the running machine with psutil, py-cpuinfo, the standard
library and a few single-value sysfs files. A fact that cannot be read comes
from the system profile's ``system:`` mapping (``configs/<name>.yaml``) or from
explicit overrides; precedence is overrides > profile > detected. Nothing is
made up: a field still unknown is left out and reported by ``missing_fields``,
and ``write_system_json`` refuses to write a description with one missing.

Field names and which of them must be non-empty follow the round-v6.1
submission checker (``SYSTEM_DESC_REQUIRED_FIELDS`` and
``SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS`` in its ``constants.py``).
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from sut.errors import ConfigError
from sut.profile import SystemProfile

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
# (display name, distribution names tried in order) for other_software_stack.
_STACK = (("MLCommons LoadGen", ("mlcommons-loadgen", "mlcommons_loadgen")), ("OpenVINO", ("openvino",)),
          ("NNCF", ("nncf",)), ("OpenCV", ("opencv-python-headless", "opencv-python")),
          ("NumPy", ("numpy",)))
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SystemDescriptionError(ConfigError):
    """The system description lacks a required field or has a wrong value."""


def check_folder_name(kind: str, name: str) -> str:
    """Submitter and system names become folder names: letters, digits, '.', '_', '-'."""
    if not _NAME_RE.match(name or ""):
        raise ConfigError(f"{kind} {name!r}: use letters, digits, '.', '_' and '-' only (it is a folder name)")
    return name


def distribution_version(*names: str) -> str | None:
    """Installed version of the first of ``names`` that is installed."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


# ----------------------------------------------------------------------------- detection
def _read(path: Path | str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _size_text(nbytes: float) -> str:
    """1073741824 -> '1 GiB'; 25276063744 -> '23.5 GiB'; 49152 -> '48 KiB'."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.0f} {unit}" if abs(value - round(value)) < 0.05 else f"{value:.1f} {unit}"
    return f"{nbytes:.0f} B"


def _sysfs_size(text: str) -> int | None:
    """sysfs cache sizes: '48K', '2048K', '480M'."""
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]


def _cpu_list_count(text: str) -> int:
    """'0-3,8' -> 5."""
    count = 0
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            count += int(hi) - int(lo) + 1
        elif part.strip():
            count += 1
    return count


def _cpu_topology() -> dict[str, int]:
    """Sockets, physical cores and logical CPUs (sysfs for sockets, psutil for the counts)."""
    import psutil

    logical = psutil.cpu_count(logical=True) or 0
    physical = psutil.cpu_count(logical=False) or 0
    packages = {_read(p) for p in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/physical_package_id")}
    packages.discard(None)
    return {"sockets": len(packages), "cores": physical, "threads": logical}


def _caches(threads_per_core: int) -> str | None:
    """'L1d 48 KiB + L1i 64 KiB per core, L2 2 MiB per core, L3 480 MiB shared by 2 CPUs' (sysfs of cpu0)."""
    parts = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index[0-9]*")):
        level, ctype, size = _read(index / "level"), _read(index / "type"), _read(index / "size")
        shared = _read(index / "shared_cpu_list")
        nbytes = _sysfs_size(size or "")
        if not level or not ctype or nbytes is None:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(ctype, "")
        sharers = _cpu_list_count(shared) if shared else 0
        scope = "per core" if 0 < sharers <= max(threads_per_core, 1) else (
            f"shared by {sharers} CPUs" if sharers else "")
        parts.append((name, _size_text(nbytes), scope))
    if not parts:
        return None
    out: list[str] = []
    for name, size, scope in parts:
        if out and name.startswith("L1i") and out[-1].startswith("L1d") and scope == "per core":
            out[-1] = out[-1].replace(" per core", f" + {name} {size} per core")
            continue
        out.append(f"{name} {size}" + (f" {scope}" if scope else ""))
    return ", ".join(out)


def _frequency(info: Mapping[str, Any]) -> str | None:
    import psutil

    freq = None
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        pass
    if freq is not None and freq.max:
        return f"{freq.max:.0f} MHz (max)"
    hz = info.get("hz_advertised") or info.get("hz_actual")
    if hz and hz[0]:
        return f"{hz[0] / 1e6:.0f} MHz"
    if freq is not None and freq.current:
        return f"{freq.current:.0f} MHz"
    return None


def _memory_configuration() -> str | None:
    """DIMM population from SMBIOS (``dmidecode -t 17``), when it can be read (root, real firmware tables)."""
    exe = shutil.which("dmidecode")
    if exe is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        out = subprocess.run([exe, "-t", "17"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    groups: dict[tuple[str, str, str], int] = {}
    for block in out.split("\n\n"):
        if "Memory Device" not in block:
            continue
        fields = dict(re.findall(r"^\s*([A-Za-z ]+):\s*(.+?)\s*$", block, flags=re.M))
        size = fields.get("Size", "")
        if not size or size.startswith("No Module") or size in ("Unknown", "Not Installed"):
            continue
        key = (size, fields.get("Type", "Unknown"), fields.get("Configured Memory Speed") or fields.get("Speed", ""))
        groups[key] = groups.get(key, 0) + 1
    if not groups:
        return None
    return ", ".join(f"{n}x {size} {mtype}" + (f" {speed}" if speed and speed != "Unknown" else "")
                     for (size, mtype, speed), n in sorted(groups.items()))


def _root_block_device(path: Path) -> Path | None:
    """/sys/block/<disk> holding the filesystem of ``path`` (partition -> its disk)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    dev = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not dev.exists():
        return None
    real = dev.resolve()
    if (real / "partition").exists():
        real = real.parent
    return real if (real / "size").exists() else None


def _storage(path: Path) -> tuple[str | None, str | None]:
    """(capacity, type) of the disk holding ``path``; type only from the kernel driver."""
    import psutil

    disk = _root_block_device(path)
    capacity = kind = None
    if disk is not None:
        sectors = _read(disk / "size")
        if sectors and sectors.isdigit() and int(sectors):
            capacity = _size_text(int(sectors) * 512)
        link = disk / "device" / "driver"
        driver = os.path.basename(os.path.realpath(link)) if link.exists() else ""
        rotational = _read(disk / "queue" / "rotational")
        if disk.name.startswith("nvme") or driver == "nvme":
            kind = "NVMe"
        elif driver == "virtio_blk" or disk.name.startswith("vd"):
            kind = "Virtual disk (virtio-blk)"
        elif driver in ("xen-blkfront", "vbd"):
            kind = "Virtual disk (Xen blkfront)"
        elif disk.name.startswith("sd") and rotational == "0":
            kind = "SSD (SATA/SAS/SCSI)"  # rotational=1 is not trusted: many VMs report it for SSDs
    if capacity is None:
        try:
            capacity = _size_text(psutil.disk_usage(str(path)).total) + " (filesystem)"
        except OSError:
            pass
    return capacity, kind


def _networking() -> tuple[str | None, str | None]:
    """(description, card count) of the device-backed network interfaces."""
    import psutil

    nics = []
    stats = psutil.net_if_stats()
    for iface in sorted(p for p in Path("/sys/class/net").glob("*") if (p / "device").exists()):
        driver = os.path.basename(os.path.realpath(iface / "device" / "driver"))
        speed = stats[iface.name].speed if iface.name in stats else 0
        nics.append(f"{iface.name} ({driver}" + (f", {speed} Mb/s)" if speed and speed > 0 else
                                                  ", speed not reported)"))
    if not nics:
        return None, None
    return "; ".join(nics), str(len(nics))


def _dmi_system_name() -> str | None:
    vendor = _read("/sys/class/dmi/id/sys_vendor")
    product = _read("/sys/class/dmi/id/product_name")
    name = " ".join(p for p in (vendor, product) if p and p.lower() not in ("", "none", "to be filled by o.e.m."))
    return name or None


def _operating_system() -> str:
    try:
        pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        pretty = None
    return f"{pretty or platform.system()} (kernel {platform.release()}, {platform.machine()})"


def software_stack() -> tuple[str | None, str]:
    """('OpenVINO <version>', 'Python 3.x, MLCommons LoadGen ..., ...') from the installed distributions."""
    ov = distribution_version("openvino")
    parts = [f"Python {platform.python_version()}"]
    for label, names in _STACK:
        version = distribution_version(*names)
        if version:
            parts.append(f"{label} {version}")
    return (f"OpenVINO {ov}" if ov else None), ", ".join(parts)


@functools.lru_cache(maxsize=1)
def detect_host(storage_path: str = "/") -> dict[str, str]:
    """Everything readable about this machine, as system-description fields (missing ones left out)."""
    try:
        import cpuinfo
    except ImportError:
        raise ConfigError("py-cpuinfo is not installed (pip install 'py-cpuinfo>=9.0'); it reads the CPU "
                          "model and frequency for the system description") from None

    info = cpuinfo.get_cpu_info()
    topo = _cpu_topology()
    out: dict[str, str] = {}
    brand = info.get("brand_raw")
    if brand:
        out["host_processor_model_name"] = brand
    sockets = topo["sockets"]
    if sockets:
        out["host_processors_per_node"] = str(sockets)
        if sockets == 1:
            out["host_processor_interconnect"] = "N/A (single socket)"
        if topo["cores"] and topo["cores"] % sockets == 0:
            out["host_processor_core_count"] = str(topo["cores"] // sockets)
    threads_per_core = topo["threads"] // topo["cores"] if topo["cores"] else 1
    freq = _frequency(info)
    if freq:
        out["host_processor_frequency"] = freq
    caches = _caches(threads_per_core)
    if caches:
        out["host_processor_caches"] = caches
    import psutil

    out["host_memory_capacity"] = _size_text(psutil.virtual_memory().total) + " (visible to the OS)"
    mem_cfg = _memory_configuration()
    if mem_cfg:
        out["host_memory_configuration"] = mem_cfg
    capacity, kind = _storage(Path(storage_path))
    if capacity:
        out["host_storage_capacity"] = capacity
    if kind:
        out["host_storage_type"] = kind
    net, nic_count = _networking()
    if net:
        out["host_networking"] = net
        out["host_network_card_count"] = nic_count or ""
    out["operating_system"] = _operating_system()
    framework, stack = software_stack()
    if framework:
        out["framework"] = framework
    out["other_software_stack"] = stack
    name = _dmi_system_name()
    if name:
        out["system_name"] = name
    flags = set(info.get("flags", []))
    isa = [label for flag, label in (("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"),
                                     ("avx512_bf16", "AVX-512 BF16"), ("amx_bf16", "AMX-BF16"),
                                     ("amx_int8", "AMX-INT8")) if flag in flags]
    notes = [f"{topo['cores']} cores / {topo['threads']} threads visible to the OS"]
    if "hypervisor" in flags:
        notes.append("virtual machine (hypervisor CPU flag)")
    if isa:
        notes.append("ISA: " + ", ".join(isa))
    out["hw_notes"] = "; ".join(notes)
    return out


# ----------------------------------------------------------------------------- description
def harness_facts(org: str) -> dict[str, str]:
    """Fields fixed by this harness: open division, edge, one node, CPU only (no accelerator)."""
    out = {"division": "open", "submitter": org, "status": "available", "system_type": "edge",
           "number_of_nodes": "1", "accelerators_per_node": "0",
           "host_networking_topology": "N/A (single node: LoadGen and the SUT run in one process)"}
    out.update({name: NO_ACCELERATOR for name in _ACCELERATOR_FIELDS})
    return out


def _check_keys(data: Mapping[str, Any], origin: str) -> None:
    for key in data:
        if key not in KNOWN_FIELDS:
            near = difflib.get_close_matches(key, sorted(KNOWN_FIELDS), n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SystemDescriptionError(f"{origin}: unknown system description field {key!r}{hint}")


def _text(value: Any) -> Any:
    """Numbers become strings (the checker treats 0 as empty); strings are stripped."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return value


def describe_system(profile: SystemProfile | None, org: str, overrides: Mapping[str, Any] | None = None,
                    *, sources: dict[str, str] | None = None, detect: bool = True) -> dict[str, Any]:
    """The ``systems/<system>.json`` content for this machine, submitter ``org``, open division.

    Precedence: ``overrides`` > ``profile.system`` > detected > fixed defaults. A required
    field nothing supplies is left out: see ``missing_fields``. ``sources`` (if given) is
    filled with where each field came from.
    """
    check_folder_name("submitter", org)
    profile_fields = dict(profile.system) if profile is not None else {}
    origin = f"system profile {profile.name!r}: system" if profile is not None else "profile"
    _check_keys(profile_fields, origin)
    overrides = dict(overrides or {})
    _check_keys(overrides, "system overrides")
    fixed = harness_facts(org)
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


if __name__ == "__main__":  # quick look: python -m sut.system
    print(json.dumps(detect_host(), indent=2), file=sys.stdout)
