"""Fraction arithmetic, evaluated left to right one operation per step.

A step is a chain of equalities such as ``3/4 + 5/6 = 9/12 + 10/12 = 19/12``. It is correct
when it states at least one equation and every equation in it is exactly true. Its first
expression and its last value must also equal the next running value, which is the result
of the previous correct step (or the first term) combined with the next operator and term.
So the checker rejects both arithmetic slips and steps that compute the wrong
sub-expression.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import (
    ProceduralTask,
    format_number,
    normalize_step,
)
from reasoning_gym.verify.safe_arith import find_equations, parse_number

_SYMBOLS = {"+": "+", "-": "-", "*": "×", "/": "÷"}


def _operand(value: Fraction, op: str) -> str:
    text = format_number(value)
    return f"({text})" if op in "*/" and "/" in text or value < 0 else text


def _combine(left: Fraction, op: str, right: Fraction) -> Fraction:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return left / right


def _running_values(terms: Sequence[Fraction], ops: Sequence[str]) -> list[Fraction]:
    values = [terms[0]]
    for op, term in zip(ops, terms[1:], strict=False):
        values.append(_combine(values[-1], op, term))
    return values


class FractionsTask(ProceduralTask):
    """Evaluate an expression of fractions; the answer is an exact fraction or integer.

    Difficulty knobs:
        num_terms (2-5): number of fractions in the expression.
        max_denominator (2-20): denominators are drawn from 2..max_denominator.
        operations (1-2): 1 uses ``+ -``; 2 also uses ``× ÷``.
    """

    name = "fractions"
    instruction = (
        "Evaluate the expression step by step, left to right, one operation per line. Write "
        "each step as a chain of equal expressions starting from the current value and the "
        "next term, for example `3/4 + 5/6 = 9/12 + 10/12 = 19/12`. "
        "End with the final answer as a fraction in the form \\boxed{ANSWER}."
    )
    difficulty_ranges = MappingProxyType(
        {"num_terms": (2, 5), "max_denominator": (2, 20), "operations": (1, 2)}
    )
    default_difficulty = MappingProxyType({"num_terms": 3, "max_denominator": 9, "operations": 1})

    def _fraction(self, rng: Any) -> Fraction:
        denominator = rng.randint(2, self._knobs["max_denominator"])
        numerator = rng.randint(1, 2 * denominator - 1)
        return Fraction(numerator, denominator)

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        ops_pool = "+-" if self._knobs["operations"] == 1 else "+-*/"
        terms = [self._fraction(rng) for _ in range(self._knobs["num_terms"])]
        ops = [rng.choice(ops_pool) for _ in terms[1:]]

        # Written left to right; brackets keep the left-to-right order under precedence.
        text = format_number(terms[0])
        for index, (op, term) in enumerate(zip(ops, terms[1:], strict=False)):
            if op in "*/" and index > 0 and ops[index - 1] in "+-":
                text = f"({text})"
            text = f"{text} {_SYMBOLS[op]} {_operand(term, op)}"

        values = _running_values(terms, ops)
        steps = [
            self._step_text(values[i], op, term, values[i + 1])
            for i, (op, term) in enumerate(zip(ops, terms[1:], strict=False))
        ]
        answer = format_number(values[-1])
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        question = f"Compute {text}. Give the answer as a fraction in lowest terms."
        metadata = {
            "terms": [format_number(t) for t in terms],
            "operators": list(ops),
        }
        return question, answer, steps, metadata

    @staticmethod
    def _step_text(left: Fraction, op: str, right: Fraction, result: Fraction) -> str:
        start = f"{_operand(left, op)} {op} {_operand(right, op)}"
        parts = [start]
        if op in "+-" and left.denominator != right.denominator:
            common = math.lcm(left.denominator, right.denominator)
            a = left.numerator * (common // left.denominator)
            b = right.numerator * (common // right.denominator)
            parts.append(f"{a}/{common} {op} {b}/{common}")
            combined = a + b if op == "+" else a - b
            if (combined, common) != (result.numerator, result.denominator):
                parts.append(f"{combined}/{common}")
        elif op == "/":
            parts.append(f"{_operand(left, '*')} * {_operand(1 / right, '*')}")
        parts.append(format_number(result))
        return " = ".join(dict.fromkeys(parts))

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        terms = [Fraction(t) for t in problem.metadata["terms"]]
        ops = problem.metadata["operators"]
        # Position in the expression: how many earlier steps were correct combinations.
        position = 0
        values = _running_values(terms, ops)
        for previous in previous_steps:
            if position < len(ops) and self._is_combination(previous, values, position):
                position += 1
        if position >= len(ops):
            return False
        return self._is_combination(step, values, position)

    @staticmethod
    def _is_combination(
        step: str,
        values: Sequence[Fraction],
        position: int,
    ) -> bool:
        """Return whether ``step`` combines running value ``position`` with the next term."""
        equations = find_equations(normalize_step(step))
        if not equations or not all(eq.is_correct for eq in equations):
            return False
        expected = values[position + 1]
        return equations[0].values[0] == expected and equations[-1].result == expected

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        value = parse_number(answer)
        return value is not None and value == Fraction(problem.answer)
