"""The search's output files: ``search.json`` (everything), ``REPORT.md`` and the winner's
plan (``winner.json``, the form ``models/searched/*.json`` stores) with its builder snippet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = ("Weights are UNTRAINED everywhere: throughputs are real INT8 measurements on this host (noisy when other "
          "jobs share it: compare within one run); the top-1 of searched candidates is PREDICTED from "
          "architecture descriptors by a model fitted on the zoo table's published FP32 figures (ImageNet-1k-only "
          "rows), clamped to the best published top-1 at <= the candidate's MACs, and qualifies on its lower bound "
          "(prediction minus the 90th percentile of the leave-one-family-out error). "
          "DeciNet-style candidates mix block types no zoo family has: they are out of the table's "
          "distribution, so the LOFO error understates their real uncertainty.")


def _fmt(value: float | None, spec: str = ".1f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def card_notes(result: dict[str, Any]) -> str:
    """The winner's card notes: where and on what it was searched, and that its top-1 is predicted."""
    w = result["winner"]
    a = w["accuracy"]
    clamp = f", clamped to the published frontier {a['frontier']:.1f}" if a["clamped_to_frontier"] else ""
    return (f"searched by `mlperf-cpu search --min-top1 {result['min_top1']}` on {result['host']} "
            f"(system {result['system']}); top-1 is PREDICTED {w['top1_predicted']:.1f}{clamp} (lower bound "
            f"{a['lower_bound']:.1f}: minus the 90th percentile of the zoo accuracy model's leave-one-family-out "
            f"error), not measured; INT8 {w['samples_per_second']:.1f} samples/s measured there with untrained weights")


def winner_files(result: dict[str, Any], out: Path, name: str = "decinet_searched") -> list[Path]:
    """``winner.json`` and ``register_snippet.py`` (how to make it a registered model)."""
    w = result["winner"]
    data = {"name": name, "plan": w["plan"], "candidate": w["candidate"], "accuracy": w["accuracy"],
            "card": {"input_size": w["plan"]["resolution"], "notes": card_notes(result)}}
    path = out / "winner.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    snippet = out / "register_snippet.py"
    snippet.write_text(
        f"# 1. copy {path} to models/searched/{name}.json   2. add to models/searched.py:\n\n"
        f"@register_model(card=searched_card({name!r}))\n"
        f"def {name}(num_classes: int = 1000) -> SearchNet:\n"
        f"    \"\"\"Searched on {result['host']} for predicted top-1 >= {result['min_top1']}.\"\"\"\n"
        f"    return build_searched({name!r}, num_classes)\n")
    return [path, snippet]


def _header(result: dict[str, Any]) -> list[str]:
    """Step 1: title, host, target and budget."""
    return ["# DeciNet-style search on this host", "", HEADER, "",
            f"Host: `{result['host']}`; target: top-1 lower bound >= {result['min_top1']} %; "
            f"{result['elapsed_s'] / 60:.1f} of {result['budget_s'] / 60:.1f} budget minutes.", ""]


def _winner(result: dict[str, Any]) -> list[str]:
    """Step 2: the winner's table, or why there is none."""
    ref, w = result["reference"], result["winner"]
    lines = ["## Winner", ""]
    if w is None:
        lines += ["No measured candidate's top-1 lower bound reached the target inside the zoo table's "
                  "descriptor range.", ""]
    else:
        err = w["speed_error_percent"]
        a = w["accuracy"]
        front = w["zoo_front"]
        lines += [
            f"`{w['summary']}`", "",
            "| quantity | value |", "|---|---|",
            f"| GMACs / params (M) | {w['gmacs']:.3f} / {w['params_m']:.2f} |",
            f"| top-1 PREDICTED by the fit (FP32, untrained here) | {a['predicted']:.1f} +- {w['top1_error']:.1f} "
            "(LOFO MAE; out of distribution) |",
            "| published frontier: best ImageNet-1k-only top-1 at <= its MACs (published) | "
            + (f"{a['frontier']:.2f} ({a['frontier_model']})" if a["frontier"] is not None else "none that small")
            + " |",
            f"| top-1 PREDICTED, clamped to the frontier | {w['top1_predicted']:.1f}"
            f"{' (clamped)' if a['clamped_to_frontier'] else ''} |",
            f"| top-1 lower bound (minus LOFO p90 {a['lower_bound_margin']:.1f}) | {a['lower_bound']:.1f} "
            f"(target {result['min_top1']}) |",
            "| nearest published models by MACs (published) | " + ", ".join(
                f"{n['key']} {n['gmacs']:.3f} GMACs {n['top1']:.2f} %" for n in a["nearest_published"]) + " |",
            f"| INT8 samples/s measured (median of {len(w['runs'])}) | {w['samples_per_second']:.1f} "
            f"({', '.join(f'{r:.1f}' for r in w['runs'])}) |",
            f"| INT8 samples/s predicted ({'before it was measured' if w['prediction_held_out'] else 'fit includes it'})"
            f" | {w['predicted_samples_per_second']:.1f} (error {err:+.1f} %, "
            f"goal <= 5 %: {'met' if abs(err) <= 5 else 'NOT met'}) |",
            f"| vs INT8 {ref['name']} (same run, median) | {_fmt(w['vs_reference'], '.2f')}x "
            f"({_fmt(ref['samples_per_second'])} samples/s) |",
            f"| vs zoo front at >= its predicted top-1 | " + (
                f"{w['vs_zoo_front']:.2f}x {front['arch']} ({front['top1']:.1f} % published, "
                f"{front['samples_per_second']:.1f} samples/s)" if front else "no measured zoo arch that accurate")
            + " |", ""]
    return lines


def _throughput(result: dict[str, Any]) -> list[str]:
    """Step 3: the throughput model's errors and every finalist's prediction against its measurement."""
    spd = result["speed_model"]
    lines = ["## Throughput model", "",
             f"Non-negative cost model fitted on {spd['fitted_on']} measured candidates: leave-one-out MAPE "
             f"{spd['loo_mape']:.1f} %; finalists predicted before they were measured "
             f"(held out, n = {spd['held_out_n']}): MAPE {_fmt(spd['held_out_mape'])} %.", "",
             "| round | candidate | predicted | measured | error | predicted top-1 |", "|---|---|---|---|---|---|"]
    for r in result["rounds"]:
        for f in r["finalists"]:
            lines.append(f"| {r['round']} | `{f['key']}` | {f['predicted']:.1f} | {f['measured']:.1f} | "
                         f"{100 * (f['predicted'] - f['measured']) / f['measured']:+.1f} % | {f['top1']:.1f} |")
    return lines


def _accuracy(result: dict[str, Any]) -> list[str]:
    """Step 4: the accuracy model's errors and the zoo references."""
    acc = result["accuracy_model"]
    worst = sorted(acc["lofo_by_family"].items(), key=lambda kv: -kv[1])[:5]
    lines = ["", "## Accuracy model", "",
             f"Ridge regression on {acc['rows']} counted ImageNet-1k-only zoo rows (log GMACs, log params, "
             "depthwise MAC share, SE, "
             f"activation, log resolution): leave-one-family-out MAE **{acc['lofo_mae']:.2f}** top-1 points, "
             f"90th percentile of the absolute error {acc['lofo_p90']:.2f} (the lower bound's margin) "
             f"(worst families: {', '.join(f'{k} {v:.1f}' for k, v in worst)}).", "",
             "## Zoo references (published FP32 top-1, measured INT8 speed, untrained weights)", "",
             "| arch | family | top-1 | GMACs | INT8 samples/s |", "|---|---|---|---|---|"]
    for z in sorted(result["zoo"], key=lambda z: -z["samples_per_second"]):
        lines.append(f"| {z['arch']} | {z['family']} | {z['top1']:.1f} | {z['gmacs']:.2f} | "
                     f"{z['samples_per_second']:.1f} |")
    return lines


def _fastest(result: dict[str, Any]) -> list[str]:
    """Step 5: the fastest measured feasible candidates and the count measured."""
    top = sorted((m for m in result["measured"] if m["feasible"]), key=lambda m: -m["samples_per_second"])[:8]
    lines = ["", "## Fastest measured feasible candidates", "",
             "| candidate | GMACs | predicted top-1 (clamped) | lower bound | INT8 samples/s |",
             "|---|---|---|---|---|"]
    for m in top:
        lines.append(f"| `{m['key']}` | {m['gmacs']:.2f} | {m['top1']:.1f} | {m['top1_lower']:.1f} "
                     f"| {m['samples_per_second']:.1f} |")
    lines += ["", f"Candidates measured: {len(result['measured'])} (all in `search.json`).", ""]
    return lines


def report_markdown(result: dict[str, Any]) -> str:
    """REPORT.md text."""
    return "\n".join(_header(result) + _winner(result) + _throughput(result) + _accuracy(result)
                     + _fastest(result))


def write_outputs(result: dict[str, Any], out: Path) -> list[Path]:
    """Write every output file into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "search.json", out / "REPORT.md"]
    paths[0].write_text(json.dumps(result, indent=1, default=str) + "\n")
    paths[1].write_text(report_markdown(result))
    if result["winner"] is not None:
        paths += winner_files(result, out)
    return paths
