"""Reading facts about the running machine: cores, CPU, caches, memory, storage, network, software.

psutil, py-cpuinfo, the standard library and a few single-value sysfs files; nothing is
guessed. ``physical_cores`` sizes the derived ``host`` profile; ``detect_host`` feeds the
system description.
"""

from __future__ import annotations

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

from common.errors import ConfigError
from common.files import write_text_atomic

log = logging.getLogger(__name__)

# (display name, distribution names tried in order) for other_software_stack.
_STACK = (("MLCommons LoadGen", ("mlcommons-loadgen", "mlcommons_loadgen")), ("OpenVINO", ("openvino",)),
          ("NNCF", ("nncf",)), ("OpenCV", ("opencv-python-headless", "opencv-python")),
          ("NumPy", ("numpy",)))


def distribution_version(*names: str) -> str | None:
    """Installed version of the first of ``names`` that is installed."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None



PROJECT = "mlperf-cpu"  # this project's distribution name (pyproject.toml)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: importlib.metadata.Distribution, extras: set[str]) -> list[tuple[str, set[str]]]:
    """(name, extras) of what ``dist`` requires with ``extras`` on this interpreter and platform (markers
    evaluated, so a backport for older Pythons is not recorded because another tool vendors it)."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        out.append((req.name, set(req.extras)))
    return out


def installed_versions() -> dict[str, str]:
    """Version of this project and of every installed distribution it depends on, directly or
    through another, with any of its extras: {canonical name: version}, sorted by name."""
    try:
        root = importlib.metadata.distribution(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        return {PROJECT: "not installed"}
    seen: dict[str, str] = {}
    every_extra = set(root.metadata.get_all("Provides-Extra") or [])
    todo: list[tuple[importlib.metadata.Distribution, set[str]]] = [(root, every_extra)]
    while todo:
        dist, extras = todo.pop()
        seen[_canonical(dist.metadata["Name"])] = dist.version
        for name, sub in _requirements(dist, extras):
            if _canonical(name) in seen:
                continue
            try:
                todo.append((importlib.metadata.distribution(name), sub))
            except importlib.metadata.PackageNotFoundError:
                continue  # an extra that is not installed
    return dict(sorted(seen.items()))


def run_versions() -> dict[str, str]:
    """What a run record's ``versions`` holds: Python, LoadGen, OpenVINO and NNCF under short names,
    then ``installed_versions()``."""
    short = {"python": platform.python_version(), "loadgen": distribution_version("mlcommons-loadgen") or "",
             "openvino": distribution_version("openvino") or "", "nncf": distribution_version("nncf") or ""}
    return {**short, **installed_versions()}


def versions_text() -> str:
    """``installed_versions()`` as pip constraints (``name==version`` lines, the Python version first
    as a comment): what ``src/versions.txt`` of a submission holds."""
    versions = installed_versions()
    lines = [f"# Python {platform.python_version()} on {platform.machine()}; pip install -c this-file reproduces it"]
    lines += [f"{name}=={version}" for name, version in versions.items() if name != PROJECT]
    lines.append(f"# {PROJECT}=={versions.get(PROJECT, 'not installed')} (the code in this src/)")
    return "\n".join(lines) + "\n"


def write_versions(path: Path) -> Path:
    """Write ``versions_text()`` to ``path`` (atomically); returns ``path``."""
    return write_text_atomic(path, versions_text())


def physical_cores() -> int:
    """Physical cores available to this process (affinity-aware)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or 0
    except ImportError:  # psutil is a declared dependency; this only guards odd installs
        cores = 0
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores or allowed, allowed))


def virtual_machine() -> bool:
    """Whether this CPU says it runs under a hypervisor (the ``hypervisor`` flag of /proc/cpuinfo)."""
    text = _read("/proc/cpuinfo") or ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "hypervisor" in flags


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
    out = {**_processor_fields(info, topo), **_memory_storage_network_fields(Path(storage_path)),
           **_software_fields()}
    out["hw_notes"] = _hw_notes(info, topo)
    return out


def _processor_fields(info: dict[str, Any], topo: dict[str, int]) -> dict[str, str]:
    """The host_processor_* fields from py-cpuinfo's ``info`` and the sysfs topology."""
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
    return out


def _memory_storage_network_fields(storage_path: Path) -> dict[str, str]:
    """The host_memory_*, host_storage_* (of the disk holding ``storage_path``) and networking fields."""
    import psutil

    out = {"host_memory_capacity": _size_text(psutil.virtual_memory().total) + " (visible to the OS)"}
    mem_cfg = _memory_configuration()
    if mem_cfg:
        out["host_memory_configuration"] = mem_cfg
    capacity, kind = _storage(storage_path)
    if capacity:
        out["host_storage_capacity"] = capacity
    if kind:
        out["host_storage_type"] = kind
    net, nic_count = _networking()
    if net:
        out["host_networking"] = net
        out["host_network_card_count"] = nic_count or ""
    return out


def _software_fields() -> dict[str, str]:
    """The operating system, the framework and software stack, and the DMI system name."""
    out = {"operating_system": _operating_system()}
    framework, stack = software_stack()
    if framework:
        out["framework"] = framework
    out["other_software_stack"] = stack
    name = _dmi_system_name()
    if name:
        out["system_name"] = name
    return out


def _hw_notes(info: dict[str, Any], topo: dict[str, int]) -> str:
    """Cores and threads, a hypervisor, and the wide-vector ISA extensions the CPU has."""
    flags = set(info.get("flags", []))
    isa = [label for flag, label in (("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"),
                                     ("avx512_bf16", "AVX-512 BF16"), ("amx_bf16", "AMX-BF16"),
                                     ("amx_int8", "AMX-INT8")) if flag in flags]
    notes = [f"{topo['cores']} cores / {topo['threads']} threads visible to the OS"]
    if virtual_machine():
        notes.append("virtual machine (hypervisor CPU flag)")
    if isa:
        notes.append("ISA: " + ", ".join(isa))
    return "; ".join(notes)


if __name__ == "__main__":  # quick look: python -m hostinfo.probe
    print(json.dumps(detect_host(), indent=2), file=sys.stdout)
