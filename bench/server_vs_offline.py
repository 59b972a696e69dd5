"""Our Server rate vs an ideal dispatcher over the same engine, and vs our Offline throughput.

One run, for one model (default decinet_s: a registered architecture exported with
UNTRAINED seeded weights, prepared INT8 on the demo calibration list; speed only):

1. Offline: our LoadGen Offline performance run (``pipeline.flows.run_test``) with the
   profile's Offline engine -> samples/s.
2. Service times: each engine shape the search's per-query policies use (host: one
   single-thread stream per core, and one stream over all cores), batch 1, compiled exactly as
   the harness compiles it (``sut.engine.compile_model``), driven by an OpenVINO
   ``AsyncInferQueue`` with ONE request per stream, back to back, for ``--service-seconds``; each
   request's ``InferRequest.latency`` (start to completion, the figure benchmark_app collects in
   its own async loop) is one service-time sample. With one request per stream there is no
   queueing inside OpenVINO, and every stream is busy at once, as it is near the highest
   sustainable rate. benchmark_app cannot export its per-request latencies, so it is run once per
   shape at the same settings (``-nireq <streams>``) and its median is printed beside ours as a
   check. With the engine's ``keep_awake`` (``--host-tuning`` on a virtual machine) both run under
   the same mode as our Server runs (``hostctl.keepawake``: the CPU latency limit held at 0, or
   the busy loops): the reference sees the same host conditions as the harness.
   One slice per shape is measured before the search and one after every Server probe of step 3,
   and each shape's ideal is built from all of its slices: this host's speed drifts over minutes
   (docs/notes, the Server tail on virtual machines), and a reference taken in one quiet (or slow)
   window would judge a search that ran through other windows.
3. Ours: the rate ``tune --scenario Server`` confirms, over the same policies it searches
   (``pipeline.server_search.search_policies``), leaving out first, as it does, the policies whose
   streams miss the bound even one query at a time: the profile's Server policy first (bisection of
   short real LoadGen Server runs up to the Offline samples/s, where only a VALID run moves the
   search up: a run INVALID on the bound gets one more run, one INVALID on early stopping alone
   one run with ~6,000 queries), then per-query dispatch to one stream, and batches of up to 2
   and 4 sent as requests go idle, each only searched further if VALID 2 % over the best rate
   so far; then ``--confirm-seconds`` runs, the official 600 s by default, from where the probes' p99
   reaches the bound less 5 %, stepping down after each failed one until one is VALID, the
   last of at most ``--confirmations`` at the floor, half the first candidate), within a time
   budget printed before the first run. Ours is the rate confirmed VALID (p99 <= 15 ms and
   early stopping met) at that length; 0 if even the floor failed (said plainly).
   Ours may batch; the ideal of step 4 serves batch 1: a policy that batches under load can beat
   it, since a batch of 2 costs less than two single queries.
   The tuned profile and a user.conf (project user.conf + the Server target_qps x the
   tune margin, as ``tune`` writes) go to a scratch dir under
   ``work/bench/server_vs_offline/`` only, never to the project's ``user.conf`` or ``configs/``.
4. Ideal dispatcher, for each shape of step 2: a discrete-event simulation (numpy, seeded) of
   Poisson arrivals served FIFO by ``num_streams`` parallel servers (each arrival goes to the first
   server to become free; no dispatch cost, no batching, no LoadGen), service times resampled from
   all that shape's slices. The rate is bisected for the highest one whose simulated 99th percentile
   of arrival-to-completion latency stays <= 15 ms (the resnet50 Server bound). The same
   random numbers are used at every rate, so the p99 is monotone in the rate. The reference is
   the shape with the highest such rate: a model too slow for one single-thread stream to meet
   the bound is judged against one stream over all cores.
   Printed beside it, for scale: the same ideal dispatcher held to LoadGen's early stopping in
   runs of ``--duration`` and of ``--confirm-seconds`` (at most the share of queries over the
   bound that early stopping allows at that rate's query count, ``bench._queueing``): what a
   harness that adds nothing could reach in such runs.

Printed last: ``server/offline <ours Server rate / ours Offline samples/s>`` and
``ratio <ours Server rate / ideal rate>`` (target >= 0.90). The ideal is optimistic
(no dispatch overhead, no early-stopping rule), so the ratio is a lower bound of how
close the harness's dispatcher gets to what the engine allows.

    bench/run.sh server_vs_offline [--model decinet_s] [--duration 10] [--confirm-seconds 600] [--service-seconds 10]
        [--system host|NAME|path.yaml] [--bound-ms 15] [--sim-requests 200000] [--seed 0] [--json OUT]

(``--service-seconds`` is per slice: one before the search, one after each probe.)
"""

from __future__ import annotations

# bench._common first: importing it switches telemetry off before OpenVINO or NNCF load.
from bench._common import REPO, UNTRAINED, WORK, WORKSPACE, require_train_extra, run_main

require_train_extra(__file__)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench._bapp import run_benchmark_app  # noqa: E402
from bench._queueing import early_stopping_allowance, fifo_latency  # noqa: E402
from bench._record import Value, figure, host_tuning_label, write_json  # noqa: E402
from common.errors import HarnessError  # noqa: E402
from common.loadgen_conf import set_value  # noqa: E402
from common.testspec import BENCHMARK, Mode, Overrides, Scenario  # noqa: E402
from harness.profile import load_profile  # noqa: E402
from harness.tune import tuned_name, with_engine, write_profile  # noqa: E402
from modelprep.card import ModelCard, load_card  # noqa: E402
from pipeline.flows import TestSpec, demo_calibration, prepare_model, run_test  # noqa: E402
from pipeline.server_search import (BOUND_MS, CONFIRMATIONS, OFFICIAL_SERVER_MS, SERVER_MARGIN,  # noqa: E402
                                    SearchPlan, ServerProbe, highest_valid, per_query_shapes, policies,
                                    policy_words, search_policies, shape_words)
from sut.config import EngineConfig  # noqa: E402
from hostctl.keepawake import kept_awake  # noqa: E402



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="decinet_s", help="registered architecture (default decinet_s)")
    p.add_argument("--calib-subset", type=int, help="calibration images (default: the whole demo list)")
    p.add_argument("--system", default="host", help="profile name or .yaml (default host)")
    p.add_argument("--duration", type=int, default=10,
                   help="seconds per LoadGen run (Offline and each Server probe; default 10, as tune)")
    p.add_argument("--confirm-seconds", type=int, default=OFFICIAL_SERVER_MS // 1000,
                   help="the confirmation runs' length (default 600, the official Server duration; 0: none, the "
                        "highest VALID probe counts)")
    p.add_argument("--confirmations", type=int, default=CONFIRMATIONS,
                   help=f"confirmation runs at most, stepping down after each failed one, the last at the floor "
                        f"(default {CONFIRMATIONS})")
    p.add_argument("--service-seconds", type=float, default=10,
                   help="each service-time slice: one before the search, one after every probe (default 10 s)")
    p.add_argument("--bound-ms", type=float, default=15.0,
                   help="the ideal dispatcher's p99 bound (default 15 ms; LoadGen's own bound is the round's 15 ms)")
    p.add_argument("--sim-requests", type=int, default=200_000, help="simulated arrivals per rate (default 200000)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    p.add_argument("--host-tuning", action="store_true",
                   help="the host profile's Server host settings (keep-awake, SCHED_FIFO, short slices), in our "
                        "Server runs and around the service-time slices; default: off")
    args = p.parse_args(argv)
    if (args.duration < 1 or args.confirm_seconds < 0 or args.service_seconds <= 0 or args.sim_requests < 1000
            or args.confirmations < 1):
        p.error("--duration >= 1, --confirm-seconds >= 0, --service-seconds > 0, --sim-requests >= 1000, "
                "--confirmations >= 1")
    return args


# ----------------------------------------------------------------------------- service times
def measure_service_times(model_dir: Path, card: ModelCard, engine: EngineConfig, seconds: float,
                          cache_dir: Path) -> np.ndarray:
    """Per-request latencies (ms) with one batch-1 request per stream, back to back."""
    import openvino as ov

    from sut.engine import compile_model

    # The served model as the harness compiles it, each request reading its own fixed batch.
    compiled, _info = compile_model(ov.Core(), model_dir, card, engine, cache_dir)
    rng = np.random.default_rng(0)
    inputs = [rng.integers(0, 256, size=(engine.batch_size, *card.preprocess.sample_shape), dtype=np.uint8)
              for _ in range(engine.num_streams)]
    queue = ov.AsyncInferQueue(compiled, engine.num_streams)
    for request, batch in zip(queue, inputs):
        request.set_input_tensor(ov.Tensor(batch, shared_memory=True))
    times: list[float] = []
    recording = [False]

    def done(request: ov.InferRequest, _userdata: object) -> None:
        if recording[0]:
            times.append(request.latency)

    queue.set_callback(done)
    for phase_seconds, record in ((min(2.0, seconds / 4), False), (seconds, True)):
        recording[0] = record
        end = time.perf_counter() + phase_seconds
        while time.perf_counter() < end:
            queue.start_async()
        queue.wait_all()
    del queue, compiled
    if len(times) < 100:
        raise HarnessError(f"only {len(times)} service-time samples in {seconds:g} s: measure longer")
    return np.asarray(times, dtype=np.float64)


# ----------------------------------------------------------------------------- ideal dispatcher
def simulated_percentile_ms(rate: float, inter_unit: np.ndarray, service_ms: np.ndarray, servers: int,
                            warmup: int, percentile: float = 99.0) -> float:
    """A percentile (ms) of arrival-to-completion latency: Poisson arrivals at ``rate``/s, FIFO,
    ``servers`` parallel servers, each arrival to the first free one; ``inter_unit`` are Exp(1) draws."""
    arrivals = np.cumsum(inter_unit) * (1000.0 / rate)  # ms
    return float(np.percentile(fifo_latency(arrivals, service_ms, servers)[warmup:], percentile))


def early_stopping_percentile(seconds: float) -> Callable[[float], float]:
    """For runs of ``seconds``: rate -> the latency percentile that must stay under the bound for
    LoadGen's early stopping to pass (the share over it at most what it allows at that count)."""
    def at(rate: float) -> float:
        queries = max(int(rate * seconds), 1)
        return 100.0 * (1.0 - max(early_stopping_allowance(queries), 0) / queries)
    return at


def ideal_rate(service_ms: np.ndarray, servers: int, bound_ms: float, requests: int, seed: int,
               percentile_at: Callable[[float], float] = lambda _rate: 99.0
               ) -> tuple[float, float, list[tuple[float, float]]]:
    """Bisect the highest Poisson rate whose simulated p99 (or ``percentile_at(rate)``) <=
    ``bound_ms``: (rate, that percentile there, steps)."""
    rng = np.random.default_rng(seed)
    inter_unit = rng.exponential(1.0, size=requests)
    service = rng.choice(service_ms, size=requests, replace=True)
    warmup = requests // 20
    saturation = servers * 1000.0 / float(np.mean(service_ms))  # qps at which the servers are always busy
    low, high, low_p99 = 0.0, saturation, float("nan")
    steps: list[tuple[float, float]] = []
    while high - low > 0.001 * saturation:
        mid = (low + high) / 2
        p99 = simulated_percentile_ms(mid, inter_unit, service, servers, warmup, percentile_at(mid))
        steps.append((mid, p99))
        if p99 <= bound_ms:
            low, low_p99 = mid, p99
        else:
            high = mid
    return low, low_p99, steps  # low 0: no rate keeps p99 under the bound (service p99 above it)


# ----------------------------------------------------------------------------- the run
@dataclasses.dataclass
class _Bench:
    """What the steps share: the inputs set up once, then each step's results as it produces them."""

    args: argparse.Namespace
    model_dir: Path
    card: ModelCard
    profile: Any
    engines: list[EngineConfig]  # the policies the search tries, the profile's Server policy first
    scratch: Path
    user_conf: Path
    dataset: Path
    cache: Path
    slices: dict[EngineConfig, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def shapes(self) -> list[EngineConfig]:
        """The per-query (batch 1) policies with distinct streams x threads: the ideal's candidates."""
        return per_query_shapes(self.engines)

    def measure_slice(self, after: ServerProbe | None = None) -> None:
        """One service-time slice per engine shape, under the same keep_awake as our Server runs."""
        where = "before the search" if after is None else f"after the {after.target_qps:.1f} qps probe"
        for shape in self.shapes:
            with kept_awake(shape.keep_awake):
                times = measure_service_times(self.model_dir, self.card, shape, self.args.service_seconds,
                                              self.cache)
            self.slices.setdefault(shape, []).append(times)
            print(f"      service slice {len(self.slices[shape])}, {shape_words(shape)} ({where}): {len(times)} "
                  f"requests, median {np.percentile(times, 50):.2f} ms, p99 {np.percentile(times, 99):.2f}",
                  flush=True)


def _setup(args: argparse.Namespace) -> _Bench:
    """Step 0: the INT8 model, the profile (Server batch 1 only), a scratch folder with its own user.conf."""
    print(f"NOTE: {args.model} with {UNTRAINED}; demo images stand in for ImageNet.", flush=True)
    model_dir = prepare_model(args.model, "int8", WORKSPACE, calibration=demo_calibration(WORKSPACE, args.calib_subset))
    card = load_card(model_dir)
    profile = load_profile(args.system, host_tuning=args.host_tuning)
    server = profile.engine_for("Server")
    engines = [server] + [e for e in policies(profile.cores, server) if e != server]
    scratch = WORK / "server_vs_offline" / args.model
    scratch.mkdir(parents=True, exist_ok=True)
    user_conf = scratch / "user.conf"
    shutil.copyfile(REPO / "user.conf", user_conf)  # never the project's own
    b = _Bench(args, model_dir, card, profile, engines, scratch, user_conf, WORKSPACE.demo_data / "val",
               WORKSPACE.cache / "ov_cache")
    logging.getLogger().setLevel(logging.WARNING)
    print(f"model   : {model_dir.relative_to(REPO)} ({card.label}, inference precision {card.inference_precision})\n"
          f"Offline engine: {profile.engine}\nServer engine : {server}\nscratch : {scratch.relative_to(REPO)}",
          flush=True)
    return b


def _offline(b: _Bench) -> None:
    """Step 1: our Offline run."""
    args = b.args
    offline_spec = TestSpec(Mode.PERFORMANCE, b.model_dir, b.dataset, args.system,
                            dataclasses.replace(WORKSPACE, results=b.scratch / "results"), b.user_conf,
                            overrides=Overrides(min_duration_ms=args.duration * 1000, min_query_count=1,
                                                target_qps=0))
    offline = run_test(offline_spec, quiet=True)
    offline_sps = offline.samples_per_second
    if not offline_sps:
        raise HarnessError(f"{offline.run_dir}: the Offline run recorded no samples/s")
    print(f"\n[1] ours Offline: {offline_sps:.2f} samples/s ({offline.validity}; {args.duration} s run)", flush=True)
    b.results.update(offline=offline, offline_sps=offline_sps)


def _service_times(b: _Bench) -> None:
    """Step 2: the first service-time slices (more after each probe), checked against benchmark_app."""
    args = b.args
    print(f"[2] service times: AsyncInferQueue, one batch-1 request per stream, back to back, "
          f"{args.service_seconds:g} s slices, for each of: {'; '.join(shape_words(e) for e in b.shapes)}", flush=True)
    b.measure_slice()
    checks = {}
    for shape in b.shapes:
        with kept_awake(shape.keep_awake):
            check_engine = dataclasses.replace(shape, infer_requests=shape.num_streams)
            bapp = run_benchmark_app(b.model_dir / "model.xml", check_engine, b.card.inference_precision,
                                     min(args.service_seconds, 20), cache_dir=b.cache,
                                     out_dir=b.scratch / f"bapp-{shape.num_streams}x{shape.num_threads}")
        print(f"      check, {shape_words(shape)}: benchmark_app -nireq {shape.num_streams} median "
              f"{bapp.latency.percentile_ms:.2f} ms, {bapp.throughput_fps:.1f} FPS", flush=True)
        checks[shape] = bapp
    b.results["bapp"] = checks


def _server_search(b: _Bench) -> None:
    """Step 3: our Server search (tune --scenario Server's, the profile's Server policy first)."""
    args, offline_sps, engines = b.args, b.results["offline_sps"], b.engines
    plan = SearchPlan(args.duration * 1000, confirm_ms=args.confirm_seconds * 1000, confirmations=args.confirmations,
                      policies=len(engines),  # a service slice per shape after each run:
                      overhead_s=SearchPlan().overhead_s + args.service_seconds * len(b.shapes))
    print(f"[3] our Server search over (0, {offline_sps:.1f}] qps: only a VALID run moves the bisection up; then "
          f"{args.confirm_seconds} s confirmations stepping down until one is VALID; service slices after each run",
          flush=True)
    outcome = search_policies(b.model_dir, b.dataset, b.profile, engines, offline_sps,
                              dataclasses.replace(WORKSPACE, results=b.scratch / "results"), b.user_conf, plan,
                              after_probe=b.measure_slice, say=lambda line: print(f"      {line}", flush=True),
                              bound_ms=BOUND_MS)
    for pr in outcome.probes:
        p99 = f"{pr.p99_ms:.2f}" if pr.p99_ms is not None else "-"
        done = f"{pr.completed_qps:.1f}" if pr.completed_qps is not None else "-"
        why = " (early stopping only)" if pr.early_stopping_only else ""
        print(f"      {policy_words(pr.engine)}: target {pr.target_qps:8.1f} qps, {pr.duration_ms // 1000:4d} s -> "
              f"{'VALID  ' if pr.valid else 'INVALID'} (completed {done} qps, p99 {p99} ms){why}", flush=True)
    for engine in engines:
        tried = [pr for pr in outcome.probes if pr.engine == engine]
        best = f"highest VALID probe {highest_valid(tried):.1f} qps" if tried else "not searched"
        print(f"      {policy_words(engine)}: {best}", flush=True)
    # The policy of the result (the profile's when nothing was confirmed), for the steps below.
    b.results.update(plan=plan, outcome=outcome, engine=outcome.engine or engines[0])


def _ideal(b: _Bench) -> None:
    """Step 4: the ideal dispatcher over every slice of each engine shape, free and held to early
    stopping at each run length; the reference is the shape with the highest ideal rate."""
    args = b.args
    ideals = {}
    for shape in b.shapes:
        service = np.concatenate(b.slices[shape])
        pct = {p: float(np.percentile(service, p)) for p in (50, 90, 99)}
        print(f"[4] service times, {shape_words(shape)}, all {len(b.slices[shape])} slices: {len(service)} requests, "
              f"median {pct[50]:.2f} ms, p90 {pct[90]:.2f}, p99 {pct[99]:.2f}, mean {service.mean():.2f}", flush=True)
        rate, p99, steps = ideal_rate(service, shape.num_streams, args.bound_ms, args.sim_requests, args.seed)
        if rate == 0:
            print(f"      ideal dispatcher: NO rate keeps the simulated p99 <= {args.bound_ms:g} ms (service p99 "
                  f"{pct[99]:.2f} ms is over it)", flush=True)
        else:
            print(f"      ideal dispatcher (simulated M/G/{shape.num_streams} FIFO, Poisson, seed {args.seed}, "
                  f"{args.sim_requests} arrivals): highest rate with p99 <= {args.bound_ms:g} ms = {rate:.1f} qps "
                  f"(p99 {p99:.2f} ms; {len(steps)} bisection steps; saturation "
                  f"{shape.num_streams * 1000 / service.mean():.1f} qps)", flush=True)
        ideals[shape] = {"service": service, "pct": pct, "rate": rate, "p99": p99, "steps": steps}
    best = max(b.shapes, key=lambda shape: ideals[shape]["rate"])
    ideal, service = ideals[best]["rate"], ideals[best]["service"]
    print(f"      reference: the ideal dispatcher on {shape_words(best)}, {ideal:.1f} qps"
          + ("; ratio will be nan (no shape keeps p99 under the bound: a disturbed machine?)" if ideal == 0 else ""),
          flush=True)
    held = {}  # the same ideal dispatcher, held to early stopping at each run length the search used
    for seconds in sorted({args.duration, args.confirm_seconds} - {0}):
        held[seconds] = ideal_rate(service, best.num_streams, args.bound_ms, args.sim_requests, args.seed,
                                   early_stopping_percentile(seconds))[0]
        share = f"{held[seconds] / ideal:.3f} of the ideal" if ideal else "no ideal"
        print(f"      the same ideal dispatcher held to LoadGen's early stopping in {seconds} s runs: "
              f"{held[seconds]:.1f} qps ({share}): what a harness adding nothing could reach in such runs", flush=True)
    b.results.update(ideals=ideals, best_shape=best, ideal=ideal, held=held)


def _scratch_profile(b: _Bench) -> None:
    """Step 5: the searched Server rate as a scratch profile and a scratch user.conf target_qps, as tune writes."""
    args, outcome = b.args, b.results["outcome"]
    rate = outcome.rate
    name = tuned_name(b.profile)
    engine = b.results["engine"]
    tuned = write_profile(b.scratch / "profiles" / f"{name}.yaml", with_engine(b.profile, Scenario.SERVER, engine,
                                                                               name, b.card),
                          f"Written by bench/server_vs_offline.py (scratch, not configs/): Server rate confirmed VALID "
                          f"{rate:.1f} qps ({args.duration} s probes, {args.confirm_seconds} s confirmation).")
    if rate > 0:
        set_value(b.user_conf, BENCHMARK, Scenario.SERVER.value, "target_qps", round(rate * SERVER_MARGIN, 1))
        conf_note = f"{BENCHMARK}.Server.target_qps = {rate * SERVER_MARGIN:.1f} (x{SERVER_MARGIN}, as tune writes)"
    else:
        conf_note = "no Server target_qps written (no rate confirmed VALID)"
    print(f"      search: {policy_words(engine)}: {outcome.message}\n      scratch profile {tuned.relative_to(REPO)}, "
          f"{b.user_conf.relative_to(REPO)}: {conf_note}", flush=True)
    b.results["tuned"] = tuned


def _figures(b: _Bench, start: float) -> float:
    """Step 6: the two figures last; returns the ratio."""
    args, r = b.args, b.results
    rate, ideal, offline_sps = r["outcome"].rate, r["ideal"], r["offline_sps"]
    ratio = rate / ideal if ideal > 0 else float("nan")
    print(f"\nwall time {time.perf_counter() - start:.1f} s; {args.model}: {UNTRAINED}\n"
          f"ours Server {rate:.1f} qps ({'confirmed VALID' if r['outcome'].confirmed else 'not confirmed'}, "
          f"{policy_words(r['engine'])}; "
          f"{args.duration} s probes, {args.confirm_seconds} s confirmation) "
          f"/ ideal dispatcher {ideal:.1f} qps "
          f"= ratio (target >= 0.90); ours Server / ours Offline {offline_sps:.1f} samples/s = server/offline")
    print(f"server/offline {rate / offline_sps:.4f}")
    print(f"ratio {ratio:.4f}", flush=True)
    return ratio


def _shape_record(b: _Bench, shape: EngineConfig) -> dict[str, Any]:
    """One engine shape's service times, benchmark_app check and ideal rate, for the JSON."""
    ideal, bapp, slices = b.results["ideals"][shape], b.results["bapp"][shape], b.slices[shape]
    service = ideal["service"]
    return {"num_streams": shape.num_streams, "num_threads": shape.num_threads,
            "service_ms": {"n": len(service), "mean": float(service.mean()),
                           **{f"p{k}": v for k, v in ideal["pct"].items()},
                           "slices": [[round(float(v), 4) for v in part] for part in slices]},
            "benchmark_app_check": {"median_ms": bapp.latency.percentile_ms, "fps": bapp.throughput_fps,
                                    "command": bapp.command},
            "ideal": {"rate": ideal["rate"], "p99_ms": ideal["p99"], "steps": ideal["steps"]}}


def _write_record(b: _Bench, ratio: float) -> None:
    """Step 7 (--json): every input and result of the steps above, with the figure."""
    args, r = b.args, b.results
    outcome, ideal, best = r["outcome"], r["ideal"], r["best_shape"]
    rate, offline_sps = outcome.rate, r["offline_sps"]
    write_json(args.json, {
        "note": f"{args.model}: {UNTRAINED}", "model_dir": str(b.model_dir), "profile": b.profile.to_dict(),
        "offline_samples_per_second": offline_sps, "offline_run_dir": r["offline"].run_dir,
        "shapes": [_shape_record(b, shape) for shape in b.shapes],
        "ideal": {"rate": ideal, "shape": shape_words(best), "bound_ms": args.bound_ms, "seed": args.seed,
                  "held_to_early_stopping": {f"{k}s": v for k, v in r["held"].items()},
                  "requests": args.sim_requests},
        "server": {"highest_valid_rate": rate, "confirmed": outcome.confirmed, "floor": outcome.floor,
                   "engine": dataclasses.asdict(outcome.engine) if outcome.engine is not None else None,
                   "outcome": outcome.message, "budget_s": r["plan"].budget_s,
                   "probes": [dataclasses.asdict(p) for p in outcome.probes],
                   "scratch_profile": str(r["tuned"]), "scratch_user_conf": str(b.user_conf)},
        "ratio": ratio, "server_over_offline": rate / offline_sps}, [figure(
        "server_vs_offline", ratio, Value("ours, Server rate confirmed VALID", rate, "qps"),
        Value("ideal dispatcher", ideal, "qps"), name=f"{args.model} int8 Server{host_tuning_label(args.host_tuning)}",
        goal=">= 0.90",
        ratio_is=f"ours (the best policy tune finds) / an ideal per-query dispatcher on this host's service times, "
                 f"the best of {len(b.shapes)} engine shape(s) ({args.duration} s probes)",
        note=f"untrained weights: speed only; ours: {policy_words(r['engine'])}; ideal on {shape_words(best)}; "
             f"server/offline {rate / offline_sps:.4f} (Offline {offline_sps:.1f} samples/s)")])


def benchmark(args: argparse.Namespace) -> int:
    """Offline, a service slice, our Server search with a slice after each probe, the ideal rate over
    every slice; the two figures last."""
    start = time.perf_counter()
    b = _setup(args)
    _offline(b)
    _service_times(b)
    _server_search(b)
    _ideal(b)
    _scratch_profile(b)
    ratio = _figures(b, start)
    if args.json:
        _write_record(b, ratio)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: any failure is one ERROR line and a non-zero exit."""
    return run_main(parse_args, benchmark, argv)


if __name__ == "__main__":
    sys.exit(main())
