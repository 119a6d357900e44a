"""Procedural multi-step arithmetic word problems with an exact step checker.

A problem follows one person's collection of items through ``num_operations``
calculations: buying more, giving some away, multiplying, splitting into equal bags and
buying boxes of items. Every intermediate result is a non-negative integer, divisions
are exact, and values stay at most ``max(100, max_operand ** 2)``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem, Task, problem_rng
from reasoning_gym.verify.answers import extract_answer, normalize_answer
from reasoning_gym.verify.safe_arith import extract_numbers, find_equations, parse_number

__all__ = ["ArithmeticTask"]

_NAMES = ("Alex", "Maya", "Sam", "Priya", "Omar", "Lena", "Kenji", "Zoe", "Ivan", "Ana")
_ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "coins", "stamps", "shells")
_MAX_BOXES = 12

#: (sentence of the question, gold equation steps, value after the operation)
_Outcome = tuple[str, list[str], int]

# "Step 2:", "2." or "2)" at the start of a step labels it and is not a number to check.
_STEP_LABEL_RE = re.compile(r"^\s*(?:step\s*\d+\s*[:.)]?|\d+[.)])\s+(?=\S)", re.IGNORECASE)


class ArithmeticTask(Task):
    """Multi-step integer word problems ("Maya has 12 apples. Then she buys ...").

    Args:
        num_operations: Number of calculations per problem, 1..8.
        max_operand: Largest number added, subtracted, multiplied or divided by, and the
            largest starting value, 5..10000.
        seed: Base seed, added to the ``seed`` argument of :meth:`problem`.

    Raises:
        ValueError: An argument is outside its documented range.
        TypeError: An argument is not an int.
    """

    name = "arithmetic"
    instruction = (
        "Solve the problem step by step. Write one calculation per line as an equation, "
        'for example "3 * 7 = 21", using only numbers from the question or results of '
        'earlier lines. End with the line "The answer is \\boxed{ANSWER}."'
    )
    difficulty_ranges = MappingProxyType({"num_operations": (1, 8), "max_operand": (5, 10000)})

    def __init__(self, num_operations: int = 3, max_operand: int = 20, seed: int = 0):
        for label, value in (
            ("num_operations", num_operations),
            ("max_operand", max_operand),
            ("seed", seed),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label} must be an int, got {type(value).__name__}: {value!r}")
        for label, value in (("num_operations", num_operations), ("max_operand", max_operand)):
            low, high = self.difficulty_ranges[label]
            if not low <= value <= high:
                raise ValueError(f"{label}={value} is outside [{low}, {high}]; pick a value in it")
        self.num_operations = num_operations
        self.max_operand = max_operand
        self.seed = seed

    def difficulty(self) -> dict[str, Any]:
        """Return the difficulty knobs ``num_operations`` and ``max_operand``."""
        return {"num_operations": self.num_operations, "max_operand": self.max_operand}

    def problem(self, index: int, seed: int = 0) -> Problem:
        """Generate problem ``index`` from the RNG of ``(self.seed + seed, index)``."""
        for label, value in (("index", index), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label} must be an int, got {type(value).__name__}: {value!r}")
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        effective_seed = self.seed + seed
        rng = problem_rng(self.name, effective_seed, index)
        question, steps, answer = _generate(rng, self.num_operations, self.max_operand)
        difficulty = self.difficulty()
        return Problem(
            id=(
                f"arithmetic/n{self.num_operations}-m{self.max_operand}"
                f"/seed={effective_seed}/index={index}"
            ),
            question=question,
            answer=str(answer),
            gold_steps=(*steps, f"The answer is \\boxed{{{answer}}}."),
            metadata={
                "task": self.name,
                "source": "procedural",
                "seed": effective_seed,
                "index": index,
                "difficulty": difficulty,
            },
        )

    def check_step(self, problem: Problem, previous_steps: Sequence[str], step: str) -> float:
        """Score a step 1.0 when it makes correct progress, else 0.0.

        Known numbers are those in the question and the results of equations in earlier
        steps (and earlier in the same step). A step scores 1.0 when it states at least
        one equation, every equation is true and every number left of its last ``=`` is
        known; or when it is a final answer equal to the gold answer. Everything else
        scores 0.0: a false equation, a made-up number, a wrong final answer, and also
        a step without an equation or answer (filler or a restatement). Filler is not
        wrong, but scoring it 1.0 let process rewards pay more for stalling than for
        solving, and PPO learned to stall.

        The checker catches calculation errors and made-up numbers, not a wrong plan:
        ``3 + 7 = 10`` scores 1.0 even if the question needs ``3 * 7``.
        """
        known = set(extract_numbers(problem.question))
        for previous in previous_steps:
            known.update(_equation_results(previous))
        text = _STEP_LABEL_RE.sub("", step, count=1)
        answer = extract_answer(text)

        equations = find_equations(text)
        for equation in equations:
            if not equation.is_correct:
                return 0.0
            if any(number not in known for number in equation.operand_numbers):
                return 0.0
            known.update(value for value in equation.values if value is not None)

        if answer is not None:
            value = parse_number(normalize_answer(answer))
            return 1.0 if value is not None and value == parse_number(problem.answer) else 0.0
        return 1.0 if equations else 0.0


def _equation_results(text: str) -> Iterable[Fraction]:
    for equation in find_equations(text):
        if equation.is_correct and equation.result is not None:
            yield equation.result


def _generate(
    rng: random.Random, num_operations: int, max_operand: int
) -> tuple[str, list[str], int]:
    """Build (question, gold equation steps, answer) for one problem."""
    name = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    cap = max(100, max_operand**2)
    value = rng.randint(2, max_operand)
    sentences = [f"{name} has {value} {item}."]
    steps: list[str] = []
    remaining = num_operations
    while remaining > 0:
        options = _feasible_operations(value, remaining, max_operand, cap)
        operation = rng.choice(options)
        sentence, new_steps, value = operation(rng, value, name, item, max_operand, cap)
        sentences.append(sentence)
        steps.extend(new_steps)
        remaining -= len(new_steps)
    sentences.append(f"How many {item} does {name} have now?")
    return " ".join(sentences), steps, value


def _feasible_operations(
    value: int, remaining: int, max_operand: int, cap: int
) -> list[Callable[..., _Outcome]]:
    options = []
    if value < cap:
        options.append(_add)
    if value >= 2:
        options.append(_subtract)
    if cap // value >= 2:
        options.append(_multiply)
    if _divisors(value, max_operand):
        options.append(_split)
    if remaining >= 2 and (cap - value) // 2 >= 2:
        options.append(_boxes)
    return options


def _divisors(value: int, max_operand: int) -> list[int]:
    return [d for d in range(2, min(max_operand, value) + 1) if value % d == 0]


def _add(
    rng: random.Random, value: int, name: str, item: str, max_operand: int, cap: int
) -> _Outcome:
    amount = rng.randint(1, min(max_operand, cap - value))
    result = value + amount
    return f"Then {name} buys {amount} more {item}.", [f"{value} + {amount} = {result}"], result


def _subtract(
    rng: random.Random, value: int, name: str, item: str, max_operand: int, cap: int
) -> _Outcome:
    amount = rng.randint(1, min(max_operand, value - 1))
    result = value - amount
    sentence = f"Then {name} gives away {amount} {item}."
    return sentence, [f"{value} - {amount} = {result}"], result


def _multiply(
    rng: random.Random, value: int, name: str, item: str, max_operand: int, cap: int
) -> _Outcome:
    factor = rng.randint(2, min(max_operand, cap // value))
    result = value * factor
    sentence = f"Then {name} collects more until there are {factor} times as many {item}."
    return sentence, [f"{value} * {factor} = {result}"], result


def _split(
    rng: random.Random, value: int, name: str, item: str, max_operand: int, cap: int
) -> _Outcome:
    parts = rng.choice(_divisors(value, max_operand))
    result = value // parts
    sentence = f"Then {name} splits the {item} equally into {parts} bags and keeps one bag."
    return sentence, [f"{value} / {parts} = {result}"], result


def _boxes(
    rng: random.Random, value: int, name: str, item: str, max_operand: int, cap: int
) -> _Outcome:
    boxes = rng.randint(2, min(max_operand, _MAX_BOXES, (cap - value) // 2))
    per_box = rng.randint(2, max(2, min(max_operand, (cap - value) // boxes)))
    bought = boxes * per_box
    result = value + bought
    sentence = f"Then {name} buys {boxes} boxes with {per_box} {item} in each box."
    steps = [f"{boxes} * {per_box} = {bought}", f"{value} + {bought} = {result}"]
    return sentence, steps, result
