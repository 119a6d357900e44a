"""Shortest path length on a small weighted undirected graph, one edge relaxation per step.

A step is a relaxation ``dist(C) = dist(A) + w(A,C) = 0 + 7 = 7``. It is correct when four
conditions are met. ``dist(A)`` is known: A is the start node (distance 0), or an earlier
correct step gave it a value. The edge A-C exists. Every side after the first equals
``dist(A) + w(A,C)`` with the known values. The new value is no larger than a value C
already has, because a relaxation never raises a distance.

Accepted spellings: ``d(C)`` for ``dist(C)``, square brackets, and ``w(A-C)`` or a plain
number for ``w(A,C)``. A step that only restates a known distance, such as ``dist(A) = 0``
for the start node, is correct too.
"""

from __future__ import annotations

import heapq
import re
import string
from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import ProceduralTask, normalize_step, safe_value
from reasoning_gym.verify.safe_arith import parse_number

_DIST_RE = re.compile(r"\b(?:dist|d)\s*[(\[]\s*([A-Za-z])\s*[)\]]", re.IGNORECASE)
_WEIGHT_RE = re.compile(
    r"\bw\s*[(\[]\s*([A-Za-z])\s*(?:,|-|\s)\s*([A-Za-z])\s*[)\]]", re.IGNORECASE
)


def _edge_key(a: str, b: str) -> str:
    return "".join(sorted((a.upper(), b.upper())))


def _relaxation(
    step: str, weights: dict[str, int], known: dict[str, Fraction]
) -> tuple[str, Fraction] | None:
    """Return ``(node, value)`` of a correct relaxation ``step``; None otherwise.

    A statement ``dist(C) = 7`` that repeats a distance already known also counts, so
    ``dist(A) = 0`` for the start node is correct.
    """
    text = normalize_step(step)
    sides = text.split("=")
    first = _DIST_RE.search(sides[0])  # words before it, such as "So", are ignored
    target = _DIST_RE.fullmatch(sides[0][first.start() :].strip()) if first else None
    if target is None or len(sides) < 2:
        return None
    node = target.group(1).upper()
    if len(sides) == 2:
        if node in known and safe_value(sides[1]) == known[node]:
            return node, known[node]
        return None
    sources = _DIST_RE.findall(sides[1])
    if len(sources) != 1:
        return None
    source = sources[0].upper()
    edge = _edge_key(source, node)
    if source == node or source not in known or edge not in weights:
        return None

    def substitute(side: str) -> str | None:
        for a, b in _WEIGHT_RE.findall(side):
            if _edge_key(a, b) not in weights:
                return None
        side = _WEIGHT_RE.sub(lambda m: f"({weights[_edge_key(m.group(1), m.group(2))]})", side)
        for name in _DIST_RE.findall(side):
            if name.upper() not in known:
                return None
        return _DIST_RE.sub(lambda m: f"({known[m.group(1).upper()]})", side)

    expected = known[source] + weights[edge]
    for side in sides[1:]:
        substituted = substitute(side)
        if substituted is None or safe_value(substituted) != expected:
            return None
    if node in known and expected > known[node]:
        return None
    return node, expected


def known_distances(
    source: str, weights: dict[str, int], steps: Sequence[str]
) -> dict[str, Fraction]:
    """Distances established by the correct relaxations among ``steps`` (source: 0)."""
    known = {source: Fraction(0)}
    for step in steps:
        relaxed = _relaxation(step, weights, known)
        if relaxed is not None:
            known[relaxed[0]] = relaxed[1]
    return known


class ShortestPathTask(ProceduralTask):
    """Find the length of the shortest path between two nodes; the answer is an integer.

    Difficulty knobs:
        num_nodes (4-8): nodes are the letters A, B, C, ...
        extra_edges (0-8): edges added to a random spanning tree.
        max_weight (5-20): edge weights are drawn from 1..max_weight.
    """

    name = "shortest_path"
    instruction = (
        "Find the length of the shortest path. Write one edge relaxation per line in the form "
        "`dist(C) = dist(A) + w(A,C) = 0 + 7 = 7`, where dist(A) is already known (the start "
        "node has distance 0). End with the length in the form \\boxed{ANSWER}."
    )
    difficulty_ranges = MappingProxyType(
        {"num_nodes": (4, 8), "extra_edges": (0, 8), "max_weight": (5, 20)}
    )
    default_difficulty = MappingProxyType({"num_nodes": 5, "extra_edges": 3, "max_weight": 9})

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        count = self._knobs["num_nodes"]
        nodes = list(string.ascii_uppercase[:count])
        weights: dict[str, int] = {}
        for i in range(1, count):
            parent = nodes[rng.randrange(i)]
            weights[_edge_key(parent, nodes[i])] = rng.randint(1, self._knobs["max_weight"])
        possible = [
            _edge_key(a, b)
            for i, a in enumerate(nodes)
            for b in nodes[i + 1 :]
            if _edge_key(a, b) not in weights
        ]
        for edge in rng.sample(possible, min(self._knobs["extra_edges"], len(possible))):
            weights[edge] = rng.randint(1, self._knobs["max_weight"])

        source, target = nodes[0], nodes[-1]
        distance, previous = _dijkstra(nodes, weights, source)
        path = [target]
        while path[-1] != source:
            path.append(previous[path[-1]])
        path.reverse()

        steps = []
        for a, b in zip(path, path[1:], strict=False):
            w = weights[_edge_key(a, b)]
            steps.append(
                f"dist({b}) = dist({a}) + w({a},{b}) = {distance[a]} + {w} = {distance[b]}"
            )
        answer = str(distance[target])
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        edge_text = ", ".join(f"{edge[0]}-{edge[1]}: {w}" for edge, w in sorted(weights.items()))
        question = (
            f"An undirected graph has the weighted edges {edge_text}. What is the length of the "
            f"shortest path from {source} to {target}?"
        )
        metadata = {"weights": dict(sorted(weights.items())), "start": source, "end": target}
        return question, answer, steps, metadata

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        weights = dict(problem.metadata["weights"])
        known = known_distances(problem.metadata["start"], weights, previous_steps)
        return _relaxation(step, weights, known) is not None

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        value = parse_number(answer)
        return value is not None and value == Fraction(problem.answer)


def _dijkstra(
    nodes: Sequence[str], weights: dict[str, int], source: str
) -> tuple[dict[str, int], dict[str, str]]:
    distance = {source: 0}
    previous: dict[str, str] = {}
    queue = [(0, source)]
    done: set[str] = set()
    while queue:
        d, node = heapq.heappop(queue)
        if node in done:
            continue
        done.add(node)
        for other in nodes:
            edge = _edge_key(node, other)
            if other == node or edge not in weights:
                continue
            candidate = d + weights[edge]
            if candidate < distance.get(other, candidate + 1):
                distance[other] = candidate
                previous[other] = node
                heapq.heappush(queue, (candidate, other))
    return distance, previous
