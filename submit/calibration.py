"""``documentation/calibration.md`` of a closed-division submitter: how the served model was quantized.

MLCommons asks a closed submission to document its calibration (the legacy checker looks
for ``closed/<Org>/documentation/calibration.md``). Everything in it comes from the model
card the runs served (``card.calibration``: tool, preset, bias correction, the list by
name, sha256 and image count, layers kept in float) and from the run record's versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from modelprep.card import ModelCard
from records.rules import BENCHMARKS, ROUND

CALIBRATION_MD = Path("documentation") / "calibration.md"


def _official_list_name(card: ModelCard) -> str | None:
    """The official calibration list the card's list is (by sha256), or None."""
    sha = str((card.calibration or {}).get("list_sha256", ""))
    for rules in BENCHMARKS.values():
        if sha in rules.calibration_sha256:
            return rules.calibration_sha256[sha]
    return None


def _model_section(card: ModelCard, versions: Mapping[str, str]) -> list[str]:
    """The lines about one served model."""
    lines = [f"## {card.label}", "",
             f"- Source model: `{card.source}` (sha256 `{card.source_sha256}`)",
             f"- Weights: {card.precision}; layers not quantized run in {card.inference_precision} "
             f"(OpenVINO INFERENCE_PRECISION_HINT {card.inference_precision})"]
    if card.precision != "int8":
        return lines + ["- No quantization and no calibration: the weights are the source model's.", ""]
    cal: Mapping[str, Any] = card.calibration or {}
    official = _official_list_name(card)
    listed = Path(str(cal.get("list", "?"))).name
    lines += [
        f"- Method: post-training quantization to INT8 with NNCF (`{cal.get('tool', 'nncf.quantize')}`), "
        f"NNCF {versions.get('nncf') or 'version not recorded'}, OpenVINO {versions.get('openvino') or '?'}; "
        "no retraining, no fine-tuning.",
        f"- Calibration list: `{listed}` (sha256 `{cal.get('list_sha256', '?')}`)"
        + (f": the official MLCommons list `{official}`." if official else ": NOT an official MLCommons list."),
        f"- Calibration images: {cal.get('images', '?')} (subset size {cal.get('subset_size', '?')}), "
        "preprocessed exactly as at inference time (the model card's resize, crop and layout).",
        f"- NNCF preset: {cal.get('preset', '?')}; fast bias correction: "
        f"{'yes' if cal.get('bias_correction', 'fast') == 'fast' else 'no (full bias correction)'}.",
    ]
    extra = {k: v for k, v in cal.items() if k not in ("list", "list_sha256", "images", "subset_size", "preset",
                                                         "bias_correction", "tool")}
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in sorted(extra.items())]
    check = card.accuracy_check or {}
    if check.get("fp32_top1_percent") is not None and check.get("int8_top1_percent") is not None:
        lines.append(f"- Held-out check at prepare time: FP32 top-1 {check['fp32_top1_percent']} %, INT8 "
                     f"{check['int8_top1_percent']} % on {check.get('samples', '?')} images.")
    return lines + [""]


def calibration_md(cards_and_versions: Iterable[tuple[ModelCard, Mapping[str, str]]]) -> str:
    """The text of calibration.md for the served models (one section each, duplicates once)."""
    lines = [f"# Calibration and quantization (MLPerf Inference {ROUND}, closed division)", "",
             "Written by `mlperf-cpu package` from the model card of the runs it packaged.", ""]
    seen: set[str] = set()
    for card, versions in cards_and_versions:
        if card.label not in seen:
            seen.add(card.label)
            lines += _model_section(card, versions)
    return "\n".join(lines).rstrip() + "\n"


def write_calibration_md(path: Path, cards_and_versions: Iterable[tuple[ModelCard, Mapping[str, str]]]) -> Path:
    """Write calibration.md to ``path`` (a staging path: packaging swaps it into the tree)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration_md(cards_and_versions))
    return path
