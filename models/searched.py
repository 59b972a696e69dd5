"""DeciNet-style models found by ``mlperf-cpu search``, registered from their stored plans.

Each searched model is one JSON file in ``models/searched/`` (the search's ``winner.json``:
its resolved plan, the candidate genes and its card notes saying where and on what CPU it was
searched and that its top-1 is predicted) plus a builder of a few lines here. Weights are
untrained: train one with ``mlperf-cpu train`` before trusting any accuracy.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from common.resources import shipped
from models._registry import DefaultCard, register_model
from models.searchnet import SearchNet

SEARCHED_DIR = shipped("models/searched")


@lru_cache(maxsize=None)
def _stored(name: str) -> dict[str, Any]:
    return json.loads((SEARCHED_DIR / f"{name}.json").read_text())


def searched_card(name: str) -> DefaultCard:
    """ImageNet card at the searched resolution, with the search's provenance as notes."""
    card = _stored(name)["card"]
    return DefaultCard(input_size=int(card["input_size"]), notes=card["notes"])


def build_searched(name: str, num_classes: int = 1000) -> SearchNet:
    """The network of stored plan ``name``."""
    return SearchNet(_stored(name)["plan"], num_classes)


@register_model(card=searched_card("searchnet_epyc"))
def searchnet_epyc(num_classes: int = 1000) -> SearchNet:
    """Searched on a 2-vCPU AMD EPYC (AVX-512 VNNI) for a point prediction of top-1 >= 75.7 (see its JSON);
    its lower bound (the search's qualifying rule) does not reach 75.7: a small, fast test network."""
    return build_searched("searchnet_epyc", num_classes)


@register_model(card=searched_card("searchnet_epyc_avx2"))
def searchnet_epyc_avx2(num_classes: int = 1000) -> SearchNet:
    """Searched on a 2-vCPU AMD EPYC (AVX2 only) for a top-1 lower bound >= 75.7 (see its JSON)."""
    return build_searched("searchnet_epyc_avx2", num_classes)
