"""The time-budgeted search: fastest INT8 candidate whose top-1 lower bound reaches the target.

Phases (shares of the budget):

1. references, measured in this run: INT8 ResNet-50 and a few zoo architectures near the
   target (timm, untrained: their published top-1 with our measured speed);
2. sampling (to ``sample_share``): random candidates whose predicted top-1 is near the target are
   measured, and the throughput model is fitted on them;
3. rounds (to ``final_share``): an evolutionary search on the two predictors (no measuring), then
   its best few candidates are measured for real. Their throughput was predicted before they
   were measured, so those are held-out errors; then the model is refitted with them;
4. final: the best measured feasible candidate is measured again alongside ResNet-50
   (interleaved, median), and the report and the winner's files are written.

A candidate is feasible when its lower bound reaches the target: its predicted top-1, clamped
to the best published ImageNet-1k-only top-1 at <= its MACs, minus the 90th percentile of the
predictor's leave-one-family-out error (``AccuracyPredictor.bound``). Candidates whose descriptors
fall outside the zoo table's range are not feasible: the accuracy predictor would extrapolate.
Weights are untrained everywhere; top-1 of candidates is predicted.
"""

from __future__ import annotations

import logging
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from models.zoo_table import ZooEntry
from search.descriptors import describe
from search.predict_accuracy import AccuracyPredictor, Bounded, entries_1k, fit_accuracy
from search.measure import failure_line, host_file_tag, host_key
from search.predict_speed import HostMeter, SpeedCache, SpeedPredictor, fit_speed, mape
from search.space import DEFAULT_SPACE, Candidate, SearchSpace, plan

log = logging.getLogger(__name__)

REFERENCE = "resnet50"  # registered torchvision-style ResNet-50 (v1.5), exported untrained
SAMPLE_BAND = (-1.0, 2.5)  # sampled candidates: top-1 lower bound within target + this band


@dataclass(frozen=True)
class SearchRequest:
    """What ``mlperf-cpu search`` was asked to do."""

    min_top1: float
    budget_s: float
    out: Path
    workspace: Any  # pipeline.flows.Workspace
    engine: Any  # sut.config.EngineConfig
    system: str = "host"
    space: SearchSpace = DEFAULT_SPACE
    seed: int = 0
    measure_seconds: float = 2.0  # per run; each measurement is the best of two runs
    sample_share: float = 0.45
    final_share: float = 0.85
    finalists: int = 4  # measured per round
    final_runs: int = 3  # winner and reference, interleaved; the median is reported (0: keep the search's)
    calib_images: int = 16  # demo calibration images for NNCF (speed only)
    measure_repeats: int = 2
    leaders: int = 3  # fastest measured candidates measured again before the winner is chosen
    zoo_archs: int = 5  # zoo architectures measured as references (0: none)
    reference: str | None = REFERENCE
    max_samples: int | None = None
    progress: bool = True


@dataclass
class Scored:
    """A candidate with its descriptors and predictions (and measurements, if any)."""

    cand: Candidate
    desc: dict[str, Any]
    top1: float  # predicted, clamped to the published frontier
    feasible: bool
    bound: Bounded
    predicted_speed: float | None = None
    measured: list[float] = field(default_factory=list)

    @property
    def speed(self) -> float | None:
        """Median measured samples/s."""
        return statistics.median(self.measured) if self.measured else None


class Clock:
    """Elapsed time against the budget."""

    def __init__(self, budget_s: float) -> None:
        self.start, self.budget = time.monotonic(), budget_s

    def share(self) -> float:
        """Fraction of the budget used."""
        return (time.monotonic() - self.start) / self.budget

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start


def score(cand: Candidate, acc: AccuracyPredictor, target: float) -> Scored:
    """Descriptors and bounded top-1 of ``cand``; feasible = its lower bound reaches ``target`` inside
    the zoo's range."""
    d = describe(cand)
    b = acc.bound(d)
    return Scored(cand, d, b.top1, b.qualifies(target) and not acc.extrapolation(d), b)


def evolve(space: SearchSpace, fitness: Callable[[Candidate], tuple], rng: random.Random,
           seeds: list[Candidate], population: int = 48, generations: int = 80) -> list[Candidate]:
    """Elitist evolution (crossover + 1-2 mutations); every distinct candidate seen, best first."""
    seen: dict[str, Candidate] = {}
    pop = list(seeds)[:population] + [space.sample(rng) for _ in range(max(0, population - len(seeds)))]
    for _ in range(generations):
        for c in pop:
            seen.setdefault(c.key(), c)
        pop = sorted({c.key(): c for c in pop}.values(), key=fitness, reverse=True)
        parents = pop[:max(2, population // 4)]
        children = []
        while len(parents) + len(children) < population:
            a, b = rng.sample(parents, 2)
            children.append(space.mutate(space.crossover(a, b, rng), rng, n=rng.randint(1, 2)))
        pop = parents + children
    for c in pop:
        seen.setdefault(c.key(), c)
    return sorted(seen.values(), key=fitness, reverse=True)


# ----------------------------------------------------------------------------- references
def zoo_references(min_top1: float, count: int) -> list[ZooEntry]:
    """The ``count`` smallest zoo architectures (GMACs) reaching ``min_top1``, one per family."""
    picked: dict[str, ZooEntry] = {}
    for entry in sorted(entries_1k(), key=lambda e: e.gmacs):
        if entry.top1 >= min_top1 and entry.family not in picked and len(picked) < count:
            picked[entry.family] = entry
    return list(picked.values())


# ----------------------------------------------------------------------------- the search
class Search:
    """State of one search run (see the module docstring for the phases)."""

    def __init__(self, req: SearchRequest) -> None:
        self.req = req
        self.rng = random.Random(req.seed)
        self.clock = Clock(req.budget_s)
        self.acc = fit_accuracy()
        self.meter = HostMeter(req.workspace, req.engine, req.measure_seconds, req.calib_images, req.measure_repeats)
        self.host = host_key(req.engine)
        method = f"{req.measure_seconds:g}sx{req.measure_repeats}"  # how a figure was taken is part of its key
        self.cache = SpeedCache(req.workspace.work / "search" / f"speed-{host_file_tag(self.host)}-{method}.json")
        self.measured: dict[str, Scored] = {}
        self.rounds: list[dict[str, Any]] = []  # per round: predicted vs measured of its finalists
        self.references: dict[str, list[float]] = {}
        self.zoo: list[dict[str, Any]] = []
        self.predictor: SpeedPredictor | None = None
        self.winner_held_out = False

    def say(self, text: str) -> None:
        """Progress line with elapsed time and budget."""
        log.log(logging.INFO if self.req.progress else logging.DEBUG, "[search %4.0f/%.0f s] %s",
                self.clock.elapsed(), self.req.budget_s, text)

    # --- measuring
    def measure(self, s: Scored, fresh: bool = False) -> float:
        """Measured INT8 samples/s of ``s`` (cached per host unless ``fresh``)."""
        key = s.cand.key()
        cached = None if fresh else self.cache.get(key)
        speed = cached if cached is not None else self.meter.measure_candidate(s.cand)
        if cached is None:
            self.cache.put(key, speed, candidate=s.cand.to_dict(), measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
        s.measured.append(speed)
        self.measured[key] = s
        return speed

    def measure_references(self) -> None:
        if self.req.reference:
            self.say(f"measuring INT8 {self.req.reference} (reference, untrained)")
            self.references[self.req.reference] = [self.meter.measure_onnx(self.req.reference)]
            self.say(f"INT8 {self.req.reference}: {self.references[self.req.reference][0]:.1f} samples/s")
        for entry in zoo_references(self.req.min_top1, self.req.zoo_archs):
            try:
                speed = self.meter.measure_onnx(entry.model_name)  # registered: timm, untrained, deploy form
            except Exception as exc:  # noqa: BLE001 - foreign timm code: one reference must not end the search
                self.say(f"zoo {entry.arch}: skipped, could not be exported or measured here ({failure_line(exc)})")
                continue
            self.zoo.append({"arch": entry.arch, "family": entry.family, "top1": entry.top1,
                             "gmacs": entry.gmacs, "samples_per_second": speed})
            self.say(f"zoo {entry.arch} ({entry.top1} % published): {speed:.1f} samples/s INT8")

    # --- phases
    def sample_phase(self) -> None:
        lo, hi = self.req.min_top1 + SAMPLE_BAND[0], self.req.min_top1 + SAMPLE_BAND[1]
        for cand, speed in self.cache.candidates():  # earlier searches on this host and settings
            s = score(cand, self.acc, self.req.min_top1)
            s.measured.append(speed)
            self.measured[cand.key()] = s
        if self.measured:
            self.say(f"{len(self.measured)} candidates already measured on this host (cache {self.cache.path})")
        new, tries = 0, 0
        while self.clock.share() < self.req.sample_share or len(self.measured) < 2:
            if self.req.max_samples is not None and new >= self.req.max_samples:
                break
            s = score(self.req.space.sample(self.rng), self.acc, self.req.min_top1)
            tries += 1
            if s.cand.key() in self.measured or self.acc.extrapolation(s.desc) or not lo <= s.bound.lower <= hi:
                if tries < 5000:
                    continue
            tries = 0
            speed = self.measure(s)
            new += 1
            self.say(f"sample {new}: {speed:7.1f} samples/s measured, {self.acc.describe_bound(s.bound)}, "
                     f"{s.desc['gmacs']:.2f} GMACs")

    def fit(self) -> None:
        pairs = [(s.desc, s.speed) for s in self.measured.values()]
        self.predictor = fit_speed(pairs)
        self.say(f"throughput model refitted on {len(pairs)} measured candidates: leave-one-out MAPE "
                 f"{self.predictor.loo_mape:.1f} %")

    def fitness(self, cand: Candidate) -> tuple:
        s = score(cand, self.acc, self.req.min_top1)
        speed = self.predictor.predict(s.desc)
        return (1, speed) if s.feasible else (0, s.bound.lower - (1.0 if self.acc.extrapolation(s.desc) else 0.0))

    def search_round(self) -> None:
        seeds = sorted((s.cand for s in self.measured.values()), key=self.fitness, reverse=True)[:24]
        ranked = evolve(self.req.space, self.fitness, self.rng, seeds)
        finalists, signatures = [], set()
        for cand in ranked:
            s = score(cand, self.acc, self.req.min_top1)
            if not s.feasible or cand.key() in self.measured:
                continue
            s.predicted_speed = self.predictor.predict(s.desc)
            # Candidates differing only in what neither model sees (e.g. one more hswish where the fit
            # gives hswish no cost) teach nothing new: measure one of each.
            signature = (round(s.predicted_speed, 1), round(s.top1, 2))
            if signature in signatures:
                continue
            signatures.add(signature)
            finalists.append(s)
            if len(finalists) == self.req.finalists:
                break
        record = {"round": len(self.rounds) + 1, "fitted_on": self.predictor.n,
                  "loo_mape": self.predictor.loo_mape, "finalists": []}
        for s in finalists:
            speed = self.measure(s)
            record["finalists"].append({"key": s.cand.key(), "predicted": s.predicted_speed, "measured": speed,
                                        "top1": s.top1, "top1_lower": s.bound.lower, "gmacs": s.desc["gmacs"]})
            self.say(f"round {record['round']}: {s.cand.key()} predicted {s.predicted_speed:.1f}, measured "
                     f"{speed:.1f} samples/s; {self.acc.describe_bound(s.bound)}")
        if finalists:
            record["mape"] = mape([f["predicted"] for f in record["finalists"]],
                                  [f["measured"] for f in record["finalists"]])
        self.rounds.append(record)
        self.fit()

    def final(self) -> Scored | None:
        feasible = [s for s in self.measured.values() if s.feasible]
        if not feasible:
            return None
        # One short run each picked the leaders, so the fastest is partly the luckiest: the leaders
        # are measured again and compared on the median of their runs.
        leaders = sorted(feasible, key=lambda s: s.speed, reverse=True)[:self.req.leaders]
        if len(leaders) > 1:
            for s in leaders:
                self.measure(s, fresh=True)
            self.say("leaders re-measured: " + ", ".join(f"{s.cand.key()} {s.speed:.1f}" for s in leaders))
        best = max(leaders, key=lambda s: s.speed)
        predicted = self.predictor.predict(best.desc)  # includes its own measurement: not held out
        held_out = next((f["predicted"] for r in self.rounds for f in r["finalists"]
                         if f["key"] == best.cand.key()), None)
        best.predicted_speed = held_out if held_out is not None else predicted
        self.winner_held_out = held_out is not None
        if self.req.final_runs:
            best.measured = []
        for _ in range(self.req.final_runs):  # interleaved with the reference
            self.measure(best, fresh=True)
            if self.req.reference:
                self.references[self.req.reference].append(self.meter.measure_onnx(self.req.reference))
        self.say(f"winner {best.cand.key()}: {best.speed:.1f} samples/s (median of {len(best.measured)}), "
                 f"{self.acc.describe_bound(best.bound)}")
        return best

    def run(self) -> dict[str, Any]:
        """All phases; returns the result record (also written to ``<out>/search.json``)."""
        self.say(f"target: top-1 lower bound >= {self.req.min_top1}; accuracy model fitted on {self.acc.rows} zoo "
                 f"rows, LOFO MAE {self.acc.lofo_mae:.2f} points; host {self.host}")
        self.measure_references()
        self.sample_phase()
        self.fit()
        while self.clock.share() < self.req.final_share:
            self.search_round()
            if not self.rounds[-1]["finalists"]:
                break
        if not self.rounds:
            self.search_round()
        winner = self.final()
        return self.result(winner)

    def result(self, winner: Scored | None) -> dict[str, Any]:
        ref = self.req.reference
        ref_speed = statistics.median(self.references[ref]) if ref and self.references.get(ref) else None
        held = [f for r in self.rounds for f in r["finalists"]]
        out: dict[str, Any] = {
            "note": "weights UNTRAINED: speeds are real INT8 measurements on this host, top-1 of candidates is "
                    "PREDICTED from architecture descriptors (zoo table, FP32 published figures)",
            "host": self.host, "system": self.req.system, "min_top1": self.req.min_top1,
            "budget_s": self.req.budget_s, "elapsed_s": self.clock.elapsed(),
            "accuracy_model": {"rows": self.acc.rows, "lofo_mae": self.acc.lofo_mae, "lofo_p90": self.acc.lofo_p90,
                               "lofo_by_family": self.acc.lofo_by_family},
            "speed_model": {"fitted_on": self.predictor.n, "loo_mape": self.predictor.loo_mape,
                            "held_out_mape": mape([f["predicted"] for f in held], [f["measured"] for f in held])
                            if held else None, "held_out_n": len(held)},
            "reference": {"name": ref, "samples_per_second": ref_speed, "runs": self.references.get(ref, [])},
            "zoo": self.zoo, "rounds": self.rounds,
            "measured": [{"key": s.cand.key(), "samples_per_second": s.speed, "top1": s.top1,
                          "top1_lower": s.bound.lower,
                          "feasible": s.feasible, "gmacs": s.desc["gmacs"], "candidate": s.cand.to_dict()}
                         for s in self.measured.values()],
            "winner": None,
        }
        if winner is not None:
            front = [z for z in self.zoo if z["top1"] >= winner.top1]
            best_zoo = max(front, key=lambda z: z["samples_per_second"]) if front else None
            out["winner"] = {
                "key": winner.cand.key(), "candidate": winner.cand.to_dict(), "summary": winner.cand.summary(),
                "plan": plan(winner.cand).to_dict(), "samples_per_second": winner.speed, "runs": winner.measured,
                "predicted_samples_per_second": winner.predicted_speed, "prediction_held_out": self.winner_held_out,
                "speed_error_percent": 100 * (winner.predicted_speed - winner.speed) / winner.speed,
                "top1_predicted": winner.top1, "top1_error": self.acc.lofo_mae,
                "top1_lower_bound": winner.bound.lower, "accuracy": winner.bound.to_dict(),
                "gmacs": winner.desc["gmacs"], "params_m": winner.desc["params_m"],
                "descriptors": {k: winner.desc[k] for k in ("depthwise_mac_fraction", "has_se", "activation")},
                "vs_reference": winner.speed / ref_speed if ref_speed else None,
                "zoo_front": best_zoo,
                "vs_zoo_front": winner.speed / best_zoo["samples_per_second"] if best_zoo else None,
            }
        return out


def run_search(req: SearchRequest) -> dict[str, Any]:
    """Run a search and write ``search.json``, ``REPORT.md`` and the winner's files into ``req.out``."""
    from search.evolve_report import write_outputs

    result = Search(req).run()
    write_outputs(result, req.out)
    return result
