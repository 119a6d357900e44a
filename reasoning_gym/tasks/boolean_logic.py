"""Boolean formula evaluation, one connective per step.

A step is a chain ``subformula = subformula with values = value``, for example
``P and not Q = True and not False = True``. It is correct when every side parses (only the
problem's variables, ``True``/``False`` and the connectives) and all sides have the same
truth value. The first side must also be a subformula of the problem, where variables may
already be replaced by their values, so true but unrelated statements do not count.

Accepted spellings: ``and``/``&``/``&&``/``∧``, ``or``/``|``/``||``/``∨``,
``not``/``!``/``~``/``¬``, ``xor``/``^``/``⊕``, ``True``/``T``/``1`` and
``False``/``F``/``0``, in any letter case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.step_format import ProceduralTask, normalize_step

# Variable names avoid T and F, which are the literals True and False.
VARIABLES = ("P", "Q", "R", "S", "U", "V")
_BINARY = ("and", "or", "xor")
_PRECEDENCE = {"or": 1, "xor": 2, "and": 3}

_TOKEN_RE = re.compile(r"\s*(\(|\)|&&|\|\||[&|!~^¬∧∨⊕]|[A-Za-z]+|[01])")
_WORDS = {
    "and": "and",
    "&": "and",
    "&&": "and",
    "∧": "and",
    "or": "or",
    "|": "or",
    "||": "or",
    "∨": "or",
    "xor": "xor",
    "^": "xor",
    "⊕": "xor",
    "not": "not",
    "!": "not",
    "~": "not",
    "¬": "not",
    "true": True,
    "t": True,
    "1": True,
    "false": False,
    "f": False,
    "0": False,
}
_MAX_TOKENS = 200
#: Formulas whose gold solution needs more connective steps are drawn again, so a gold
#: solution with its final answer fits the environment's default ``max_steps=16``.
MAX_CONNECTIVE_STEPS = 14

Node = tuple  # ("lit", bool) | ("var", name) | ("not", node) | (op, left, right)


def _tokenize(text: str) -> list[Any] | None:
    tokens: list[Any] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            return None
        word = match.group(1)
        position = match.end()
        key = word.lower()
        if key in _WORDS:
            tokens.append(_WORDS[key])
        elif word in ("(", ")"):
            tokens.append(word)
        elif len(word) == 1 and word.upper() in VARIABLES:
            tokens.append(("var", word.upper()))
        else:
            return None
        if len(tokens) > _MAX_TOKENS:
            return None
    return tokens


class _Parser:
    """Precedence-climbing parser: not > and > xor > or, binary operators left-associative."""

    def __init__(self, tokens: list[Any]):
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> Node | None:
        node = self._binary(1)
        if node is None or self.pos != len(self.tokens):
            return None
        return node

    def _peek(self) -> Any:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _binary(self, min_level: int) -> Node | None:
        left = self._unary(0)
        while left is not None:
            op = self._peek()
            if op not in _PRECEDENCE or _PRECEDENCE[op] < min_level:
                break
            self.pos += 1
            right = self._binary(_PRECEDENCE[op] + 1)
            if right is None:
                return None
            left = (op, left, right)
        return left

    def _unary(self, depth: int) -> Node | None:
        if depth > 50:
            return None
        token = self._peek()
        if token == "not":
            self.pos += 1
            child = self._unary(depth + 1)
            return None if child is None else ("not", child)
        if token == "(":
            self.pos += 1
            node = self._binary(1)
            if node is None or self._peek() != ")":
                return None
            self.pos += 1
            return node
        if isinstance(token, bool):
            self.pos += 1
            return ("lit", token)
        if isinstance(token, tuple):
            self.pos += 1
            return token
        return None


def parse_formula(text: str) -> Node | None:
    """Parse a boolean formula into a tree; None if it is not a well-formed formula."""
    tokens = _tokenize(text)
    if not tokens:
        return None
    return _Parser(tokens).parse()


def evaluate_formula(node: Node, values: dict[str, bool]) -> bool | None:
    """Truth value of ``node``; None when it uses a variable without a value."""
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        return values.get(node[1])
    if kind == "not":
        child = evaluate_formula(node[1], values)
        return None if child is None else not child
    left = evaluate_formula(node[1], values)
    right = evaluate_formula(node[2], values)
    if left is None or right is None:
        return None
    if kind == "and":
        return left and right
    if kind == "or":
        return left or right
    return left != right


def _substituted(node: Node, values: dict[str, bool]) -> Node:
    kind = node[0]
    if kind == "var":
        return ("lit", values[node[1]]) if node[1] in values else node
    if kind == "lit":
        return node
    return (kind, *(_substituted(child, values) for child in node[1:]))


def _subtrees(node: Node) -> list[Node]:
    if node[0] in ("lit", "var"):
        return [node]
    found = [node]
    for child in node[1:]:
        found.extend(_subtrees(child))
    return found


def _text(node: Node, parent_level: int = 0) -> str:
    kind = node[0]
    if kind == "lit":
        return str(node[1])
    if kind == "var":
        return node[1]
    if kind == "not":
        return f"not {_text(node[1], 99)}"
    # Binary children are always bracketed, so the written formula is unambiguous.
    text = f"{_text(node[1], 99)} {kind} {_text(node[2], 99)}"
    return f"({text})" if parent_level > 0 else text


class BooleanLogicTask(ProceduralTask):
    """Evaluate a formula over named truth values; the answer is ``True`` or ``False``.

    Difficulty knobs:
        depth (1-4): nesting depth of binary connectives.
        num_variables (2-6): how many variables the formula may use.
    """

    name = "boolean_logic"
    instruction = (
        "Evaluate the formula step by step, innermost connective first, one connective per "
        "line. Write each step as `subformula = subformula with values = value`, for example "
        "`P and not Q = True and not False = True`. Use and, or, xor, not, True, False. "
        "End with the final answer in the form \\boxed{True} or \\boxed{False}."
    )
    difficulty_ranges = MappingProxyType({"depth": (1, 4), "num_variables": (2, 6)})
    default_difficulty = MappingProxyType({"depth": 2, "num_variables": 3})

    def _tree(self, rng: Any, depth: int, names: Sequence[str]) -> Node:
        if depth == 0:
            leaf: Node = ("var", rng.choice(names))
            return ("not", leaf) if rng.random() < 0.3 else leaf
        op = rng.choice(_BINARY)
        left = self._tree(rng, depth - 1, names)
        right = self._tree(rng, rng.randint(0, depth - 1), names)
        if rng.random() < 0.5:
            left, right = right, left
        node: Node = (op, left, right)
        return ("not", node) if rng.random() < 0.15 else node

    def generate(self, rng: Any) -> tuple[str, str, list[str], dict[str, Any]]:
        names = VARIABLES[: self._knobs["num_variables"]]
        values = {name: rng.random() < 0.5 for name in names}
        while True:
            formula = self._tree(rng, self._knobs["depth"], names)
            steps: list[str] = []
            self._gold(formula, values, steps)
            if len(steps) <= MAX_CONNECTIVE_STEPS:
                break
        answer = str(evaluate_formula(formula, values))
        steps.append(f"The answer is \\boxed{{{answer}}}.")
        assignment = ", ".join(f"{name} = {values[name]}" for name in names)
        question = f"Let {assignment}. Evaluate: {_text(formula)}"
        metadata = {"formula": _text(formula), "values": dict(values)}
        return question, answer, steps, metadata

    def _gold(self, node: Node, values: dict[str, bool], steps: list[str]) -> Node:
        """Append the steps that evaluate ``node``; return what its parent writes for it."""
        kind = node[0]
        if kind in ("var", "lit"):
            return ("lit", evaluate_formula(node, values))
        if kind == "not" and node[1][0] == "var":
            return ("not", ("lit", values[node[1][1]]))
        reduced = (kind, *(self._gold(child, values, steps) for child in node[1:]))
        value = evaluate_formula(node, values)
        steps.append(f"{_text(node)} = {_text(reduced)} = {value}")
        return ("lit", value)

    def check_intermediate(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> bool:
        text = normalize_step(step, times_x=False).replace("==", "=")
        sides = [parse_formula(side) for side in text.split("=")]
        if len(sides) < 2 or any(side is None for side in sides):
            return False
        values = dict(problem.metadata["values"])
        truths = {evaluate_formula(side, values) for side in sides}
        if len(truths) != 1 or None in truths:
            return False
        formula = parse_formula(problem.metadata["formula"])
        known = {_substituted(tree, values) for tree in _subtrees(formula)}
        return _substituted(sides[0], values) in known

    def answer_matches(self, problem: Problem, answer: str) -> bool:
        word = answer.strip().strip("$").lower().replace("\\text{", "").rstrip("}")
        truth = _WORDS.get(word)
        return isinstance(truth, bool) and str(truth) == problem.answer
