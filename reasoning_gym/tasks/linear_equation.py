"""Multi-step linear equations in one unknown ``x``, checked by solution-set equivalence.

A step is an equation in ``x`` (text before a colon is ignored, so ``Subtract 2x: x + 3 = 12``
works). It is correct when it has exactly the same solution set as the problem's equation,
so every valid transformation (expanding, collecting terms, moving terms, dividing) passes
and any slip that changes the solution fails.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import (
    ProceduralTask,
    format_number,
    normalize_step,
    safe_value,
)
from reasoning_gym.verify.safe_arith import parse_number

# Sample points at which both sides are evaluated: three points identify a linear function
# and confirm that it is linear (a quadratic slip such as x*x fails the third point).
_SAMPLE_POINTS = (Fraction(0), Fraction(1), Fraction(2))
_ALL = "all"
_NONE = "none"


def _linear_text(a: int, b: int) -> str:
    """Write ``a*x + b`` the way a person does: ``3x - 4``, ``-x``, ``7``."""
    parts: list[str] = []
    if a != 0:
        coefficient = {1: "", -1: "-"}.get(a, str(a))
        parts.append(f"{coefficient}x")
    if b != 0 or not parts:
        if parts:
            parts.append(f"- {-b}" if b < 0 else f"+ {b}")
        else:
            parts.append(str(b))
    return " ".join(parts)


def _group_text(a: int, inner_a: int, inner_b: int) -> str:
    """Write ``a(inner_a*x + inner_b)``."""
    return f"{a}({_linear_text(inner_a, inner_b)})"


def _constant_suffix(constant: int) -> str:
    """Write a constant term after an expression: `` + 4``, `` - 4`` or nothing for 0."""
    if constant > 0:
        return f" + {constant}"
    if constant < 0:
        return f" - {-constant}"
    return ""


def _substitute(side: str, value: Fraction) -> str:
    """Replace the unknown by ``(value)`` and make implicit products explicit."""
    text = re.sub(r"(?<=[\d)])\s*(?=[x(])", "*", side)  # 3x -> 3*x, 2(x -> 2*(x
    text = re.sub(r"(?<=x)\s*(?=[\d(])", "*", text)  # x(…) -> x*(…)
    text = text.replace(")(", ")*(")
    return text.replace("x", f"({value.numerator}/{value.denominator})")


def _side_linear(side: str) -> tuple[Fraction, Fraction] | None:
    """Return ``(a, b)`` with ``side == a*x + b``, or None when it is not linear arithmetic."""
    if re.search(r"[^0-9x+\-*/^().\s]", side):
        return None
    values = []
    for point in _SAMPLE_POINTS:
        value = safe_value(_substitute(side, point))
        if value is None:
            return None
        values.append(value)
    slope = values[1] - values[0]
    if values[2] - values[1] != slope:
        return None
    return slope, values[0]


@functools.lru_cache(maxsize=4096)
def solution_set(equation: str) -> Fraction | str | None:
    """Return the solution of a linear equation: a value, ``"all"``, ``"none"``; None if invalid."""
    text = normalize_step(equation, times_x=False).lower()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    sides = text.split("=")
    if len(sides) != 2 or "x" not in text:
        return None
    left = _side_linear(sides[0].strip())
    right = _side_linear(sides[1].strip())
    if left is None or right is None:
        return None
    slope = left[0] - right[0]
    offset = right[1] - left[1]
    if slope == 0:
        return _ALL if offset == 0 else _NONE
    return offset / slope


class LinearEquationTask(ProceduralTask):
    """Solve ``a(x + b) + c = d x + e``-style equations; the answer is an integer.

    Difficulty knobs:
        structure (1-4): 1 ``ax + b = c``; 2 ``ax + b = cx + d``; 3 adds brackets on the
            left; 4 brackets on both sides.
        max_coefficient (2-20): largest absolute coefficient and solution.
    """

    name = "linear_equation"
    instruction = (
        "Solve the equation for x step by step. Write one equation per line; each line must be "
        "an equation in x equivalent to the original, for example `3x + 6 = 2x + 11` then "
        "`x = 5`. Use `*` or juxtaposition for products (`3x`, `2(x + 1)`). "
        "End with the final answer in the form \\boxed{ANSWER}."
    )
    difficulty_ranges = MappingProxyType({"structure": (1, 4), "max_coefficient": (2, 20)})
    default_difficulty = MappingProxyType({"structure": 2, "max_coefficient": 9})

    def _nonzero(self, rng: Any, limit: int) -> int:
        value = rng.randint(1, limit)
        return value if rng.random() < 0.5 else -value

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        structure = self._knobs["structure"]
        limit = self._knobs["max_coefficient"]
        solution = rng.randint(-limit, limit)
        steps: list[str] = []

        # Left side: group * (x + inner) + constant, or a plain a*x + b.
        if structure >= 3:
            group = self._nonzero(rng, limit)
            inner = self._nonzero(rng, limit)
            left_const = rng.randint(-limit, limit)
            left_a, left_b = group, group * inner + left_const
            left_text = _group_text(group, 1, inner) + _constant_suffix(left_const)
        else:
            left_a = self._nonzero(rng, limit)
            left_b = rng.randint(-limit, limit)
            left_text = _linear_text(left_a, left_b)

        # Right side: x coefficient different from the left one, constant fixed by the solution.
        if structure == 1:
            right_a = 0
        else:
            right_a = left_a
            while right_a == left_a:
                right_a = rng.randint(-limit, limit)
        if structure == 4:
            group_r = self._nonzero(rng, limit)
            right_a = group_r
            if right_a == left_a:
                right_a += 1 if right_a > 0 else -1  # away from zero, so never 0
            right_const = rng.randint(-limit, limit)
            inner_r = left_a * solution + left_b - right_const - right_a * solution
            # right side = right_a (x + inner_r / right_a) + right_const needs integer division.
            inner_r_int = inner_r // right_a
            right_const += inner_r - inner_r_int * right_a
            right_b = right_a * inner_r_int + right_const
            right_text = _group_text(right_a, 1, inner_r_int) + _constant_suffix(right_const)
        else:
            right_b = left_a * solution + left_b - right_a * solution
            right_text = _linear_text(right_a, right_b)

        question = f"Solve for x: {left_text} = {right_text}"
        if structure >= 3:
            steps.append(f"{_linear_text(left_a, left_b)} = {_linear_text(right_a, right_b)}")
        slope = left_a - right_a
        constant = right_b - left_b
        if structure >= 2 or left_b != 0:
            steps.append(f"{_linear_text(slope, 0)} = {constant}")
        if slope != 1:
            steps.append(f"x = {format_number(Fraction(constant, slope))}")
        steps.append(f"The answer is \\boxed{{{solution}}}.")
        return question, str(solution), steps, {"equation": f"{left_text} = {right_text}"}

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        target = solution_set(problem.metadata["equation"])
        found = solution_set(step)
        return found is not None and found == target

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        text = answer.lower().replace(" ", "")
        if text.startswith("x="):
            text = text[2:]
        value = parse_number(text)
        return value is not None and value == Fraction(problem.answer)
