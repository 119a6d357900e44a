"""Unit conversion chains: convert a quantity through several units, one factor per step.

A step is a chain of quantities joined by ``=``, each a number or arithmetic expression
followed by a unit, such as ``3 km = 3 * 1000 m = 3000 m``. It is correct when every
quantity has a known unit of the problem's dimension and all quantities are exactly equal
(compared in the base unit). Its first quantity must also equal the quantity in the
question, so unrelated true statements (``1 m = 100 cm``) do not count as progress.
"""

from __future__ import annotations

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

#: Unit chains from largest to smallest: (unit, how many of the next unit make one of it).
#: Every factor is exact by definition (SI prefixes, the international yard and pound).
CHAINS: dict[str, tuple[tuple[str, int], ...]] = {
    "length (metric)": (("km", 1000), ("m", 100), ("cm", 10), ("mm", 1)),
    "length (imperial)": (("mile", 1760), ("yard", 3), ("foot", 12), ("inch", 1)),
    "time": (("week", 7), ("day", 24), ("hour", 60), ("minute", 60), ("second", 1)),
    "mass": (("tonne", 1000), ("kg", 1000), ("g", 1000), ("mg", 1)),
    "volume": (("kL", 1000), ("L", 1000), ("mL", 1)),
    "data": (("TB", 1000), ("GB", 1000), ("MB", 1000), ("kB", 1000), ("byte", 1)),
}

#: Spellings of each unit (lower case); plurals are accepted by stripping a final "s".
ALIASES: dict[str, tuple[str, ...]] = {
    "km": ("km", "kilometer", "kilometre"),
    "m": ("m", "meter", "metre"),
    "cm": ("cm", "centimeter", "centimetre"),
    "mm": ("mm", "millimeter", "millimetre"),
    "mile": ("mile", "mi"),
    "yard": ("yard", "yd"),
    "foot": ("foot", "feet", "ft"),
    "inch": ("inch", "inches", "in"),
    "week": ("week", "wk"),
    "day": ("day", "d"),
    "hour": ("hour", "h", "hr"),
    "minute": ("minute", "min"),
    "second": ("second", "s", "sec"),
    "tonne": ("tonne", "t", "metric ton"),
    "kg": ("kg", "kilogram", "kilogramme"),
    "g": ("g", "gram", "gramme"),
    "mg": ("mg", "milligram", "milligramme"),
    "kL": ("kl", "kiloliter", "kilolitre"),
    "L": ("l", "liter", "litre"),
    "mL": ("ml", "milliliter", "millilitre"),
    "TB": ("tb", "terabyte"),
    "GB": ("gb", "gigabyte"),
    "MB": ("mb", "megabyte"),
    "kB": ("kb", "kilobyte"),
    "byte": ("byte", "b"),
}
_LOOKUP = {alias: unit for unit, names in ALIASES.items() for alias in names}


def _base_factors(chain: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """Return how many of the smallest unit make one of each unit in ``chain``."""
    factors: dict[str, int] = {}
    total = 1
    for unit, factor in reversed(chain):
        total *= factor  # the smallest unit's factor is 1
        factors[unit] = total
    return factors


def unit_name(text: str) -> str | None:
    """Return the canonical unit for a spelling such as ``Kilometres``; None if unknown."""
    word = " ".join(text.lower().split()).rstrip(".")
    if word in _LOOKUP:
        return _LOOKUP[word]
    if word.endswith("es") and word[:-2] in _LOOKUP:
        return _LOOKUP[word[:-2]]
    if word.endswith("s") and word[:-1] in _LOOKUP:
        return _LOOKUP[word[:-1]]
    return None


_QUANTITY_RE = re.compile(r"^(?P<number>.*?[\d)])\s*(?P<unit>[A-Za-z][A-Za-z .]*)$")


def parse_quantity(text: str, factors: dict[str, int]) -> Fraction | None:
    """Value of ``"3 * 1000 m"`` in the base unit of ``factors``; None if not a quantity."""
    match = _QUANTITY_RE.match(text.strip())
    if match is None:
        return None
    unit = unit_name(match.group("unit"))
    if unit is None or unit not in factors:
        return None
    value = safe_value(match.group("number"))
    if value is None:
        return None
    return value * factors[unit]


def _plural(unit: str, value: Fraction) -> str:
    if unit[0].isupper() or len(unit) <= 2 or unit in ("kB",) or value == 1:
        return unit
    return {"foot": "feet", "inch": "inches"}.get(unit, unit + "s")


class UnitConversionTask(ProceduralTask):
    """Convert a quantity between units of one dimension; the answer is a number.

    Difficulty knobs:
        chain_length (1-4): how many unit-to-unit factors the conversion crosses (capped by
            the length of the chosen dimension's chain).
        max_value (10-1000): the integer quantity is drawn from 1..max_value.
    """

    name = "unit_conversion"
    instruction = (
        "Convert the quantity step by step, one unit at a time, using the conversion facts "
        "given. Write each step as a chain of equal quantities with units, for example "
        "`3 km = 3 * 1000 m = 3000 m`. End with the number in the requested unit in the "
        "form \\boxed{ANSWER}."
    )
    difficulty_ranges = MappingProxyType({"chain_length": (1, 4), "max_value": (10, 1000)})
    default_difficulty = MappingProxyType({"chain_length": 2, "max_value": 100})

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        chain_length = self._knobs["chain_length"]
        names = [name for name, chain in CHAINS.items() if len(chain) > chain_length]
        dimension = rng.choice(names)
        chain = CHAINS[dimension]
        start = rng.randint(0, len(chain) - 1 - chain_length)
        units = [unit for unit, _ in chain[start : start + chain_length + 1]]
        factors = _base_factors(chain)
        downward = rng.random() < 0.5
        small_value = rng.randint(1, self._knobs["max_value"])
        if downward:
            path = units
            value = Fraction(small_value)
        else:
            # Upward conversions start from a multiple of the big unit, so every step and
            # the answer are integers.
            path = list(reversed(units))
            value = Fraction(small_value * factors[units[0]] // factors[units[-1]])

        facts = []
        steps = []
        current = value
        for from_unit, to_unit in zip(path, path[1:], strict=False):
            ratio = Fraction(factors[from_unit], factors[to_unit])
            big, small = (from_unit, to_unit) if ratio > 1 else (to_unit, from_unit)
            count = factors[big] // factors[small]
            facts.append(f"1 {big} = {count} {_plural(small, Fraction(count))}")
            result = current * ratio
            operator = f"* {count}" if ratio > 1 else f"/ {count}"
            start_text = f"{format_number(current)} {_plural(from_unit, current)}"
            steps.append(
                f"{start_text} = {format_number(current)} {operator} {_plural(to_unit, result)} "
                f"= {format_number(result)} {_plural(to_unit, result)}"
            )
            current = result
        answer = format_number(current)
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        question = (
            f"Convert {format_number(value)} {_plural(path[0], value)} to "
            f"{_plural(path[-1], Fraction(2))}. Use: {'; '.join(facts)}."
        )
        metadata = {
            "dimension": dimension,
            "quantity": format_number(value),
            "from_unit": path[0],
            "to_unit": path[-1],
        }
        return question, answer, steps, metadata

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        factors = _base_factors(CHAINS[problem.metadata["dimension"]])
        sides = normalize_step(step).split("=")
        sides[0] = re.sub(r"^[^\d(]*", "", sides[0])  # leading prose such as "So,"
        if len(sides) < 2:
            return False
        values = [parse_quantity(side, factors) for side in sides]
        if any(value is None for value in values) or len(set(values)) != 1:
            return False
        start = Fraction(problem.metadata["quantity"]) * factors[problem.metadata["from_unit"]]
        return values[0] == start

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        value = parse_number(answer)
        if value is None:
            return False
        match = _QUANTITY_RE.match(answer.strip())
        if match is not None and unit_name(match.group("unit")) not in (
            None,
            problem.metadata["to_unit"],
        ):
            return False  # "5 m" is wrong when centimetres are requested, even if 5 is the number
        return value == Fraction(problem.answer)
