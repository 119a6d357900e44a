"""Shared pieces of the procedural step-checked tasks: lenient step parsing and a base class.

Every procedural task here generates problem ``index`` from ``problem_rng(name, seed, index)``,
stores in ``Problem.metadata`` everything its step checker needs, and checks steps exactly
(1.0 or 0.0). The helpers below normalise the spellings a model is likely to produce:
``x``/``×``/``·`` for multiplication, ``÷`` for division, Unicode minus, Markdown bold,
``Step 3:`` labels, surrounding whitespace and trailing punctuation.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem, Task, problem_rng

__all__ = [
    "ProceduralTask",
    "final_answer",
    "format_number",
    "normalize_step",
    "parse_integer_list",
    "safe_value",
    "strip_label",
]

_LABEL_RE = re.compile(r"^\s*(?:step\s*\d+\s*[:.)\-]|\d+\s*[.)]|[-*•])\s+", re.IGNORECASE)
_TRAILING_RE = re.compile(r"[\s.,;!]+$")
_UNICODE = {
    "×": "*",
    "·": "*",
    "⋅": "*",
    "∙": "*",
    "÷": "/",
    "−": "-",
    "–": "-",
    "→": "->",
    "⟶": "->",
    "⇒": "->",
    "≔": "=",
}
# ``**`` after a number, ")" or a lone x and before a number or "(" is a power, elsewhere
# Markdown bold.
_POWER_STARS_RE = re.compile(r"(?:(?<=[\d)])|(?<=\bx))\s*\*\*\s*(?=[\d(])")
_TIMES_X_RE = re.compile(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])")
_MAX_STEP_CHARS = 2000
_PROVENANCE_KEYS = frozenset({"task", "source", "seed", "index", "difficulty"})


def strip_label(text: str) -> str:
    """Remove a leading ``Step 3:``, ``3.``, ``3)`` or bullet label from a step."""
    return _LABEL_RE.sub("", text, count=1)


def normalize_step(text: str, times_x: bool = True) -> str:
    """Return ``text`` in a canonical spelling for the step parsers.

    Markdown bold and step labels go, ``**`` between operands becomes ``^``, Unicode
    operators become ASCII (``×`` -> ``*``, ``→`` -> ``->``), runs of whitespace become one
    space and trailing ``. , ; !`` go.
    With ``times_x`` an ``x`` between two operands (``3 x 4``) becomes ``*``; tasks whose
    steps use ``x`` as a variable pass False.
    """
    text = _POWER_STARS_RE.sub("^", text[:_MAX_STEP_CHARS])  # 7**2 -> 7^2
    text = text.replace("**", "").replace("`", "")  # Markdown bold and code
    for symbol, ascii_text in _UNICODE.items():
        text = text.replace(symbol, ascii_text)
    text = text.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/")
    text = strip_label(text.strip())
    if times_x:
        text = _TIMES_X_RE.sub(" * ", text)
    text = " ".join(text.split())
    return _TRAILING_RE.sub("", text)


def final_answer(text: str) -> str | None:
    """Return the final answer of a step (``\\boxed{}``, ``The answer is``, ...), else None."""
    from reasoning_gym.verify.answers import extract_answer

    answer = extract_answer(text[:_MAX_STEP_CHARS])
    if answer is None:
        return None
    return normalize_step(answer)


def safe_value(expr: str) -> Fraction | None:
    """Evaluate ``expr`` with the bounded parser; None when it is not valid arithmetic."""
    from reasoning_gym.errors import ArithmeticParseError
    from reasoning_gym.verify.safe_arith import evaluate

    try:
        return evaluate(expr)
    except ArithmeticParseError:
        return None


def format_number(value: Fraction | int) -> str:
    """Write an exact value as ``7``, ``-3`` or ``5/4`` (lowest terms)."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


_LIST_RE = re.compile(r"-?\d+")


def parse_integer_list(text: str) -> list[int] | None:
    """Read ``[3, 5, 9]``, ``3, 5, 9`` or ``3 5 9`` as a list of integers; None if it has none.

    Anything other than integers, brackets, commas, semicolons and spaces makes it None, so
    ``[3, 5.5]`` or ``[3, a]`` are rejected instead of being read partly.
    """
    body = text.strip().strip("[](){}").strip()
    if not body or re.search(r"[^\d\s,;\-]", body):
        return None
    values = [int(token) for token in _LIST_RE.findall(body)]
    return values or None


class ProceduralTask(Task, abc.ABC):
    """A task whose problem ``index`` comes from ``problem_rng(name, seed, index)``.

    Subclasses set ``name``, ``instruction``, ``difficulty_ranges`` (integer knobs) and
    ``default_difficulty`` and implement ``generate`` and ``check_intermediate``; the final
    step is scored with ``verify``.

    Args:
        seed: Seed of the problem stream; ``problem(index)`` uses it unless one is given.
        **knobs: Difficulty knobs, each an integer inside ``difficulty_ranges``.

    Raises:
        ValueError: An unknown knob, or a knob outside its documented range.
        TypeError: A seed or knob that is not an integer.
    """

    default_difficulty: Mapping[str, int] = MappingProxyType({})

    def __init__(self, seed: int = 0, **knobs: Any):
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        unknown = sorted(set(knobs) - set(self.difficulty_ranges))
        if unknown:
            raise ValueError(
                f"unknown difficulty knob(s) {unknown} for task {self.name!r}; "
                f"known knobs: {sorted(self.difficulty_ranges)}"
            )
        self.seed = seed
        values = {**self.default_difficulty, **knobs}
        self._knobs: dict[str, int] = {}
        for knob, (low, high) in self.difficulty_ranges.items():
            self._knobs[knob] = self._validate_knob(knob, values[knob], low, high)

    def _validate_knob(self, knob: str, value: Any, low: float, high: float) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{self.name} knob {knob} must be an integer, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise TypeError(f"{self.name} knob {knob} must be an integer, got {value!r}")
        if not low <= value <= high:
            raise ValueError(
                f"{self.name} knob {knob}={value} is outside its range [{low}, {high}]; "
                f"pick a value from {low} to {high}"
            )
        return int(value)

    def difficulty(self) -> dict[str, int]:
        """Return the current difficulty knobs."""
        return dict(self._knobs)

    def problem(self, index: int, seed: int | None = None) -> Problem:
        """Generate problem ``index`` under ``seed`` (the constructor seed when None)."""
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError(f"index={index!r} must be a non-negative integer")
        seed = self.seed if seed is None else seed
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        rng = problem_rng(self.name, seed, index)
        question, answer, steps, extra = self.generate(rng)
        clashing = sorted(_PROVENANCE_KEYS & set(extra))
        if clashing:
            raise ValueError(
                f"{type(self).__name__}.generate returned metadata keys {clashing}, which are "
                f"reserved for provenance {sorted(_PROVENANCE_KEYS)}; rename them"
            )
        knob_text = ",".join(f"{k}={v}" for k, v in sorted(self._knobs.items()))
        metadata = {
            "task": self.name,
            "source": "procedural",
            "seed": seed,
            "index": index,
            "difficulty": dict(self._knobs),
            **extra,
        }
        return Problem(
            id=f"{self.name}/{knob_text}/seed={seed}/index={index}",
            question=question,
            answer=answer,
            gold_steps=tuple(steps),
            metadata=metadata,
        )

    @abc.abstractmethod
    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        """Return ``(question, answer, gold_steps, checker_metadata)`` drawn from ``rng``.

        ``checker_metadata`` must be JSON-serialisable: it is stored in the problem and is all
        that ``check_intermediate`` and ``verify`` may read besides the gold answer.
        """

    @abc.abstractmethod
    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        """Return whether a non-final ``step`` is correct after ``previous_steps``."""

    @abc.abstractmethod
    def answer_matches(self, problem: Problem, answer: str) -> bool:
        """Return whether the extracted final answer ``answer`` equals the gold answer."""

    def verify(self, problem: Problem, answer_text: str) -> float:
        """Score a final answer exactly: 1.0 if it equals the gold answer, else 0.0."""
        answer = final_answer(answer_text)
        if answer is None:
            return 0.0
        return 1.0 if self.answer_matches(problem, answer) else 0.0

    def check_step(self, problem: Problem, previous_steps: Sequence[str], step: str) -> float:
        """Score one step exactly: 1.0 if it is a correct step, else 0.0.

        A final-answer step is scored by ``verify``; any other step by the task's rule.
        """
        if final_answer(step) is not None:
            return self.verify(problem, step)
        return 1.0 if self.check_intermediate(problem, previous_steps, step) else 0.0
