"""The README of a packaged scenario: what was measured, how to reproduce it, and provenance."""

from __future__ import annotations

import json
from typing import Any, Mapping

from records.loadgen_logs import DetailLog
from records.results import RunResult
from records.rules import ROUND

_OVERRIDE_FLAGS = {"min_duration_ms": "--min-duration-ms", "min_query_count": "--min-query-count",
                   "target_qps": "--target-qps", "performance_sample_count": "--performance-sample-count"}


_KEEP_AWAKE_TEXT = {  # hostctl.keepawake, as the submission's README states it
    "off": "",
    "pm_qos": "; keep_awake pm_qos: the kernel's CPU latency limit was held at 0 us during the run "
              "(/dev/cpu_dma_latency), so idle CPUs polled instead of halting between arrivals",
    "loops": "; keep_awake loops: one SCHED_IDLE busy loop per CPU during the run, so no vCPU halts between "
             "arrivals",
}


def command_lines(acc: RunResult, perf: RunResult, package_command: str | None) -> list[str]:
    """The commands that produced the runs: recorded ones when the runs carry them, else rebuilt."""
    card = perf.card
    lines = []
    if not (acc.command and perf.command):
        prep = ["mlperf-cpu prepare", f"--model <path to {card.source or 'the source model'}>",
                f"--precision {card.precision}"]
        if card.precision == "int8":
            cal = card.calibration or {}
            if card.inference_precision != "f32":
                prep.append(f"--int8-rest {card.inference_precision}")
            prep += [f"--calib-list {cal.get('list', '<calibration list>')}", "--calib-dir <calibration images>"]
            if cal.get("subset_size") and cal.get("images") and cal["subset_size"] < cal["images"]:
                prep.append(f"--calib-subset {cal['subset_size']}")
            if cal.get("preset") and cal["preset"] != "performance":
                prep.append(f"--calib-preset {cal['preset']}")
        if card.layout != "NCHW":
            prep.append(f"--layout {card.layout}")
        if card.is_detector:
            prep.append("--task detection")
        lines.append(" ".join(prep))
    for run in (acc, perf):
        if run.command:
            lines.append(run.command)
            continue
        parts = ["mlperf-cpu run", f"--mode {run.mode.value}", f"--scenario {run.scenario.value}",
                 "--model <prepared model directory>",
                 f"--dataset {'<COCO val2017/ + annotations/ root>' if run.card.is_detector else '<ImageNet 2012 val directory>'}",
                 f"--system {run.profile.name}", f"--user-conf {run.user_conf or 'user.conf'}"]
        for key, value in sorted(run.overrides.items()):
            parts.append(f"{_OVERRIDE_FLAGS.get(key, key)} {value:g}")
        lines.append(" ".join(parts))
    if package_command:
        lines.append(package_command)
    return lines


def host_tuning_line(run: RunResult) -> str:
    """Which host controls (hostctl) the performance run had on, and who asked for them."""
    engine = run.profile.engine_for(run.scenario.value)
    active = run.host_tuning.get("active")
    if active is None:  # a record without the field: the engine settings say what was on
        active = ([f"keep_awake={engine.keep_awake}"] if engine.keep_awake != "off" else []) \
            + ([f"dispatch_slice_us={engine.dispatch_slice_us}"] if engine.dispatch_slice_us else []) \
            + ([f"issue_priority={engine.issue_priority}"] if engine.issue_priority else [])
    if not active:
        return "- Host tuning: off (the run changed no power or scheduler setting of the host)"
    who = "--host-tuning" if run.host_tuning.get("requested") else "set in the system profile"
    return f"- Host tuning: on ({', '.join(active)}; {who}), for the test only and undone at its end"


def _accuracy_line(accuracy: Any) -> str:
    if accuracy is None:
        return "- Accuracy: None"
    if accuracy.metric == "mAP":
        return f"- Accuracy: COCO mAP {accuracy.top1_percent} % ({accuracy.total} images, pycocotools bbox)"
    return f"- Accuracy: top-1 {accuracy.top1_percent} % ({accuracy.good}/{accuracy.total} samples)"


def readme_text(system_name: str, division: str, acc: RunResult, perf: RunResult, perf_detail: DetailLog,
                desc: Mapping[str, Any], git: Mapping[str, Any], provenance: Mapping[str, Any],
                waived: list[str], package_command: str | None) -> str:
    """The README.md of one packaged scenario."""
    card, engine = perf.card, perf.profile.engine_for(perf.scenario.value)
    accuracy = acc.accuracy
    lines = []
    if waived:
        lines += ["# NOT FOR SUBMISSION", "",
                  "Packaged with `--allow-nonofficial` for testing. Waived rules:", ""]
        lines += [f"- {w}" for w in waived] + [""]
    lines += [f"# {card.label} on {system_name}: MLPerf Inference {ROUND}, {division} division, "
              f"{provenance.get('benchmark_folder')} {perf.scenario.value}", "",
              f"- Performance: {perf_detail.get('result_samples_per_second')} samples/s, "
              f"{perf_detail.get('result_validity')} (min_duration {perf_detail.get('effective_min_duration_ms')} ms, "
              f"target_qps {perf_detail.get('effective_target_qps')})",
              _accuracy_line(accuracy),
              f"- Model: {card.name}, {card.precision} weights, non-quantized layers in "
              f"{card.inference_precision}; source {card.source} (sha256 {card.source_sha256})",
              f"- Engine: OpenVINO CPU plugin, {engine.num_streams} streams, {engine.num_threads} "
              f"threads, {engine.infer_requests} infer requests, batch {engine.batch_size}, "
              f"pinning {'on' if engine.pinning else 'off'}, INFERENCE_PRECISION_HINT "
              f"{perf.inference_precision}"
              + _KEEP_AWAKE_TEXT[engine.keep_awake]
              + (f"; dispatch_slice_us {engine.dispatch_slice_us}: LoadGen's issue thread and the answering "
                 "threads ran with that scheduler slice" if engine.dispatch_slice_us else "")
              + (f"; issue_priority {engine.issue_priority}: the threads that issue queries ran under "
                 "SCHED_FIFO at that priority" if engine.issue_priority else ""),
              host_tuning_line(perf),
              f"- Software: {desc.get('framework')}; {desc.get('other_software_stack')}",
              f"- Code: `src/` holds the harness's git-tracked files at commit {git.get('commit')}"
              + (f" with local changes to {', '.join(git['modified'])}" if git.get("modified") else "")
              + (f"; untracked files not included: {', '.join(git['untracked'])}" if git.get("untracked") else ""),
              "",
              "## How to reproduce", "",
              "From `src/` (install with `pip install -e .`), on the same system profile:", "", "```sh"]
    lines += command_lines(acc, perf, package_command)
    lines += ["```", "",
              "Words in `<>` were not recorded by the runs. The LoadGen settings are `user.conf` next to this "
              "file plus the mlperf.conf built into LoadGen "
              f"{str(perf_detail.get('loadgen_version') or '').split(' ')[0]}.", "",
              "## Provenance (machine-readable)", "", "```json",
              json.dumps(provenance, indent=2, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)
