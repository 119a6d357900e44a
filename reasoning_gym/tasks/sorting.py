"""Sorting by swaps: each step swaps two out-of-order numbers and shows the new list.

A step reads ``swap 5 and 3 -> [3, 5, 9]``. The current list is the start list after the
earlier correct steps. A step is correct when both numbers are in the current list, the one
standing first is the larger (so the swap removes at least one inversion), and the list
shown is exactly the current list with the two swapped. The order in which the two numbers
are named is free. Adjacent swaps
(bubble or insertion sort) and long-range swaps (selection sort) both qualify. The final
answer is the sorted list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import ProceduralTask, normalize_step, parse_integer_list

_SWAP_RE = re.compile(
    r"swap\s+(-?\d+)\s*(?:and|with|,|&)?\s*(-?\d+)\s*(?:->|=>|:|to get|gives|giving|=)\s*(.+)$",
    re.IGNORECASE,
)


def parse_swap(step: str) -> tuple[int, int, list[int]] | None:
    """Read ``swap A and B -> [list]`` into ``(A, B, list)``; None if the step has another form."""
    match = _SWAP_RE.search(normalize_step(step))
    if match is None:
        return None
    shown = parse_integer_list(match.group(3))
    if shown is None:
        return None
    return int(match.group(1)), int(match.group(2)), shown


def apply_swap(current: list[int], first: int, second: int) -> list[int] | None:
    """Return the list after swapping ``first`` and ``second``; None unless they are inverted."""
    if first not in current or second not in current:
        return None
    i, j = current.index(first), current.index(second)
    if i > j:
        i, j = j, i
        first, second = second, first
    if current[i] <= current[j]:
        return None
    swapped = list(current)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped


def _after_step(current: list[int], step: str) -> list[int] | None:
    parsed = parse_swap(step)
    if parsed is None:
        return None
    swapped = apply_swap(current, parsed[0], parsed[1])
    if swapped is None or swapped != parsed[2]:
        return None
    return swapped


def current_list(start: Sequence[int], steps: Sequence[str]) -> list[int]:
    """Return the list after the correct swaps among ``steps``; other steps change nothing."""
    current = list(start)
    for step in steps:
        swapped = _after_step(current, step)
        if swapped is not None:
            current = swapped
    return current


class SortingTask(ProceduralTask):
    """Sort distinct integers in ascending order by swaps; the answer is the sorted list.

    Difficulty knobs:
        length (3-10): how many numbers the list has.
        max_value (9-999): numbers are distinct draws from 1..max_value (at least ``length``).
    """

    name = "sorting"
    instruction = (
        "Sort the list in ascending order by swapping two numbers per step; the two numbers "
        "must be out of order (the larger one stands first). Write each step as "
        "`swap 5 and 3 -> [3, 5, 9]` with the whole list after the swap. End with the sorted "
        "list in the form \\boxed{[1, 2, 3]}."
    )
    difficulty_ranges = MappingProxyType({"length": (3, 10), "max_value": (9, 999)})
    default_difficulty = MappingProxyType({"length": 5, "max_value": 99})

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        length = self._knobs["length"]
        high = max(self._knobs["max_value"], length)
        while True:
            numbers = rng.sample(range(1, high + 1), length)
            if numbers != sorted(numbers):
                break

        # Selection sort: at most length - 1 swaps, each of an inverted pair.
        steps = []
        current = list(numbers)
        for position in range(length - 1):
            smallest = min(range(position, length), key=current.__getitem__)
            if smallest != position:
                big, small = current[position], current[smallest]
                current[position], current[smallest] = small, big
                steps.append(f"swap {big} and {small} -> {current}")
        answer = str(current)
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        question = f"Sort the list {numbers} in ascending order."
        return question, answer, steps, {"numbers": list(numbers)}

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        current = current_list(problem.metadata["numbers"], previous_steps)
        return _after_step(current, step) is not None

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        return parse_integer_list(answer) == sorted(problem.metadata["numbers"])
