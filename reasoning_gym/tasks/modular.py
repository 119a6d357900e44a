"""Modular exponentiation ``a^e mod m`` by repeated squaring, one power per step.

A step is a chain such as ``7^4 ≡ 5^2 = 25 ≡ 3 (mod 11)`` or ``7^4 mod 11 = 25 mod 11 = 3``.
Sides joined by ``≡`` must be congruent modulo the problem's modulus. Sides joined by ``=``
must be exactly equal, unless the chain ends with ``(mod m)``, which by the usual convention
makes every relation in it a congruence. A side ``X mod m`` means the least residue of X.
The step is correct when all relations hold, the modulus named (if any) is the problem's,
and the first side is the problem's base or a power of it (``7^4``), so true but unrelated
congruences do not count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import ProceduralTask, normalize_step, safe_value
from reasoning_gym.verify.safe_arith import parse_number

_MOD_SUFFIX_RE = re.compile(
    r"(?:\(\s*mod\s*(\d+)\s*\)|\\pmod\s*\{\s*(\d+)\s*\})\s*$", re.IGNORECASE
)
_MOD_SIDE_RE = re.compile(r"^(.*\S)\s*(?:mod|%)\s*(\d+)$", re.IGNORECASE)
_POWER_RE = re.compile(r"^\(?\s*(\d+)\s*\)?\s*\^\s*\(?\s*(\d+)\s*\)?$")
_RELATION_RE = re.compile(r"(≡|==|=|\\equiv)")
# Powers larger than this many bits are reduced modulo m only, without their exact value.
_EXACT_POWER_BITS = 256


def _side_value(side: str, modulus: int) -> tuple[Fraction | None, int] | None:
    """Return ``(exact value or None, residue)`` of one side; None if it is not arithmetic."""
    side = side.strip()
    reduced = _MOD_SIDE_RE.match(side)
    if reduced is not None:
        if int(reduced.group(2)) != modulus:
            return None
        inner = _side_value(reduced.group(1), modulus)
        if inner is None:
            return None
        return Fraction(inner[1]), inner[1]
    power = _POWER_RE.match(side)
    if power is not None:
        base, exponent = int(power.group(1)), int(power.group(2))
        residue = pow(base, exponent, modulus)
        if base.bit_length() * exponent > _EXACT_POWER_BITS:
            return None, residue
        return Fraction(base**exponent), residue
    value = safe_value(side)
    if value is None or value.denominator != 1:
        return None
    return value, value.numerator % modulus


def check_chain(step: str, modulus: int) -> list[str] | None:
    """Return the sides of a correct relation chain in ``step``; None if any relation fails."""
    text = normalize_step(step).replace("\\bmod", "mod")
    suffix = _MOD_SUFFIX_RE.search(text)
    if suffix is not None:
        if int(suffix.group(1) or suffix.group(2)) != modulus:
            return None
        text = text[: suffix.start()]
    parts = _RELATION_RE.split(text)
    parts[0] = re.sub(r"^[^\d(]*", "", parts[0])  # leading prose such as "Then"
    sides, relations = parts[0::2], parts[1::2]
    if not relations:
        return None
    values = [_side_value(side, modulus) for side in sides]
    if any(value is None for value in values):
        return None
    for relation, left, right in zip(relations, values, values[1:], strict=False):
        if left[1] != right[1]:
            return None
        exact = relation in ("=", "==") and suffix is None
        if exact and None not in (left[0], right[0]) and left[0] != right[0]:
            return None
    return [side.strip() for side in sides]


def _power_step(base: int, exponent: int, reduced: str, value: int, modulus: int) -> str:
    """Write ``base^exponent ≡ reduced = value [≡ value mod modulus] (mod modulus)``."""
    chain = f"{base}^{exponent} ≡ {reduced} = {value}"
    if value >= modulus:
        chain += f" ≡ {value % modulus}"
    return f"{chain} (mod {modulus})"


class ModularTask(ProceduralTask):
    """Compute ``a^e mod m``; the answer is the least non-negative residue.

    Difficulty knobs:
        max_modulus (5-100): the modulus is drawn from 3..max_modulus.
        max_exponent (2-64): the exponent is drawn from 2..max_exponent.
    """

    name = "modular"
    instruction = (
        "Compute the power modulo m step by step with repeated squaring. Write one power per "
        "line as a chain such as `7^4 ≡ 5^2 = 25 ≡ 3 (mod 11)`: `=` joins equal numbers and "
        "`≡` numbers with the same remainder. End with the remainder (from 0 to m - 1) in the "
        "form \\boxed{ANSWER}."
    )
    difficulty_ranges = MappingProxyType({"max_modulus": (5, 100), "max_exponent": (2, 64)})
    default_difficulty = MappingProxyType({"max_modulus": 20, "max_exponent": 16})

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        modulus = rng.randint(3, self._knobs["max_modulus"])
        base = rng.randint(2, 3 * modulus)
        exponent = rng.randint(2, self._knobs["max_exponent"])
        answer = pow(base, exponent, modulus)
        steps = []
        residue = base % modulus
        if base >= modulus:
            steps.append(f"{base} ≡ {residue} (mod {modulus})")

        # Squares base^(2^k), then the product of the ones in the exponent's binary form.
        squares = {1: residue}
        power = 1
        while power * 2 <= exponent:
            previous = squares[power]
            power *= 2
            squares[power] = previous * previous % modulus
            steps.append(_power_step(base, power, f"{previous}^2", previous**2, modulus))
        parts = [p for p in sorted(squares, reverse=True) if exponent & p]
        done, value = parts[0], squares[parts[0]]
        for part in parts[1:]:
            left = value
            product = left * squares[part]
            done += part
            value = product % modulus
            steps.append(_power_step(base, done, f"{left} * {squares[part]}", product, modulus))
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        question = f"Compute {base}^{exponent} mod {modulus}."
        metadata = {"base": base, "exponent": exponent, "modulus": modulus}
        return question, str(answer), steps, metadata

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        sides = check_chain(step, problem.metadata["modulus"])
        if sides is None:
            return False
        reduced = _MOD_SIDE_RE.match(sides[0])
        start = reduced.group(1).strip() if reduced is not None else sides[0]
        first = _POWER_RE.match(start)
        if first is not None:
            return int(first.group(1)) == problem.metadata["base"]
        return start == str(problem.metadata["base"])

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        value = parse_number(answer)
        return value is not None and value == int(problem.answer)
