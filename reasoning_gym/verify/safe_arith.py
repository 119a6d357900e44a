"""Bounded arithmetic over exact fractions for checking the calculations in model text.

Model output is never passed to ``eval`` or sympy here. A small tokenizer and a
recursive-descent parser evaluate ``+ - * / **`` (``^`` too), parentheses, unary signs,
decimals, thousands separators and postfix ``%`` over :class:`fractions.Fraction`.
Every input is bounded before any work is done, so hostile text such as ``9**9**9**9``
or a number with 100,000 digits raises :class:`ArithmeticParseError` in milliseconds:

* an expression has at most ``MAX_EXPRESSION_CHARS`` characters and ``MAX_TOKENS`` tokens;
* a number literal has at most ``MAX_LITERAL_DIGITS`` digits;
* parentheses and unary signs nest at most ``MAX_NESTING`` deep;
* an exponent is an integer with absolute value at most ``MAX_EXPONENT``;
* the numerator and denominator of every intermediate result have at most
  ``MAX_RESULT_BITS`` bits, and a power is rejected before it is computed if its
  result could exceed that.

Accepted spellings: ``x``, ``×``, ``·`` and ``*`` multiply, but ``x`` only between two
operands. ``÷`` and ``/`` divide, and ``−`` (U+2212) and ``–`` (U+2013) are minus signs.
The currency signs ``$ € £ ¥`` are ignored. Up to three words after a number and a space
form a unit and are ignored (``3 apples + 4 apples``, ``25 miles per gallon x 12``). A
``**`` that is not between two operands is Markdown bold and is ignored too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from reasoning_gym.errors import ArithmeticParseError

__all__ = [
    "MAX_EXPONENT",
    "MAX_EXPRESSION_CHARS",
    "MAX_LITERAL_DIGITS",
    "MAX_NESTING",
    "MAX_RESULT_BITS",
    "MAX_TEXT_CHARS",
    "MAX_TOKENS",
    "ArithmeticEvaluationError",
    "ArithmeticSyntaxError",
    "Equation",
    "evaluate",
    "extract_numbers",
    "find_equations",
    "parse_number",
    "strip_markdown_bold",
]

MAX_EXPRESSION_CHARS = 1000
MAX_TOKENS = 400
MAX_LITERAL_DIGITS = 100
MAX_NESTING = 50
MAX_EXPONENT = 64
MAX_RESULT_BITS = 4096
#: Text longer than this is cut before ``find_equations`` / ``extract_numbers`` scan it.
MAX_TEXT_CHARS = 20_000


class ArithmeticSyntaxError(ArithmeticParseError):
    """Text that is not a well-formed arithmetic expression."""


class ArithmeticEvaluationError(ArithmeticParseError):
    """A well-formed expression that cannot be evaluated within the limits (or divides by 0)."""


# ---------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------

# Token kinds.
NUM = "num"
OP = "op"  # one of + - * / ^
LPAREN = "("
RPAREN = ")"
PCT = "%"
EQ = "="
CUR = "cur"  # currency sign, ignored
WORD = "word"
OTHER = "other"
BADNUM = "badnum"  # a digit run longer than MAX_LITERAL_DIGITS
MARKDOWN = "markdown"  # ** or * used as Markdown emphasis, ignored
UNIT = "unit"  # a word classified as a unit after a number, ignored
VAR = "var"  # a single letter, a word glued to a number ("9ck") or a subscript digit
PROSE = "prose"  # any other word
CMD = "cmd"  # a LaTeX command such as \\log or \\sqrt, whose argument may follow

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<time>\d{1,2}:[0-5]\d(?::[0-5]\d)?(?!\d))
  | (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]\d)|\d+(?:\.\d+)?|\.\d+)
  | (?P<pow>\*\*)
  | (?P<floordiv>//)
  | (?P<op>[+\-*/^×·⋅∙÷−–])
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<pct>%)
  | (?P<eq>==?|≈)
  | (?P<cur>[$€£¥])
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<word>[^\W\d_]+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_OP_CANONICAL = {"×": "*", "·": "*", "⋅": "*", "∙": "*", "÷": "/", "−": "-", "–": "-"}

# LaTeX spellings rewritten before tokenizing; \frac{a}{b} only with brace-free parts.
_LATEX_REPLACEMENTS = (
    (re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}"), r" \1 "),
    (re.compile(r"\\(?:times|cdot)(?![A-Za-z])"), " * "),
    (re.compile(r"\\div(?![A-Za-z])"), " / "),
    (re.compile(r"\\left\s*\(|\\right\s*\)"), lambda m: "(" if "left" in m.group() else ")"),
    (re.compile(r"\\[()\[\]]"), " "),  # inline and display math delimiters
    (re.compile(r"\^\s*\{([^{}]*)\}"), r"^(\1)"),  # 2^{10}
    (re.compile(r"_\s*\{[^{}]*\}"), "_0"),  # a subscript is part of a name: a_{n+1}, \sum_{k=1}
    (re.compile(r"\\([$%])"), r"\1"),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\[,;!: ]"), " "),
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int
    glued: bool  # no whitespace between this token and the previous one


def _normalise_latex(text: str) -> str:
    if "\\" not in text and "{" not in text:
        return text
    for pattern, replacement in _LATEX_REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


def _raw_tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    glued = True
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        value = match.group()
        if kind == "ws":
            glued = False
            continue
        if kind == "num":
            digits = sum(ch.isdigit() for ch in value)
            kind = NUM if digits <= MAX_LITERAL_DIGITS else BADNUM
        elif kind == "pow":
            kind, value = OP, "^"
        elif kind == "floordiv":
            kind = OP
        elif kind == "op":
            kind, value = OP, _OP_CANONICAL.get(value, value)
        elif kind == "lparen":
            kind = LPAREN
        elif kind == "rparen":
            kind = RPAREN
        elif kind == "pct":
            kind = PCT
        elif kind == "time":
            kind = OTHER
        elif kind == "eq":
            kind = EQ
        elif kind == "cur":
            kind = CUR
        elif kind == "word":
            kind = WORD
        elif kind == "cmd":
            kind = CMD
        else:
            kind = OTHER
        if kind == NUM and glued and tokens and _is_identifier_part(tokens[-1]):
            kind = VAR  # the "1" of "m_1" or "a3" is part of a name, not a number
        tokens.append(_Token(kind, value, match.start(), match.end(), glued))
        glued = True
    return tokens


def _is_identifier_part(previous: _Token) -> bool:
    if previous.kind == OTHER:
        return previous.text == "_"
    return previous.kind == WORD and previous.text not in ("x", "X")


_OPERAND_END = {NUM, RPAREN, PCT}
_OPERAND_START = {NUM, LPAREN}


_MAX_UNIT_WORDS = 3


# Words that link clauses ("3 and 4 - 2 = 2") and so never belong to a unit.
_NOT_UNITS = frozenset(
    "and or of is are was were so then to than from by with equals gives makes plus minus "
    "times but because which that".split()
)


def _is_unit_word(token: _Token | None) -> bool:
    return (
        token is not None
        and token.kind == WORD
        and len(token.text) > 1
        and token.text.lower() not in _NOT_UNITS
    )


def _is_times_x(tokens: Sequence[_Token], i: int) -> bool:
    """Return whether tokens[i] is a word ``x`` followed by an operand (``5 x 4``)."""
    token = tokens[i]
    following = tokens[i + 1] if i + 1 < len(tokens) else None
    return (
        token.kind == WORD
        and token.text in ("x", "X")
        and following is not None
        and following.kind in _OPERAND_START
    )


def _unit_phrase_end(tokens: Sequence[_Token], i: int) -> int | None:
    """Return the end index of a unit phrase that starts at ``tokens[i]``, after an operand.

    A unit phrase is up to ``_MAX_UNIT_WORDS`` words of two or more letters, optionally
    joined by ``/`` (``miles/train``, ``kg/day/person``, ``miles per gallon``), that is
    followed by an operator, ``=``, ``)``, a multiplying ``x`` or the end of the text.
    Anything else after the words (a number, punctuation) makes them prose.
    """
    if i < len(tokens) and tokens[i].kind == WORD and tokens[i].glued:
        return None  # "9ck", "5kg": see _classify
    j = i
    words = 0
    while j < len(tokens):
        token = tokens[j]
        if _is_unit_word(token) and not _is_times_x(tokens, j):
            words += 1
            j += 1
        elif (
            token.kind == OP
            and token.text == "/"
            and _is_unit_word(tokens[j + 1] if j + 1 < len(tokens) else None)
        ):
            j += 1
        else:
            break
        if words > _MAX_UNIT_WORDS:
            return None
    if words == 0:
        return None
    follower = tokens[j] if j < len(tokens) else None
    if follower is None or follower.kind in (OP, EQ, RPAREN) or _is_times_x(tokens, j):
        return j
    return None


def _is_operand_next(tokens: Sequence[_Token], i: int) -> bool:
    return i + 1 < len(tokens) and tokens[i + 1].kind in _OPERAND_START


def _classify(tokens: list[_Token]) -> list[_Token]:
    """Resolve words, ``x`` and stars by their neighbours (currency signs are transparent).

    Words become UNIT (a unit phrase after an operand), OP ``*`` (a multiplying ``x``, or
    ``of`` after a percentage), VAR (a single letter or a word glued to a number) or
    PROSE. ``*`` and ``**`` become MARKDOWN and are dropped, unless spaces surround them
    or an operand precedes them and an operand, a sign or a variable follows.
    """
    significant = [t for t in tokens if t.kind != CUR]
    kinds = [t.kind for t in significant]
    i = 0
    while i < len(significant):
        if kinds[i] in _OPERAND_END:
            end = _unit_phrase_end(significant, i + 1)
            if end is not None:
                for j in range(i + 1, end):
                    kinds[j] = UNIT
                i = end
                continue
        i += 1
    result: list[_Token] = []
    for i, token in enumerate(significant):
        kind = kinds[i]
        text = token.text
        if kind == WORD:
            previous = kinds[i - 1] if i > 0 else None
            if _is_times_x(significant, i) and previous in _OPERAND_END | {UNIT}:
                kind, text = OP, "*"
            elif text.lower() == "of" and previous == PCT and _is_operand_next(significant, i):
                kind, text = OP, "*"  # "20% of 50"
            elif previous == NUM and token.glued:
                # A word glued to a number is an algebraic term ("9ck", "3iz") or an
                # ordinal ("6th"). In both cases the number is not a quantity on its own.
                kind = VAR
            else:
                kind = VAR if len(text) == 1 else PROSE
        elif kind == OP and (text == "*" or (text == "^" and token.end - token.start == 2)):
            before = result[-1].kind if result else None
            after = significant[i + 1] if i + 1 < len(significant) else None
            operand_follows = after is not None and (
                after.kind in _OPERAND_START
                or (after.kind == OP and after.text in "+-")
                or (after.kind == WORD and len(after.text) == 1)
            )
            glued_word = after is not None and after.kind == WORD and after.glued and token.glued
            # Emphasis stars touch the emphasised text, so a star with spaces on both sides
            # is an operator.
            spaced = not token.glued and after is not None and not after.glued
            operand_before = before in _OPERAND_END | {UNIT, VAR}
            if not spaced and not (operand_before and (operand_follows or glued_word)):
                kind = MARKDOWN
        if kind == MARKDOWN:
            continue
        if kind != token.kind or text != token.text:
            token = _Token(kind, text, token.start, token.end, token.glued)
        result.append(token)
    currency = [t for t in tokens if t.kind == CUR]
    if not currency:
        return result
    return sorted(result + currency, key=lambda t: t.start)


def _tokenize(text: str) -> list[_Token]:
    return _classify(_raw_tokens(text))


_SKIPPED = {CUR, UNIT}
_EXPRESSION_KINDS = {NUM, OP, LPAREN, RPAREN, PCT}


# ---------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------


def _check_size(value: Fraction) -> Fraction:
    if (
        value.numerator.bit_length() > MAX_RESULT_BITS
        or value.denominator.bit_length() > MAX_RESULT_BITS
    ):
        raise ArithmeticEvaluationError(
            f"intermediate result exceeds {MAX_RESULT_BITS} bits; "
            "only moderately sized arithmetic is checked"
        )
    return value


def _literal(text: str) -> Fraction:
    cleaned = text.replace(",", "")
    if sum(ch.isdigit() for ch in cleaned) > MAX_LITERAL_DIGITS:
        raise ArithmeticEvaluationError(
            f"number literal has more than {MAX_LITERAL_DIGITS} digits: {text[:20]}..."
        )
    return Fraction(cleaned)


class _Parser:
    """Recursive-descent evaluator over expression tokens (skipped kinds already removed).

    Grammar (``**`` binds tighter than unary minus on its left, as in Python)::

        expr    := term (("+" | "-") term)*
        term    := unary (("*" | "/" | "//") unary)*
        unary   := ("+" | "-") unary | power
        power   := postfix ("^" unary)?
        postfix := atom "%"*
        atom    := NUMBER | "(" expr ")"
    """

    def __init__(self, tokens: Sequence[_Token], source: str):
        self.tokens = tokens
        self.source = source
        self.pos = 0
        self.depth = 0

    def parse(self) -> Fraction:
        if not self.tokens:
            raise ArithmeticSyntaxError(f"no arithmetic expression in {self.source[:80]!r}")
        value = self._expr()
        if self.pos != len(self.tokens):
            token = self.tokens[self.pos]
            raise ArithmeticSyntaxError(
                f"unexpected {token.text!r} at position {token.start} in {self.source[:80]!r}"
            )
        return value

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _peek_op(self, ops: Sequence[str]) -> str | None:
        token = self._peek()
        if token is not None and token.kind == OP and token.text in ops:
            return token.text
        return None

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ArithmeticSyntaxError(
                f"expression nests deeper than {MAX_NESTING} levels in {self.source[:80]!r}"
            )

    def _expr(self) -> Fraction:
        value = self._term()
        while (op := self._peek_op("+-")) is not None:
            self.pos += 1
            right = self._term()
            value = _check_size(value + right if op == "+" else value - right)
        return value

    def _term(self) -> Fraction:
        value = self._unary()
        while (op := self._peek_op(("*", "/", "//"))) is not None:
            self.pos += 1
            right = self._unary()
            if op == "*":
                value = _check_size(value * right)
                continue
            if right == 0:
                raise ArithmeticEvaluationError(f"division by zero in {self.source[:80]!r}")
            value = _check_size(value / right if op == "/" else Fraction(value // right))
        return value

    def _unary(self) -> Fraction:
        op = self._peek_op("+-")
        if op is None:
            return self._power()
        self.pos += 1
        self._enter()
        value = self._unary()
        self.depth -= 1
        return -value if op == "-" else value

    def _power(self) -> Fraction:
        base = self._postfix()
        if self._peek_op("^") is None:
            return base
        self.pos += 1
        self._enter()
        exponent = self._unary()
        self.depth -= 1
        return _power(base, exponent, self.source)

    def _postfix(self) -> Fraction:
        value = self._atom()
        while (token := self._peek()) is not None and token.kind == PCT:
            self.pos += 1
            value = value / 100
        return value

    def _atom(self) -> Fraction:
        token = self._peek()
        if token is None:
            raise ArithmeticSyntaxError(f"expression ends early: {self.source[:80]!r}")
        if token.kind == NUM:
            self.pos += 1
            return _literal(token.text)
        if token.kind == LPAREN:
            self.pos += 1
            self._enter()
            value = self._expr()
            closing = self._peek()
            if closing is None or closing.kind != RPAREN:
                raise ArithmeticSyntaxError(f"missing ')' in {self.source[:80]!r}")
            self.pos += 1
            self.depth -= 1
            return value
        raise ArithmeticSyntaxError(
            f"unexpected {token.text!r} at position {token.start} in {self.source[:80]!r}"
        )


def _power(base: Fraction, exponent: Fraction, source: str) -> Fraction:
    if exponent.denominator != 1:
        raise ArithmeticEvaluationError(f"non-integer exponent {exponent} in {source[:80]!r}")
    power = exponent.numerator
    if abs(power) > MAX_EXPONENT:
        raise ArithmeticEvaluationError(
            f"exponent {power if abs(power) < 10**12 else '(huge)'} is outside "
            f"[-{MAX_EXPONENT}, {MAX_EXPONENT}] in {source[:80]!r}"
        )
    if base == 0 and power < 0:
        raise ArithmeticEvaluationError(f"division by zero (0 to a negative power) in {source!r}")
    bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if bits * abs(power) > MAX_RESULT_BITS:
        raise ArithmeticEvaluationError(
            f"power result would exceed {MAX_RESULT_BITS} bits in {source[:80]!r}"
        )
    return base**power


def _evaluate_tokens(tokens: Sequence[_Token], source: str) -> Fraction:
    if len(tokens) > MAX_TOKENS:
        raise ArithmeticEvaluationError(f"expression has more than {MAX_TOKENS} tokens")
    return _Parser(tokens, source).parse()


def evaluate(expr: str) -> Fraction:
    """Evaluate an arithmetic expression exactly.

    Args:
        expr: Text such as ``"3 x 7"``, ``"$1,200 / 4"``, ``"(2 + 3)^2"`` or ``"20% * 50"``.
            Postfix ``%`` divides by 100. Units after numbers and currency signs are ignored.

    Returns:
        The exact value.

    Raises:
        ArithmeticSyntaxError: The text is not a single well-formed expression.
        ArithmeticEvaluationError: Division by zero or a size limit (see the module
            docstring) was hit. Both are subclasses of ArithmeticParseError.
        TypeError: ``expr`` is not a string.
    """
    if not isinstance(expr, str):
        raise TypeError(f"expr must be a str, got {type(expr).__name__}")
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise ArithmeticEvaluationError(
            f"expression has {len(expr)} characters, more than the limit {MAX_EXPRESSION_CHARS}"
        )
    tokens = _tokenize(_normalise_latex(expr))
    kept: list[_Token] = []
    for token in tokens:
        if token.kind in _SKIPPED:
            continue
        if token.kind == BADNUM:
            raise ArithmeticEvaluationError(
                f"number literal has more than {MAX_LITERAL_DIGITS} digits: {token.text[:20]}..."
            )
        if token.kind not in _EXPRESSION_KINDS:
            raise ArithmeticSyntaxError(
                f"unexpected {token.text!r} at position {token.start} in {expr[:80]!r}"
            )
        kept.append(token)
    return _evaluate_tokens(kept, expr)


# ---------------------------------------------------------------------------------------
# Lenient number parsing
# ---------------------------------------------------------------------------------------

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_NUMBER_RE = re.compile(
    rf"""
    ^\s*(?P<sign>[+\-])?\s*(?:[$€£¥]\s*)?(?P<sign2>[+\-])?\s*
    (?P<whole>{_NUMBER})
    (?:
        \s+(?P<mixnum>\d{{1,{MAX_LITERAL_DIGITS}}})\s*/\s*(?P<mixden>\d{{1,{MAX_LITERAL_DIGITS}}})
      | \s*/\s*(?P<den>{_NUMBER})
    )?
    (?:\s*%)?
    (?P<rest>.*)$
    """,
    re.VERBOSE | re.DOTALL,
)
# What may follow a number: trailing punctuation, or a unit / words without digits.
_REST_RE = re.compile(r"^(?:\s+[^\W\d_][^\d]*)?[\s.,;:!?]*$", re.DOTALL)
# Markdown bold around text, and a dangling "**" at either end ("**Answer:** 42" leaves
# "** 42"). A "**" inside ("2**3") is an operator and stays.
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_DANGLING_BOLD_RE = re.compile(r"^\s*\*\*\s*|\s*\*\*\s*$")


def strip_markdown_bold(text: str) -> str:
    """Remove Markdown bold markers (``**42**``, ``__42__``) but keep ``**`` operators."""
    text = _BOLD_RE.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
    return _DANGLING_BOLD_RE.sub("", text)


_TEXT_RE = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}")


def parse_number(text: str) -> Fraction | None:
    """Read one number from short answer text, leniently; None if it is not a plain number.

    Accepted: signs (``-3``, ``+7``, ``−3``), currency (``$18.00``), thousands separators
    (``1,000``), decimals (``.5``, ``5.``), fractions (``3/4``, ``\\frac{3}{4}``), mixed
    numbers (``2 1/2`` = 5/2), Markdown bold (``**42**``), and trailing units or words
    without digits (``7 apples.``). A percent sign is read as a unit, so ``75%`` is 75:
    GSM8K-style questions that ask for a percentage have the bare number as gold answer.

    Anything else (an operator after the number, a second number, letters glued to the
    number such as ``2x``, more than ``MAX_LITERAL_DIGITS`` digits, division by zero)
    returns None, so callers can fall back to a symbolic comparison.
    """
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return None
    text = strip_markdown_bold(text)
    text = _TEXT_RE.sub(r" \1", text)
    text = _normalise_latex(text).replace("−", "-").strip()
    # \frac{a}{b} became ((a)/(b)); a lone pair of brackets around the number is dropped.
    text = re.sub(r"^([+\-]?)\s*\(\(([\d.,]+)\)/\(([\d.,]+)\)\)", r"\1\2/\3", text)
    text = text.strip("$ ")
    match = _NUMBER_RE.match(text)
    if match is None or not _REST_RE.match(match.group("rest")):
        return None
    if match.group("sign") and match.group("sign2"):
        return None
    try:
        value = _literal(match.group("whole"))
        if match.group("mixden") is not None:
            if "." in match.group("whole"):
                return None
            denominator = _literal(match.group("mixden"))
            if denominator == 0:
                return None
            value += _literal(match.group("mixnum")) / denominator
        elif match.group("den") is not None:
            denominator = _literal(match.group("den"))
            if denominator == 0:
                return None
            value /= denominator
    except ArithmeticParseError:
        return None
    if (match.group("sign") or match.group("sign2")) == "-":
        value = -value
    return value


# ---------------------------------------------------------------------------------------
# Equations in free text
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Equation:
    """A chain of equal-signed expressions found in text, such as ``12 + 21 = 33``.

    Attributes:
        sides: The text of each side, left to right (currency signs kept, units kept).
        values: The exact value of each side, or None where evaluation failed
            (division by zero, a size limit).
        numbers: The number literals on each side, as written (unsigned).
        is_correct: Whether every side evaluated and each side equals the one before it.
            Three relaxations of exact equality are accepted. A side with ``%`` may be
            read in percent (``3/4 = 75%``). A decimal literal may round or truncate a value
            that has more decimal places (``31 / 3 = 10.33``). A compound side may start
            from the previous result (``5 + 3 = 8 + 2 = 10``).
        is_annotation: Whether the chain came from a GSM8K calculator annotation
            ``<<expr=value>>``.
    """

    sides: tuple[str, ...]
    values: tuple[Fraction | None, ...]
    numbers: tuple[tuple[Fraction, ...], ...]
    is_correct: bool
    is_annotation: bool = False

    @property
    def result(self) -> Fraction | None:
        """Value of the last side (the computed result)."""
        return self.values[-1]

    @property
    def operand_numbers(self) -> tuple[Fraction, ...]:
        """Number literals on every side except the last (the inputs of the calculation)."""
        return tuple(n for side in self.numbers[:-1] for n in side)


_BULLET_RE = re.compile(r"^\s*[-*•]\s+")
_ANNOTATION_RE = re.compile(r"<<([^<>]{0,500})>>")


@dataclass(frozen=True)
class _Side:
    text: str
    value: Fraction | None
    alternatives: frozenset[Fraction]
    numbers: tuple[Fraction, ...]
    first_number: Fraction | None  # value of the first literal when the side is compound
    unit: str | None  # unit of a side that is one quantity ("15 gallons", "$1")
    decimals: int = 0  # decimal places of a side that is one decimal literal ("33.33")
    is_quantity: bool = False  # one number, maybe with a unit ("15 gallons")


def _make_side(tokens: Sequence[_Token], text: str, follower: _Token | None) -> _Side | None:
    """Evaluate one side; None when the tokens are not a well-formed expression."""
    kept = [t for t in tokens if t.kind not in _SKIPPED]
    if not kept or not any(t.kind == NUM for t in kept):
        return None
    side_text = text[tokens[0].start : tokens[-1].end]
    numbers = tuple(_literal(t.text) for t in kept if t.kind == NUM)

    is_quantity = kept[0].kind == NUM and all(t.kind == PCT for t in kept[1:])
    unit = None
    if is_quantity:
        if any(t.kind == CUR for t in tokens):
            unit = "$"
        else:
            words = [t.text.lower() for t in tokens if t.kind == UNIT]
            if not words and follower is not None and follower.kind in (PROSE, UNIT):
                words = [follower.text.lower()]
            unit = " ".join(words) or None
    first_number = numbers[0] if not is_quantity and kept[0].kind == NUM else None

    try:
        value = _evaluate_tokens(kept, side_text)
    except ArithmeticSyntaxError:
        return None
    except ArithmeticEvaluationError:
        return _Side(
            side_text, None, frozenset(), numbers, first_number, unit, is_quantity=is_quantity
        )
    alternatives = {value}
    if any(t.kind == PCT for t in kept):
        # "= 75%" and "3/4 * 100% = 75" state a ratio in percent.
        alternatives.add(value * 100)
    decimals = 0
    if is_quantity and "." in kept[0].text:
        decimals = len(kept[0].text.split(".")[1])
    return _Side(
        side_text,
        value,
        frozenset(alternatives),
        numbers,
        first_number,
        unit,
        decimals=decimals,
        is_quantity=is_quantity,
    )


_SIGN_AFTER = {None, OTHER, LPAREN, EQ}


# LaTeX commands that separate statements rather than act on a neighbouring number.
_SEPARATOR_COMMANDS = frozenset(
    {"\\quad", "\\qquad", "\\implies", "\\Rightarrow", "\\rightarrow", "\\therefore"}
)
# Characters that end an operand, so a sign after them is a binary operator.
_OPERAND_CLOSERS = "!}]|"


def _is_math_command(token: _Token | None) -> bool:
    return token is not None and token.kind == CMD and token.text not in _SEPARATOR_COMMANDS


def _continues_term(token: _Token) -> bool:
    """Return whether ``token``, glued to a side, makes the side part of a larger term."""
    if token.kind in (VAR, BADNUM, LPAREN) or _is_math_command(token):
        return True
    return token.kind == OTHER and token.text in "\\{}_!^√|["


def _trailing_expression(tokens: Sequence[_Token]) -> list[_Token] | None:
    """Return the maximal expression at the end of ``tokens`` (left of an "="), or None.

    None means that the expression would be a fragment of a larger term.
    """
    depth = 0
    start = len(tokens)
    while start > 0:
        token = tokens[start - 1]
        if token.kind == RPAREN:
            depth += 1
        elif token.kind == LPAREN:
            if depth == 0:
                break
            depth -= 1
        elif token.kind not in _EXPRESSION_KINDS and token.kind not in _SKIPPED:
            break
        start -= 1
    if depth != 0:
        return None

    while start < len(tokens) and tokens[start].kind == UNIT:
        start += 1
    side = list(tokens[start:])
    if not side or all(t.kind in _SKIPPED for t in side):
        return None
    first = next(t for t in side if t.kind not in _SKIPPED)
    breaker = tokens[start - 1] if start > 0 else None
    if first.kind == OP:
        # A leading "*" or "/" is a fragment, and so is a leading sign after a word or
        # number: in "48 eggs in cases + 2 eggs =" the "+" is binary.
        if first.text not in "+-" or (breaker.kind if breaker else None) not in _SIGN_AFTER:
            return None
        if breaker is not None and breaker.kind == OTHER and breaker.text in _OPERAND_CLOSERS:
            return None
    if breaker is not None and breaker.kind == BADNUM:
        return None
    if breaker is not None and breaker.kind != LPAREN:
        if side[0].glued and _continues_term(breaker):
            return None  # "3x =", "4!(28 - 4) =": the side is part of a larger term
        if _is_math_command(breaker) or (breaker.kind == VAR and not breaker.text.isalpha()):
            return None  # "\\sqrt 4 =", "\\log_2 256 =": the number is an argument
    if breaker is not None and side[0].kind == LPAREN and side[0].glued:
        if breaker.kind in (VAR, PROSE, OTHER):
            return None  # "f(8) =" and "C(9, 7) =": the brackets hold function arguments
    return side


def _leading_expression(
    tokens: Sequence[_Token],
) -> tuple[list[_Token], _Token | None] | None:
    """Return the maximal expression at the start of ``tokens`` (right of an "=") and the
    token after it, or None when the expression would be a fragment of a larger term."""
    open_parens: list[int] = []
    end = 0
    while end < len(tokens):
        token = tokens[end]
        if token.kind == LPAREN:
            open_parens.append(end)
        elif token.kind == RPAREN:
            if not open_parens:
                break
            open_parens.pop()
        elif token.kind not in _EXPRESSION_KINDS and token.kind not in _SKIPPED:
            break
        end += 1
    if open_parens:
        end = open_parens[0]  # "= 21 (apples)": the side ends before the open bracket
    side = list(tokens[:end])
    while side and side[-1].kind == CUR:
        side.pop()
    if not side or side[-1].kind == OP or all(t.kind in _SKIPPED for t in side):
        return None
    follower = tokens[end] if end < len(tokens) else None
    if follower is not None and (
        (follower.glued and _continues_term(follower))
        or _is_math_command(follower)
        or follower.text == "["
    ):
        return None  # "= 20x", "= 2\\pi r" and "= 3 [2a + 5d]" are parts of larger terms
    return side, follower


def _is_full_expression(tokens: Sequence[_Token]) -> bool:
    return bool(tokens) and all(t.kind in _EXPRESSION_KINDS or t.kind in _SKIPPED for t in tokens)


def _equations_from_tokens(tokens: list[_Token], text: str) -> list[Equation]:
    segments: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind == EQ:
            segments.append([])
        else:
            segments[-1].append(token)
    equations: list[Equation] = []
    j = 0
    while j < len(segments) - 1:
        left = _trailing_expression(segments[j])
        if left is None:
            j += 1
            continue
        start = len(segments[j]) - len(left)
        breaker = segments[j][start - 1] if start > 0 else None
        # In "Ways to choose any 4 students = 20475" the number belongs to a description.
        in_prose = breaker is not None and breaker.kind in (PROSE, VAR)
        sides_tokens = [left]
        k = j + 1
        # Extend the chain through segments that are whole expressions: a = b = c.
        while k < len(segments) - 1 and _is_full_expression(segments[k]):
            sides_tokens.append(segments[k])
            k += 1
        leading = _leading_expression(segments[k])
        follower = None
        if leading is None:
            if len(sides_tokens) == 1:
                j += 1
                continue
            right = sides_tokens.pop()
            k -= 1
        else:
            right, follower = leading
        sides_tokens.append(right)
        equation = _build_equation(
            sides_tokens, text, follower, is_annotation=False, first_in_prose=in_prose
        )
        if equation is not None:
            equations.append(equation)
        j = k
    return equations


def _sides_agree(previous: _Side, current: _Side) -> bool:
    """Return whether ``previous = current`` is true in a chain.

    Besides equal values, a running-total chain such as ``5 + 3 = 8 + 2 = 10`` is
    accepted: a compound side whose first number equals the previous side continues the
    calculation from that result.
    """
    if previous.alternatives & current.alternatives:
        return True
    if _is_rounded(previous, current) or _is_rounded(current, previous):
        return True
    return current.first_number is not None and current.first_number in previous.alternatives


def _is_rounded(exact: _Side, written: _Side) -> bool:
    """Return whether ``written`` is a decimal literal that rounds or truncates ``exact``.

    ``31 / 3 = 10.33`` is accepted, but ``2.4 = 2.5`` is not, because an exact value with
    at most as many decimal places as the literal must equal it.
    """
    if written.decimals == 0 or written.value is None:
        return False
    scale = 10**written.decimals
    tolerance = Fraction(1, scale)
    for value in exact.alternatives:
        if (value * scale).denominator != 1:
            if abs(value - written.value) < tolerance:
                return True
    return False


_REMAINDER_WORDS = frozenset({"with", "remainder", "r", "rem"})


def _is_quotient_with_remainder(sides: Sequence[_Side], follower: _Token | None) -> bool:
    """Return whether ``a / b = q remainder r`` states the integer quotient correctly."""
    if len(sides) != 2 or follower is None or follower.text.lower() not in _REMAINDER_WORDS:
        return False
    quotient, stated = sides[0].value, sides[1].value
    return (
        quotient is not None
        and stated is not None
        and quotient >= 0
        and (stated == quotient.numerator // quotient.denominator)
    )


def _build_equation(
    sides_tokens: Sequence[Sequence[_Token]],
    text: str,
    follower: _Token | None,
    is_annotation: bool,
    first_in_prose: bool = False,
) -> Equation | None:
    if len(sides_tokens) < 2:
        return None
    sides: list[_Side] = []
    for i, tokens in enumerate(sides_tokens):
        side = _make_side(tokens, text, follower if i == len(sides_tokens) - 1 else None)
        if side is None:
            return None
        sides.append(side)
    first = sides[0]
    is_label = first.is_quantity and ((first.unit and not sides[1].is_quantity) or first_in_prose)
    if is_label and not _sides_agree(first, sides[1]):
        # "4 students drank 1.5 quarts = 4 * 1.5 = 6 quarts": the first side is a label.
        sides = sides[1:]
        if len(sides) < 2:
            return None
    first, last = sides[0], sides[-1]
    if len(sides) == 2 and first.unit and last.unit and first.unit != last.unit:
        return None  # a unit conversion such as "15 gallons = 120 pints" is not checked
    is_correct = all(side.value is not None for side in sides) and all(
        _sides_agree(a, b) for a, b in zip(sides, sides[1:], strict=False)
    )
    if not is_correct and _is_quotient_with_remainder(sides, follower):
        is_correct = True
    return Equation(
        sides=tuple(side.text for side in sides),
        values=tuple(side.value for side in sides),
        numbers=tuple(side.numbers for side in sides),
        is_correct=is_correct,
        is_annotation=is_annotation,
    )


def _annotation_equations(text: str) -> list[Equation]:
    equations = []
    for match in _ANNOTATION_RE.finditer(text):
        body = _normalise_latex(match.group(1))
        tokens = _tokenize(body)
        parts: list[list[_Token]] = [[]]
        for token in tokens:
            if token.kind == EQ:
                parts.append([])
            else:
                parts[-1].append(token)
        if len(parts) < 2 or not all(_is_full_expression(part) for part in parts):
            continue
        equation = _build_equation(parts, body, None, is_annotation=True)
        if equation is not None:
            equations.append(equation)
    return equations


def find_equations(text: str) -> list[Equation]:
    """Find the equation chains that ``text`` states, in order, and check each one.

    A chain is ``expr = expr [= expr ...]`` on one line of text. Its left side is the
    maximal arithmetic expression that ends at the first ``=``, and its right side the
    maximal one that starts after the last ``=``. Sides in between must be whole
    expressions.
    Words before and after are ignored (``She makes 9 * 2 = $18 every day``). Sides that
    are fragments of a larger term give no equation: algebra (``3x + 5 = 20``), function
    arguments (``f(8) = 2``, ``\\log_2 256 = 8``), subscripted names (``a_1 = 5``) and
    ordinals (``1st - 5 = 6th``). A number inside a description (``any 4 students =
    20475``, ``4 students drank 1.5 quarts = 4 * 1.5``) is a label, and a unit conversion
    (``15 gallons = 120 pints``) is not checked. Common LaTeX is read: ``\\frac``,
    ``\\times``, ``\\cdot``, ``\\div``, ``\\text{}``, ``^{...}`` and math delimiters.
    GSM8K calculator annotations ``<<expr=value>>`` are checked as equations of their own
    and then removed from the text, so ``16 - 3 - 4 = <<16-3-4=9>>9`` yields two.

    Model text never makes it raise (only a non-str argument raises TypeError). Text
    beyond ``MAX_TEXT_CHARS`` characters is not scanned.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return list(_find_equations_cached(text[:MAX_TEXT_CHARS]))


@functools.lru_cache(maxsize=4096)
def _find_equations_cached(text: str) -> tuple[Equation, ...]:
    # Step checkers rescan earlier steps of an episode on every step, so results are cached.
    equations = _annotation_equations(text) if "<<" in text else []
    text = _normalise_latex(_ANNOTATION_RE.sub("", text))
    for line in text.splitlines():
        if "=" in line or "≈" in line:
            line = _BULLET_RE.sub(" ", line, count=1)  # "- 2^9 = 512" is a list item
            equations.extend(_equations_from_tokens(_tokenize(line), line))
    return tuple(equations)


def extract_numbers(text: str) -> list[Fraction]:
    """Return every number written in digits in ``text``, in order.

    A ``-`` (or ``−``) directly before a number counts as its sign unless it follows an
    operand (``5 - 3`` gives 5 and 3). Percent signs, currency and units are ignored.
    Text beyond ``MAX_TEXT_CHARS`` characters is not scanned.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    tokens = _tokenize(_normalise_latex(text[:MAX_TEXT_CHARS]))
    numbers: list[Fraction] = []
    for i, token in enumerate(tokens):
        if token.kind != NUM:
            continue
        value = _literal(token.text)
        if i > 0 and tokens[i - 1].kind == OP and tokens[i - 1].text == "-":
            before = tokens[i - 2].kind if i > 1 else None
            if before not in _OPERAND_END and before != UNIT:
                value = -value
        numbers.append(value)
    return numbers
