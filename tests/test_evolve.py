"""search.evolve.evolve: every offspring is a valid member of the space, the best never gets worse, and
the search climbs a known landscape."""

from __future__ import annotations

import random

import pytest

from search.evolve import evolve
from search.space import DEFAULT_SPACE, Candidate, SearchSpace, candidate_from_dict, plan

# The space's documented rules: basic blocks never expand, bottlenecks reduce by 2 or 4, and only basic and
# bottleneck blocks are grouped.
GROUPED_BLOCKS = ("basic", "bottleneck")


def _problems(space: SearchSpace, cand: Candidate) -> list[str]:
    """Why ``cand`` is not a member of ``space`` (empty when it is)."""
    found = []
    if cand.resolution not in space.resolution:
        found.append(f"resolution {cand.resolution}")
    if cand.stem_width not in space.stem_width or (cand.stem_kernel, cand.stem_stride) not in space.stem:
        found.append("stem")
    if cand.stem_act not in space.stem_act or cand.head_width not in space.head_width:
        found.append("stem act or head")
    if len(cand.stages) != len(space.stages):
        return found + ["stage count"]
    first_strided = next(i for i, st in enumerate(space.stages) if st.stride == 2)
    for i, (gene, st) in enumerate(zip(cand.stages, space.stages)):
        stride = 1 if cand.stem_stride == 4 and i == first_strided else st.stride
        expansions = {"basic": {1}, "bottleneck": ({2, 4} & set(st.expansion)) or {4}}.get(gene.block,
                                                                                           set(st.expansion))
        checks = {"block": gene.block in st.block, "depth": gene.depth in st.depth, "width": gene.width in st.width,
                  "kernel": gene.kernel in st.kernel, "se": gene.se in st.se, "act": gene.act in st.act,
                  "stride": gene.stride == stride, "expansion": gene.expansion in expansions,
                  "groups": gene.groups in st.groups and (gene.groups == 1 or gene.block in GROUPED_BLOCKS)}
        found += [f"stage {i} {name}" for name, ok in checks.items() if not ok]
    return found


def _total_stride(cand: Candidate) -> int:
    total = cand.stem_stride
    for gene in cand.stages:
        total *= gene.stride
    return total


def _distance(a: Candidate, b: Candidate) -> int:
    """How many genes differ: a landscape with one known optimum."""
    globals_ = sum(getattr(a, k) != getattr(b, k) for k in ("resolution", "stem_width", "stem_kernel",
                                                             "stem_stride", "stem_act", "head_width"))
    return globals_ + sum(x != y for x, y in zip(a.stages, b.stages)) * 3 + sum(
        abs(x.depth - y.depth) + (x.width != y.width) for x, y in zip(a.stages, b.stages))


@pytest.fixture(scope="module")
def target() -> Candidate:
    return DEFAULT_SPACE.sample(random.Random(12345))


def test_every_offspring_is_a_valid_member_of_the_space(target: Candidate) -> None:
    seen = evolve(DEFAULT_SPACE, lambda c: (-_distance(c, target),), random.Random(1), seeds=[],
                  population=24, generations=15)
    assert len(seen) > 100  # crossover and mutation made many distinct candidates
    assert len({c.key() for c in seen}) == len(seen)
    for cand in seen:
        assert not _problems(DEFAULT_SPACE, cand), (_problems(DEFAULT_SPACE, cand), cand.summary())
        assert _total_stride(cand) == 32, cand.summary()
        assert candidate_from_dict(cand.to_dict()) == cand  # survives the search's YAML/JSON files
        plan(cand)  # buildable


def test_the_checker_refuses_an_invalid_candidate(target: Candidate) -> None:
    from dataclasses import replace

    bad_stage = replace(target.stages[0], block="basic", expansion=6)
    assert _problems(DEFAULT_SPACE, replace(target, stages=(bad_stage, *target.stages[1:])))
    assert _problems(DEFAULT_SPACE, replace(target, resolution=999))


def test_best_fitness_never_decreases_and_improves(target: Candidate) -> None:
    def fitness(c: Candidate) -> tuple:
        return (-_distance(c, target),)

    best = []
    for generations in range(0, 13, 2):
        seen = evolve(DEFAULT_SPACE, fitness, random.Random(7), seeds=[], population=24, generations=generations)
        assert [fitness(c) for c in seen] == sorted((fitness(c) for c in seen), reverse=True)  # best first
        best.append(fitness(seen[0])[0])
    assert best == sorted(best), best
    assert best[-1] > best[0] + 5, best  # selection climbs well beyond the random first population


def test_a_seed_at_the_optimum_is_kept_and_returned_first(target: Candidate) -> None:
    # Elitism: the best individual survives every generation, so a seed that is the optimum comes back first.
    seen = evolve(DEFAULT_SPACE, lambda c: (-_distance(c, target),), random.Random(3), seeds=[target],
                  population=16, generations=10)
    assert seen[0] == target
