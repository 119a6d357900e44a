"""Countdown: reach a target by combining the given numbers with ``+ - * /``.

Each step combines two AVAILABLE numbers, ``8 * 3 = 24``: the operands must be in the
multiset of numbers not used yet (the given numbers plus earlier results, each usable
once), and the result must be correct. The final answer is one expression that uses each
given number at most once and equals the target, such as ``\\boxed{(8 - 4) * 6}``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import (
    ProceduralTask,
    normalize_step,
    safe_value,
)

_NUMBER = r"-?\d+(?:/\d+)?"
_OPERATION_RE = re.compile(
    rf"(?<![\d/])({_NUMBER})\s*([+\-*/])\s*({_NUMBER})\s*=\s*({_NUMBER})(?![\d/])"
)
_LITERAL_RE = re.compile(r"\d+(?:\.\d+)?")


def _number(text: str) -> Fraction:
    return Fraction(text)


def _apply(left: Fraction, op: str, right: Fraction) -> Fraction | None:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return None
    return left / right


def parse_operation(step: str) -> tuple[Fraction, str, Fraction, Fraction] | None:
    """Read the last ``a op b = c`` in a step as exact numbers; None if there is none."""
    matches = _OPERATION_RE.findall(normalize_step(step))
    if not matches:
        return None
    left, op, right, result = matches[-1]
    return _number(left), op, _number(right), _number(result)


def available_after(numbers: Sequence[int], steps: Sequence[str]) -> Counter:
    """Return the multiset of usable numbers after replaying the correct operations in ``steps``.

    Steps that are not a correct operation on available numbers change nothing, so one
    wrong step does not poison the judgement of the steps after it.
    """
    pool: Counter = Counter(Fraction(n) for n in numbers)
    for step in steps:
        applied = _apply_step(pool, step)
        if applied is not None:
            pool = applied
    return pool


def _apply_step(pool: Counter, step: str) -> Counter | None:
    operation = parse_operation(step)
    if operation is None:
        return None
    left, op, right, result = operation
    needed = Counter([left, right])
    if any(pool[value] < count for value, count in needed.items()):
        return None
    if _apply(left, op, right) != result:
        return None
    new_pool = pool - needed
    new_pool[result] += 1
    return new_pool


class CountdownTask(ProceduralTask):
    """Combine the given numbers to reach a target.

    Gold solutions keep every intermediate result a positive integer. The step checker
    accepts any exactly correct operation on available numbers, fractions and negative
    results included.

    Difficulty knobs:
        num_count (3-6): how many numbers are given (the target may need fewer of them).
        max_number (10-100): the given numbers are drawn from 1..max_number.
    """

    name = "countdown"
    instruction = (
        "Reach the target number using the given numbers and + - * /. Each number may be "
        "used at most once. Write one operation per line on two available numbers, for "
        "example `8 * 3 = 24`; its result becomes available and the two operands are used "
        "up. End with the whole expression as the final answer, for example "
        "\\boxed{(8 - 4) * 6}."
    )
    difficulty_ranges = MappingProxyType({"num_count": (3, 6), "max_number": (10, 100)})
    default_difficulty = MappingProxyType({"num_count": 4, "max_number": 25})

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        count = self._knobs["num_count"]
        numbers = [rng.randint(1, self._knobs["max_number"]) for _ in range(count)]
        while True:
            result = self._build(rng, numbers)
            if result is not None:
                break
        target, expression, steps = result
        question = (
            f"Using the numbers {numbers}, each at most once, and the operations + - * /, "
            f"make {target}."
        )
        steps.append(f"The answer is \\boxed{{{expression}}}.")
        metadata = {"numbers": list(numbers), "target": target}
        return question, expression, steps, metadata

    def _build(self, rng: Any, numbers: list[int]) -> tuple[int, str, list[str]] | None:
        """Combine a random subset of at least two numbers; None if the target is trivial."""
        pool = [(n, str(n)) for n in numbers]
        rng.shuffle(pool)
        used = rng.randint(max(2, len(numbers) - 1), len(numbers))
        pool = pool[:used]
        steps: list[str] = []
        while len(pool) > 1:
            i, j = rng.sample(range(len(pool)), 2)
            (a, a_text), (b, b_text) = pool[i], pool[j]
            if a < b:
                (a, a_text), (b, b_text) = (b, b_text), (a, a_text)
            choices = ["+", "*"]
            if a > b:
                choices.append("-")
            if b > 1 and a % b == 0:
                choices.append("/")
            op = rng.choice(choices)
            value = int(_apply(Fraction(a), op, Fraction(b)))
            if value > 10_000:
                op, value = "+", a + b
            steps.append(f"{a} {op} {b} = {value}")
            rest = [item for k, item in enumerate(pool) if k not in (i, j)]
            pool = [*rest, (value, f"({a_text} {op} {b_text})")]
        target, expression = pool[0]
        if target in numbers or target <= 0:
            return None
        if expression.startswith("(") and expression.endswith(")"):
            expression = expression[1:-1]
        return target, expression, steps

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        pool = available_after(problem.metadata["numbers"], previous_steps)
        return _apply_step(pool, step) is not None

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        """Check that the expression uses given numbers at most once each and equals the target."""
        text = answer.split("=")[0] if "=" in answer else answer
        if re.search(r"[^\d\s+\-*/().]", text):
            return False
        literals = Counter(Fraction(token) for token in _LITERAL_RE.findall(text))
        allowed = Counter(Fraction(n) for n in problem.metadata["numbers"])
        if not literals or any(allowed[value] < count for value, count in literals.items()):
            return False
        value = safe_value(text)
        return value is not None and value == problem.metadata["target"]


__all__ = ["CountdownTask", "available_after", "parse_operation"]
