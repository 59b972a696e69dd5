"""Interleaved reference-vs-ours rounds on a noisy machine: quiet waits, foreign-load
accounting, per-round table, medians and the final ``ratio <number>`` line.

    rounds = []
    for i, ref, ours in interleave(3, run_reference, run_ours, Quiet(20, 0.15)):
        rounds.append(Round(i, ref.value.fps, ours.value.sps, ref.foreign_cores, ours.foreign_cores))
        print_row(rounds[-1], threshold)
    print_summary(rounds, threshold)   # medians; last line "ratio 0.998"

Each run is one child process. "Foreign load" is the CPU the rest of the machine used
while it ran (``/proc/stat`` busy time minus the child's own ``getrusage``, so it
includes hypervisor steal); a round where either run saw ``threshold`` cores or more
is flagged and left out of the "clean" medians.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
O = TypeVar("O")  # noqa: E741


def cpu_busy_s() -> float:
    """Machine-wide busy CPU seconds (user+nice+system+irq+softirq+steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Timed(Generic[T]):
    """What a run returned, its wall time and the other processes' load meanwhile (cores)."""

    value: T
    wall_s: float
    foreign_cores: float


def timed(fn: Callable[[], T]) -> Timed[T]:
    """Call ``fn`` (which runs and waits for a child process) and account the machine's load."""
    busy0, own0, start = cpu_busy_s(), children_cpu_s(), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    own = children_cpu_s() - own0
    # The parent's own CPU (Python, benchmark_app's IR read) is counted as foreign; it is ~0.
    return Timed(value, wall, max(0.0, (cpu_busy_s() - busy0) - own) / wall)


@dataclass(frozen=True)
class Quiet:
    """Before each run wait up to ``wait_s`` for other processes to use < ``threshold`` cores."""

    wait_s: float = 20.0
    threshold: float = 0.15

    def wait(self) -> None:
        """Sample the machine's load each second until it is quiet or the wait is over."""
        deadline = time.monotonic() + self.wait_s
        load = 0.0
        while self.wait_s > 0:
            before = cpu_busy_s()
            time.sleep(1.0)
            load = cpu_busy_s() - before
            if load < self.threshold or time.monotonic() >= deadline:
                break
        if load >= self.threshold:
            print(f"  (machine busy: {load:.2f} cores used by others; running anyway)", flush=True)


def interleave(rounds: int, reference: Callable[[int], R], ours: Callable[[int], O],
               quiet: Quiet) -> Iterator[tuple[int, Timed[R], Timed[O]]]:
    """Rounds 1..n: the reference, then ours, one process at a time, each after a quiet wait."""
    for i in range(1, rounds + 1):
        quiet.wait()
        ref = timed(lambda: reference(i))
        quiet.wait()
        yield i, ref, timed(lambda: ours(i))


@dataclass(frozen=True)
class Round:
    """One round's two throughputs (reference first) and the foreign load during each."""

    index: int
    reference: float
    ours: float
    reference_foreign: float = 0.0
    ours_foreign: float = 0.0
    note: str = ""  # e.g. LoadGen's validity of our run

    @property
    def ratio(self) -> float:
        """ours / reference."""
        return self.ours / self.reference

    def clean(self, threshold: float) -> bool:
        """Neither run shared the machine with ``threshold`` cores of other work."""
        return max(self.reference_foreign, self.ours_foreign) < threshold


def print_header(reference: str = "benchmark_app FPS", ours: str = "ours samples/s") -> None:
    """Column titles of the per-round table."""
    print(f"{'round':>5}  {reference:>18}  {ours:>15}  {'ratio':>6}  {'note':<8}  other load (cores) ref / ours",
          flush=True)


def print_row(r: Round, threshold: float) -> None:
    """One round, printed as soon as it ends."""
    flag = "" if r.clean(threshold) else "  <- busy, not in 'clean'"
    print(f"{r.index:>5}  {r.reference:>18.2f}  {r.ours:>15.2f}  {r.ratio:>6.3f}  {r.note:<8}  "
          f"{r.reference_foreign:.2f} / {r.ours_foreign:.2f}{flag}", flush=True)


def summary(rounds: list[Round]) -> dict[str, float]:
    """Medians, the median of per-round ratios, the ratio of medians and the ratio range."""
    ref = statistics.median(r.reference for r in rounds)
    ours = statistics.median(r.ours for r in rounds)
    ratios = [r.ratio for r in rounds]
    return {"rounds": len(rounds), "reference_median": round(ref, 2), "ours_median": round(ours, 2),
            "median_of_ratios": round(statistics.median(ratios), 4), "ratio_of_medians": round(ours / ref, 4),
            "min_ratio": round(min(ratios), 4), "max_ratio": round(max(ratios), 4)}


def print_summary(rounds: list[Round], threshold: float) -> dict[str, dict[str, float]]:
    """Medians of all rounds (and of the clean ones if some were busy); the LAST line
    printed is ``ratio <median of per-round ratios>`` over the clean rounds if there are
    any (a busy round's ratio measures the other work, not the tools), else over all."""
    out = {"all": summary(rounds)}
    clean = [r for r in rounds if r.clean(threshold)]
    if clean and len(clean) < len(rounds):
        out["clean"] = summary(clean)
    for name, s in out.items():
        print(f"median ({name} {s['rounds']} rounds): reference {s['reference_median']:.2f}, ours "
              f"{s['ours_median']:.2f}; median of ratios {s['median_of_ratios']:.3f} (range "
              f"{s['min_ratio']:.3f}..{s['max_ratio']:.3f}), ratio of medians {s['ratio_of_medians']:.3f}")
    if not clean:
        print(f"no clean round: every round shared the machine with >= {threshold} cores of other work")
    chosen = "clean" if "clean" in out else "all"
    print(f"ratio {out[chosen]['median_of_ratios']:.4f}", flush=True)
    return out


def offline_rounds(rounds: int, reference: Callable[[int], R], ours: Callable[[int], O], quiet: Quiet,
                   threshold: float) -> Iterator[tuple[Round, R, O]]:
    """Interleaved rounds of ``reference`` (benchmark_app: ``.throughput_fps``) and ``ours`` (a
    harness run record: ``.samples_per_second``, ``.validity``), printing the table as it goes;
    yields each round with both results. A run without samples/s is an error, not a zero."""
    from common.errors import HarnessError

    print_header()
    for i, ref, run in interleave(rounds, reference, ours, quiet):
        if run.value.samples_per_second is None:
            raise HarnessError(f"{run.value.run_dir}: the harness recorded no samples/s")
        row = Round(i, ref.value.throughput_fps, run.value.samples_per_second, ref.foreign_cores,
                    run.foreign_cores, run.value.validity or "?")
        print_row(row, threshold)
        yield row, ref.value, run.value
