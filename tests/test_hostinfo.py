"""hostinfo.probe: what the machine is, from tables of probe readings and the answers they must give.

The probes (psutil's counts, the affinity mask, the socket ids, cpuinfo) are replaced by fixed readings,
so each row holds on any host and states the rule instead of repeating the implementation.
"""

from __future__ import annotations

import os

import psutil
import pytest

from hostinfo import probe


@pytest.mark.parametrize(("physical", "allowed", "expected"), [
    (8, 16, 8),      # SMT host, whole machine allowed: one per physical core
    (8, 2, 2),       # taskset to two CPUs: only those count
    (None, 4, 4),    # psutil cannot tell: the affinity mask decides
    (0, 1, 1),       # never below one
    (64, 64, 64),    # no SMT
])
def test_physical_cores(monkeypatch: pytest.MonkeyPatch, physical: int | None, allowed: int, expected: int) -> None:
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: physical if not logical else 2 * (physical or 1))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(allowed)), raising=False)
    assert probe.physical_cores() == expected


@pytest.mark.parametrize(("sockets", "cores", "expected"), [
    (1, 2, {"host_processors_per_node": "1", "host_processor_core_count": "2",
            "host_processor_interconnect": "N/A (single socket)"}),
    (2, 64, {"host_processors_per_node": "2", "host_processor_core_count": "32"}),
    (2, 3, {"host_processors_per_node": "2"}),  # cores that do not split evenly are not guessed
    (0, 8, {}),  # no socket ids readable: neither count is written
])
def test_socket_and_core_fields(monkeypatch: pytest.MonkeyPatch, sockets: int, cores: int,
                                expected: dict[str, str]) -> None:
    import cpuinfo

    monkeypatch.setattr(cpuinfo, "get_cpu_info", lambda: {"brand_raw": "Test CPU"})
    monkeypatch.setattr(probe, "_cpu_topology", lambda: {"sockets": sockets, "cores": cores, "threads": 2 * cores})
    probe.detect_host.cache_clear()  # read once per process: read again with these probes, and after them
    try:
        host = probe.detect_host()
    finally:
        probe.detect_host.cache_clear()
    fields = ("host_processors_per_node", "host_processor_core_count", "host_processor_interconnect")
    assert {k: host[k] for k in fields if k in host} == expected
    assert host["host_processor_model_name"] == "Test CPU"


@pytest.mark.parametrize(("text", "count"), [("0-3,8", 5), ("0", 1), ("0-1", 2), ("0,2,4-5", 4), ("", 0)])
def test_cpu_list_count(text: str, count: int) -> None:
    assert probe._cpu_list_count(text) == count


@pytest.mark.parametrize(("nbytes", "text"), [(2**30, "1 GiB"), (25276063744, "23.5 GiB"), (49152, "48 KiB"),
                                              (512, "512 B"), (3 * 2**40, "3 TiB")])
def test_size_text(nbytes: int, text: str) -> None:
    assert probe._size_text(nbytes) == text


@pytest.mark.parametrize(("text", "nbytes"), [("48K", 48 * 2**10), ("2048K", 2 * 2**20), ("480M", 480 * 2**20),
                                              ("12", 12), ("lots", None)])
def test_sysfs_size(text: str, nbytes: int | None) -> None:
    assert probe._sysfs_size(text) == nbytes
