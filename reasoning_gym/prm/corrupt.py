"""Erroneous solutions with exact step labels, made by corrupting one gold step.

Gold solutions of procedural tasks are chains of equations such as ``"3 * 7 = 21"`` and
``"12 + 21 = 33"`` ending with ``"The answer is \\boxed{33}."``. One step is corrupted:

* ``"result"``: the right-hand side is wrong (``3 * 7 = 24``);
* ``"operand"``: a number that is neither in the question nor an earlier result replaces
  an operand, and the arithmetic is redone correctly (``3 * 8 = 24``);
* ``"skip"``: a step is removed, so the first later step that uses its result uses a
  number never derived.

The changed value is propagated: later steps that use the old result are recomputed with
the new one, and the final answer follows, as a policy that made the mistake would write.
The earliest wrong step is known by construction. Under the step semantics of
:func:`check_equation_step` (true arithmetic on known numbers), every step before it is
correct and it is not. With ``task.check_step`` available, :func:`corrupted_solutions`
can re-derive the label with the task's own checker and drop samples where they differ.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reasoning_gym.prm.data import LabeledSolution, labels_from_first_wrong
from reasoning_gym.tasks.base import Problem, Task

logger = logging.getLogger(__name__)

CORRUPTION_KINDS = ("result", "operand", "skip")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_EQUATION = re.compile(r"^(?P<lhs>[\d\s.+\-*/()x×÷]+?)\s*=\s*(?P<rhs>-?\d+(?:\.\d+)?)\s*\.?\s*$")
_BOXED = re.compile(r"\\boxed\{\s*(-?\d+(?:\.\d+)?)\s*\}")
_MAX_DIGITS = 30


class _ExpressionError(ValueError):
    pass


def evaluate_expression(text: str) -> Fraction:
    """Evaluate ``+ - * / ( )`` arithmetic on decimal numbers exactly.

    A small recursive-descent parser; no ``eval``. ``x``/``×`` mean ``*`` and ``÷``
    means ``/``. Raises ValueError on anything else, on division by zero and on numbers
    of more than 30 digits.
    """
    tokens = re.findall(r"\d+(?:\.\d+)?|[-+*/()x×÷]|\S", text)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def atom() -> Fraction:
        token = peek()
        if token is None:
            raise _ExpressionError(f"unexpected end of expression {text!r}")
        if token == "-":
            take()
            return -atom()
        if token == "(":
            take()
            value = expression()
            if peek() != ")":
                raise _ExpressionError(f"missing ')' in {text!r}")
            take()
            return value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            if len(token) > _MAX_DIGITS:
                raise _ExpressionError(f"number {token[:12]}... is too long")
            take()
            return Fraction(token)
        raise _ExpressionError(f"unexpected {token!r} in {text!r}")

    def term() -> Fraction:
        value = atom()
        while peek() in ("*", "/", "x", "×", "÷"):
            operator = take()
            right = atom()
            if operator in ("/", "÷"):
                if right == 0:
                    raise _ExpressionError(f"division by zero in {text!r}")
                value /= right
            else:
                value *= right
        return value

    def expression() -> Fraction:
        value = term()
        while peek() in ("+", "-"):
            operator = take()
            right = term()
            value = value + right if operator == "+" else value - right
        return value

    value = expression()
    if position != len(tokens):
        raise _ExpressionError(f"unexpected {tokens[position]!r} in {text!r}")
    return value


def format_number(value: Fraction) -> str:
    """Write an integral Fraction as an integer and any other as a decimal; ValueError if
    the decimal does not terminate."""
    if value.denominator == 1:
        return str(value.numerator)
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        raise ValueError(f"{value} has no finite decimal form")
    text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    if Fraction(text) != value:
        raise ValueError(f"{value} cannot be written exactly with 12 decimals")
    return text


@dataclass(frozen=True)
class Equation:
    """A step ``lhs = rhs`` with its parsed parts."""

    lhs: str
    rhs: str

    @property
    def operands(self) -> list[str]:
        return _NUMBER.findall(self.lhs)


def parse_equation(step: str) -> Equation | None:
    """Return the step as an Equation when it is ``arithmetic = number``, else None."""
    match = _EQUATION.match(step.strip())
    if match is None:
        return None
    return Equation(match.group("lhs").strip(), match.group("rhs"))


def _numbers_in(text: str) -> set[Fraction]:
    return {Fraction(number) for number in _NUMBER.findall(text)}


def check_equation_step(
    question: str, previous_steps: Sequence[str], step: str, gold_answer: str | None = None
) -> float:
    """Score a step of an equation-chain solution: 1.0 if correct, else 0.0.

    An equation step is correct when its arithmetic is exact and every operand appears
    in the question or as the result of an earlier step. A final-answer step
    (``\\boxed{x}``) is correct when ``x`` equals ``gold_answer`` or, without a gold
    answer, the last earlier result. Any other step scores 0.0.
    """
    known = _numbers_in(question)
    last_result: Fraction | None = None
    for previous in previous_steps:
        equation = parse_equation(previous)
        if equation is not None:
            last_result = Fraction(equation.rhs)
            known.add(last_result)
    boxed = _BOXED.search(step)
    if boxed is not None:
        value = Fraction(boxed.group(1))
        if gold_answer is not None:
            try:
                return 1.0 if value == evaluate_expression(gold_answer) else 0.0
            except ValueError:
                return 0.0
        return 1.0 if value == last_result else 0.0
    equation = parse_equation(step)
    if equation is None:
        return 0.0
    try:
        value = evaluate_expression(equation.lhs)
    except ValueError:
        return 0.0
    if value != Fraction(equation.rhs):
        return 0.0
    if any(Fraction(operand) not in known for operand in equation.operands):
        return 0.0
    return 1.0


def _replace_numbers(text: str, mapping: dict[Fraction, str]) -> str:
    def substitute(match: re.Match) -> str:
        return mapping.get(Fraction(match.group(0)), match.group(0))

    return _NUMBER.sub(substitute, text)


def _propagate(steps: list[str], start: int, mapping: dict[Fraction, str]) -> list[str] | None:
    """Rewrite steps from ``start`` on with changed numbers and recomputed results.

    Returns None when a recomputed value has no exact decimal form.
    """
    output = list(steps[:start])
    for step in steps[start:]:
        equation = parse_equation(step)
        if equation is None:
            boxed = _BOXED.search(step)
            if boxed is not None and Fraction(boxed.group(1)) in mapping:
                replacement = mapping[Fraction(boxed.group(1))]
                step = step[: boxed.start(1)] + replacement + step[boxed.end(1) :]
            output.append(step)
            continue
        lhs = _replace_numbers(equation.lhs, mapping)
        if lhs == equation.lhs:
            output.append(step)
            continue
        try:
            value = format_number(evaluate_expression(lhs))
        except ValueError:
            return None
        mapping = {**mapping, Fraction(equation.rhs): value}
        output.append(f"{lhs} = {value}")
    return output


def _fresh_number(rng: Any, old: Fraction, avoid: set[Fraction]) -> str:
    """Pick an integer near ``old`` (or a small one) that is not in ``avoid``."""
    base = int(old)
    for _ in range(100):
        delta = rng.choice([-3, -2, -1, 1, 2, 3, 4, 5, 7, 10])
        candidate = Fraction(base + delta) if rng.random() < 0.8 else Fraction(rng.randint(2, 99))
        if candidate >= 0 and candidate != old and candidate not in avoid:
            return str(candidate.numerator)
    raise ValueError(f"could not find a replacement for {old}")


def corrupt_steps(
    question: str, gold_steps: Sequence[str], rng: Any, kinds: Sequence[str] = CORRUPTION_KINDS
) -> tuple[list[str], int, str]:
    """Corrupt one step of a gold equation-chain solution.

    Args:
        question: The problem statement (its numbers count as known operands).
        gold_steps: The gold steps; at least one must be an equation.
        rng: A ``random.Random`` instance.
        kinds: Corruption kinds to choose from (see the module docstring).

    Returns:
        ``(steps, first_wrong_index, kind)``.

    Raises:
        ValueError: No corruption of the requested kinds applies to this solution.
    """
    unknown = [kind for kind in kinds if kind not in CORRUPTION_KINDS]
    if unknown or not kinds:
        raise ValueError(f"corruption kinds {list(kinds)} are invalid; use {CORRUPTION_KINDS}")
    steps = list(gold_steps)
    equations = [i for i, step in enumerate(steps) if parse_equation(step) is not None]
    if not equations:
        raise ValueError("the gold solution has no equation step to corrupt")
    attempts = [(kind, index) for kind in kinds for index in equations]
    rng.shuffle(attempts)
    for kind, index in attempts:
        corrupted = _corrupt_one(question, steps, index, kind, rng)
        if corrupted is not None:
            return corrupted[0], corrupted[1], kind
    raise ValueError(f"no corruption of kinds {list(kinds)} applies to steps {steps}")


def _corrupt_one(
    question: str, steps: list[str], index: int, kind: str, rng: Any
) -> tuple[list[str], int] | None:
    equation = parse_equation(steps[index])
    old_result = Fraction(equation.rhs)
    known = _numbers_in(question)
    for previous in steps[:index]:
        previous_equation = parse_equation(previous)
        if previous_equation is not None:
            known.add(Fraction(previous_equation.rhs))
    if kind == "result":
        new_result = _fresh_number(rng, old_result, {old_result})
        mapping = {old_result: new_result}
        rest = _propagate(steps, index + 1, mapping)
        if rest is None:
            return None
        rest[index] = f"{equation.lhs} = {new_result}"
        return rest, index
    if kind == "operand":
        operands = equation.operands
        if not operands:
            return None
        position = rng.randrange(len(operands))
        old = Fraction(operands[position])
        new = _fresh_number(rng, old, known)
        matches = list(_NUMBER.finditer(equation.lhs))[position]
        lhs = equation.lhs[: matches.start()] + new + equation.lhs[matches.end() :]
        try:
            value = format_number(evaluate_expression(lhs))
        except ValueError:
            return None
        if Fraction(value) == old_result:
            return None  # the wrong operand happens to give the right result
        rest = _propagate(steps, index + 1, {old_result: value})
        if rest is None:
            return None
        rest[index] = f"{lhs} = {value}"
        return rest, index
    # kind == "skip": the first later step that uses the dropped result is wrong.
    remaining = steps[:index] + steps[index + 1 :]
    if old_result in known:
        return None  # the result is also known from elsewhere, so nothing becomes wrong
    for position in range(index, len(remaining)):
        later = parse_equation(remaining[position])
        if later is not None and old_result in {Fraction(x) for x in later.operands}:
            return remaining, position
    return None


def gold_steps_of(problem: Problem) -> list[str]:
    """Return the problem's gold steps or raise ValueError when it has none."""
    if not problem.gold_steps:
        raise ValueError(
            f"problem {problem.id!r} has no gold steps, so it cannot be corrupted; "
            "use a procedural task such as 'arithmetic'"
        )
    return list(problem.gold_steps)


def first_wrong_by_checker(task: Task, problem: Problem, steps: Sequence[str]) -> int:
    """Return the first step that ``task.check_step`` scores below 0.5, or -1."""
    for i, step in enumerate(steps):
        score = task.check_step(problem, tuple(steps[:i]), step)
        if score is not None and score < 0.5:
            return i
    return -1


def corrupted_solutions(
    task: Task | str,
    num: int,
    seed: int = 0,
    error_fraction: float = 0.5,
    kinds: Sequence[str] = CORRUPTION_KINDS,
    start_index: int = 0,
    after_error: str = "zero",
    check_with_task: bool = True,
) -> list[LabeledSolution]:
    """Build ``num`` labelled solutions: gold ones and ones with one corrupted step.

    Args:
        task: A task with gold steps (or its name).
        num: Number of solutions.
        seed: Seed of the problems and of the corruption choices.
        error_fraction: Expected fraction of corrupted solutions.
        kinds: Corruption kinds to use.
        start_index: Index of the first problem; disjoint ranges give disjoint splits.
        after_error: ``"zero"`` keeps steps after the error labelled 0.0, ``"exclude"``
            drops them.
        check_with_task: When the task has a step checker, recompute each label with it
            and drop samples where it disagrees with the constructed label (logged).

    Returns:
        Solutions whose ``meta`` contains ``problem`` (the Problem), ``gold_answer``,
        ``first_wrong`` and ``kind`` (``"gold"`` or the corruption kind).
    """
    import random

    from reasoning_gym.tasks.base import make_task

    if num < 0:
        raise ValueError(f"num={num} must not be negative")
    if not 0.0 <= error_fraction <= 1.0:
        raise ValueError(f"error_fraction={error_fraction} is outside [0, 1]")
    task = make_task(task)
    rng = random.Random(f"corrupt:{task.name}:{seed}")
    solutions: list[LabeledSolution] = []
    dropped = 0
    index = start_index
    while len(solutions) < num:
        problem = task.problem(index, seed=seed)
        index += 1
        steps = gold_steps_of(problem)
        first_wrong, kind = -1, "gold"
        if rng.random() < error_fraction:
            try:
                steps, first_wrong, kind = corrupt_steps(problem.question, steps, rng, kinds)
            except ValueError:
                dropped += 1
                continue
        if check_with_task and task.has_step_checker:
            checked = first_wrong_by_checker(task, problem, steps)
            if checked != first_wrong:
                dropped += 1
                logger.debug(
                    "dropped %s (%s): constructed first wrong step %d, task checker returns %d",
                    problem.id,
                    kind,
                    first_wrong,
                    checked,
                )
                continue
        labels = labels_from_first_wrong(len(steps), first_wrong, after_error)
        meta = {
            "source": f"corrupted:{task.name}",
            "id": problem.id,
            "problem": problem,
            "gold_answer": problem.answer,
            "first_wrong": first_wrong,
            "kind": kind,
        }
        solutions.append(LabeledSolution(problem.question, steps[: len(labels)], labels, meta))
        if index - start_index > 20 * max(num, 1) + 100:
            raise ValueError(
                f"only {len(solutions)} of {num} solutions could be built from task "
                f"{task.name!r} after {index - start_index} problems; most corruptions were "
                "rejected by the task's step checker"
            )
    if dropped:
        logger.info("corrupted_solutions: dropped %d candidate(s) while building %d", dropped, num)
    return solutions
