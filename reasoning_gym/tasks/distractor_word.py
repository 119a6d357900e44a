"""Multi-step word problems with distractor facts.

The story changes one person's count of one item through several events, among sentences
with numbers that do not matter. A step is a calculation such as ``12 + 3 * 4 = 24`` (words
around it are allowed). It is correct when three conditions are met:

* it states at least one equation, and every equation is exactly true;
* every number it uses is relevant: a number from a relevant event, the factor of a
  doubling or tripling, or a result of an earlier correct step or equation. Using a number
  that only a distractor sentence mentions fails;
* every result is meaningful: the count after some of the events applied in story order
  (any subset, so independent additions may come in any order), or the size of a purchase
  (packs times items per pack). So ``14 + 14 = 28`` fails although 14 is relevant.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import ProceduralTask, normalize_step
from reasoning_gym.verify.safe_arith import find_equations, parse_number

NAMES = ("Alice", "Bilal", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jia")
ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "cards", "stamps", "shells")
EVENTS = ("buy", "give", "find", "lose", "receive", "multiply")


def meaningful_values(start: int, events: Sequence[Sequence[Any]]) -> set[Fraction]:
    """Return the counts after every subset of ``events`` applied in order, and purchase sizes.

    Each event is ``[operator, amount]`` with operator ``+``, ``-`` or ``*``, or
    ``["buy", packs, size]`` for a purchase of ``packs * size`` items.
    """
    values = {Fraction(start)}
    purchases = set()
    for event in events:
        if event[0] == "buy":
            amount = event[1] * event[2]
            purchases.add(Fraction(amount))
            values |= {value + amount for value in values}
        elif event[0] == "+":
            values |= {value + event[1] for value in values}
        elif event[0] == "-":
            values |= {value - event[1] for value in values}
        else:
            values |= {value * event[1] for value in values}
    return values | purchases


def _correct_results(
    text: str, allowed: set[Fraction], meaningful: set[Fraction]
) -> list[Fraction] | None:
    """Return the results of the equations in ``text`` if every one is a correct step."""
    equations = find_equations(normalize_step(text))
    if not equations:
        return None
    pool = set(allowed)
    results = []
    for equation in equations:
        if not equation.is_correct or equation.result not in meaningful:
            return None
        if any(number not in pool for number in equation.operand_numbers):
            return None
        pool.add(equation.result)
        results.append(equation.result)
    return results


class DistractorWordTask(ProceduralTask):
    """Track one count through a story with irrelevant facts; the answer is an integer.

    Difficulty knobs:
        num_events (1-5): how many events change the count.
        num_distractors (0-4): how many irrelevant sentences with numbers are mixed in.
    """

    name = "distractor_word"
    instruction = (
        "Solve the word problem step by step. Some facts are irrelevant: ignore them. Write one "
        "calculation per line using only the numbers that matter and your earlier results, "
        "for example `12 + 3 * 4 = 24`. End with the final answer in the form \\boxed{ANSWER}."
    )
    difficulty_ranges = MappingProxyType({"num_events": (1, 5), "num_distractors": (0, 4)})
    default_difficulty = MappingProxyType({"num_events": 3, "num_distractors": 2})

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        name, friend, other = rng.sample(NAMES, 3)
        item, other_item = rng.sample(ITEMS, 2)
        count = rng.randint(5, 30)
        start = count
        relevant = [count]
        events: list[list[Any]] = []
        sentences = [f"{name} has {count} {item}."]
        steps = []
        for _ in range(self._knobs["num_events"]):
            event = rng.choice(EVENTS)
            before = count
            if event == "buy":
                packs, size = rng.randint(2, 5), rng.randint(2, 10)
                count += packs * size
                relevant += [packs, size]
                events.append(["buy", packs, size])
                sentences.append(f"{name} buys {packs} packs of {item} with {size} in each pack.")
                steps.append(f"{before} + {packs} * {size} = {count}")
            elif event in ("give", "lose") and count > 1:
                amount = rng.randint(1, min(count - 1, 20))
                count -= amount
                relevant.append(amount)
                events.append(["-", amount])
                sentences.append(
                    f"{name} gives {amount} {item} to {friend}."
                    if event == "give"
                    else f"{name} loses {amount} {item}."
                )
                steps.append(f"{before} - {amount} = {count}")
            elif event == "multiply" and count <= 60:
                factor = rng.choice((2, 3))
                count *= factor
                relevant.append(factor)
                events.append(["*", factor])
                word = "doubles" if factor == 2 else "triples"
                sentences.append(f"Then {name}'s number of {item} {word}.")
                steps.append(f"{before} * {factor} = {count}")
            else:
                amount = rng.randint(1, 20)
                count += amount
                relevant.append(amount)
                events.append(["+", amount])
                sentences.append(
                    f"{name} finds {amount} more {item}."
                    if event != "receive"
                    else f"{friend} gives {name} {amount} {item}."
                )
                steps.append(f"{before} + {amount} = {count}")

        distractors = [
            lambda n: f"{friend} has {n} {item}.",
            lambda n: f"{name} also has {n} {other_item}.",
            lambda n: f"{other} buys {n} packs of {other_item}.",
            lambda n: f"The shop is {n} km from {name}'s home.",
            lambda n: f"{name} is {n} years old.",
            lambda n: f"Each pack of {other_item} costs ${n}.",
        ]
        choices = [n for n in range(3, 60) if n not in relevant]
        for template in rng.sample(distractors, self._knobs["num_distractors"]):
            sentence = template(rng.choice(choices))
            sentences.insert(rng.randint(1, len(sentences)), sentence)
        question = " ".join(sentences) + f" How many {item} does {name} have now?"
        answer = str(count)
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        metadata = {"relevant_numbers": sorted(set(relevant)), "start": start, "events": events}
        return question, answer, steps, metadata

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        allowed = {Fraction(n) for n in problem.metadata["relevant_numbers"]}
        meaningful = meaningful_values(problem.metadata["start"], problem.metadata["events"])
        for previous in previous_steps:
            results = _correct_results(previous, allowed, meaningful)
            if results is not None:
                allowed.update(results)
        return _correct_results(step, allowed, meaningful) is not None

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        value = parse_number(answer)
        return value is not None and value == int(problem.answer)
