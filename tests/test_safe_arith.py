"""Bounded arithmetic: evaluation, limits, lenient numbers and equations in text."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from reasoning_gym.errors import ArithmeticParseError
from reasoning_gym.verify.safe_arith import (
    MAX_LITERAL_DIGITS,
    ArithmeticEvaluationError,
    ArithmeticSyntaxError,
    evaluate,
    extract_numbers,
    find_equations,
    parse_number,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("3 * 7", Fraction(21)),
        ("3 x 7", Fraction(21)),
        ("3 × 7", Fraction(21)),
        ("3 · 7", Fraction(21)),
        ("12 ÷ 5", Fraction(12, 5)),
        ("12 / 4 / 3", Fraction(1)),
        ("16 - 3 - 4", Fraction(9)),
        ("−3 + 5", Fraction(2)),
        ("22 – 7", Fraction(15)),
        ("$1,200 / 4", Fraction(300)),
        ("(2 + 3) ^ 2", Fraction(25)),
        ("2 ** 3 ** 2", Fraction(512)),
        ("-2 ** 2", Fraction(-4)),
        ("2 ** -1", Fraction(1, 2)),
        ("--3", Fraction(3)),
        ("+7", Fraction(7)),
        (".25 * 4", Fraction(1)),
        ("80000 * 1.5", Fraction(120000)),
        ("20% * 50", Fraction(10)),
        ("560 // 10", Fraction(56)),
        ("3 apples + 4 apples", Fraction(7)),
        ("\\frac{3}{4} \\times 8", Fraction(6)),
    ],
)
def test_evaluate_values(expr, expected):
    assert evaluate(expr) == expected


@pytest.mark.parametrize("expr", ["", "3 +", "(3 + 4", "3 + 4)", "3 4", "2x + 1", "hello", "2(3)"])
def test_evaluate_rejects_malformed(expr):
    with pytest.raises(ArithmeticSyntaxError):
        evaluate(expr)


@pytest.mark.parametrize(
    "expr",
    [
        "1 / 0",
        "5 / (3 - 3)",
        "0 ** -1",
        "9**9**9**9",
        "2 ** 65",
        "2 ** 0.5",
        "1" * (MAX_LITERAL_DIGITS + 1),
        "(" + "10**60 * " * 30 + "1)",
    ],
)
def test_evaluate_rejects_unbounded_work(expr):
    with pytest.raises(ArithmeticEvaluationError):
        evaluate(expr)


def test_hostile_inputs_raise():
    hostile = [
        "9**9**9**9",
        "9" * 100_000,
        "(" * 10_000 + "1" + ")" * 10_000,
        "-" * 10_000 + "1",
        "1+" * 5_000 + "1",
    ]
    for expr in hostile:
        with pytest.raises(ArithmeticParseError):
            evaluate(expr)


def test_hostile_text_finds_nothing_wrong_quickly():
    assert find_equations("9" * 100_000 + " = 9") == []
    assert find_equations("(" * 5_000 + "1 = 1") != []
    power = find_equations("9**9**9**9 = 1")
    assert len(power) == 1
    assert power[0].is_correct is False
    assert power[0].values[0] is None


def test_evaluate_rejects_non_string():
    with pytest.raises(TypeError):
        evaluate(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18", Fraction(18)),
        ("$18.00", Fraction(18)),
        ("\\$18", Fraction(18)),
        ("1,000", Fraction(1000)),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("5.", Fraction(5)),
        (".5", Fraction(1, 2)),
        ("-3", Fraction(-3)),
        ("−3", Fraction(-3)),
        ("+7", Fraction(7)),
        ("-$5", Fraction(-5)),
        ("3/4", Fraction(3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{3}{4}", Fraction(3, 4)),
        ("-\\frac{3}{4}", Fraction(-3, 4)),
        ("2 1/2", Fraction(5, 2)),
        ("-2 1/2", Fraction(-5, 2)),
        ("75%", Fraction(75)),
        ("18\\%", Fraction(18)),
        ("**42**", Fraction(42)),
        ("7 apples.", Fraction(7)),
        ("3.5 hours per day", Fraction(7, 2)),
        ("12 \\text{ cm}", Fraction(12)),
    ],
)
def test_parse_number_accepts(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "abc", "2x", "5 - 3", "x = 5", "1e5", "0/0", "1/0", "1,5", "3 and 4", "9" * 200],
)
def test_parse_number_rejects(text):
    assert parse_number(text) is None


def _summary(text):
    return [(eq.sides, eq.is_correct) for eq in find_equations(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 * 7 = 21", [(("3 * 7", "21"), True)]),
        ("3 * 7 = 22", [(("3 * 7", "22"), False)]),
        ("12 + 21 = 33 apples", [(("12 + 21", "33 apples"), True)]),
        ("$5 x 4 = $20", [(("$5 x 4", "$20"), True)]),
        ("She makes 9 * 2 = $18 every day.", [(("9 * 2", "$18"), True)]),
        ("3 * 7 = **21**", [(("3 * 7", "21"), True)]),
        ("3 apples + 4 apples = 7 apples", [(("3 apples + 4 apples", "7 apples"), True)]),
        (
            "150 miles/train * 2 trains = 300 miles",
            [(("150 miles/train * 2 trains", "300 miles"), True)],
        ),
        (
            "25 miles per gallon x 12 gallons = 300",
            [(("25 miles per gallon x 12 gallons", "300"), True)],
        ),
        ("5 + 3 = 8 + 2 = 10", [(("5 + 3", "8 + 2", "10"), True)]),
        ("5 + 3 = 9 + 2 = 11", [(("5 + 3", "9 + 2", "11"), False)]),
        ("1 + 1 = 2 = 3", [(("1 + 1", "2", "3"), False)]),
        ("3/4 * 100 = 75%", [(("3/4 * 100", "75%"), True)]),
        ("20% * 50 = 10", [(("20% * 50", "10"), True)]),
        ("31 / 3 = 10.33", [(("31 / 3", "10.33"), True)]),
        ("2.4 = 2.5", [(("2.4", "2.5"), False)]),
        ("1/0 = 5", [(("1/0", "5"), False)]),
        ("(3 + 4 = 7)", [(("3 + 4", "7"), True)]),
        ("3 * 7 = 21 (apples)", [(("3 * 7", "21"), True)]),
        ("First 2 + 2 = 4, then 4 * 3 = 12.", [(("2 + 2", "4"), True), (("4 * 3", "12"), True)]),
        ("\\frac{3}{4} = 0.75", [(("((3)/(4))", "0.75"), True)]),
        ("3 \\times 4 = 12", [(("3  *  4", "12"), True)]),
        ("a = 5 + 3 = 8", [(("5 + 3", "8"), True)]),
        ("4 students drank 1.5 quarts = 4 * 1.5 = 6 quarts", [(("4 * 1.5", "6 quarts"), True)]),
        ("- 2^9 = 512", [(("2^9", "512"), True)]),
        ("2^{10} = 1024", [(("2^(10)", "1024"), True)]),
        ("410 \\div 333 = 1 with a remainder of 77", [(("410  /  333", "1"), True)]),
        ("410 \\div 333 = 2 with a remainder of 77", [(("410  /  333", "2"), False)]),
        ("1% of 50,000 = 500 candles", [(("1% of 50,000", "500 candles"), True)]),
        (
            "\\[ \\text{Brianna's Points} = \\text{Naomi's Points} + 17 = 68 + 17 = 85 \\]",
            [(("68 + 17", "85"), True)],
        ),
        ("\\(20 \\text{ stories} \\times 2 = 40\\)", [(("20   stories   *  2", "40"), True)]),
    ],
)
def test_find_equations_table(text, expected):
    assert _summary(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "x = 5",
        "3x + 5 = 20",
        "2x = 10",
        "= 20x",
        "2(3 + 4) = 14",
        "15 gallons = 120 pints",
        "From 8:00 to 11:00 is 11:00-8:00 = 3 hours",
        "He has 48 eggs in cases + 2 loose eggs = 50 eggs",
        "No equations here, only 3 and 4.",
        "\\(a_1 = 1492\\)",
        "9ck = 8",
        "1st - 5 = 6th",
        "\\log_2 256 = 8",
        "\\sqrt 4 = 2",
        "3.5 = 2\\pi r",
        "720 = \\frac{6}{2} [2a + 5d]",
        "a^2 = 1! + 2 = 3",
        "f(8) = 2",
        "(2/3)x * $1.5 = $150",
        "Ways to choose any 4 students = 20475",
        "\\sum_{k=1}^{44} 1 = 44",
    ],
)
def test_find_equations_skips_non_arithmetic(text):
    assert [eq for eq in find_equations(text) if not eq.is_correct] == []


def test_find_equations_checks_annotations():
    equations = find_equations("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.")
    assert [(eq.sides, eq.is_annotation, eq.is_correct) for eq in equations] == [
        (("16-3-4", "9"), True, True),
        (("16 - 3 - 4", "9"), False, True),
    ]
    wrong = find_equations("She makes 9 * 2 = $<<9*2=19>>19.")
    assert [eq.is_correct for eq in wrong] == [False, False]


def test_equation_fields():
    (equation,) = find_equations("12 + 21 = 33 apples")
    assert equation.values == (Fraction(33), Fraction(33))
    assert equation.numbers == ((Fraction(12), Fraction(21)), (Fraction(33),))
    assert equation.result == Fraction(33)
    assert equation.operand_numbers == (Fraction(12), Fraction(21))


def test_extract_numbers():
    text = "He had -3 apples and 5 - 2 pears, $1,000 and 2.5% of −4."
    assert extract_numbers(text) == [
        Fraction(-3),
        Fraction(5),
        Fraction(2),
        Fraction(1000),
        Fraction(5, 2),
        Fraction(-4),
    ]
    assert extract_numbers("no digits") == []


def test_random_text_never_raises():
    pieces = list("0123456789+-*/^()=%$., xX×÷−–_{}\\!|[]:") + [
        "**",
        "\\frac{",
        "\\text{",
        "apples ",
        "of ",
        "1,000",
        "<<",
        ">>",
        "\n",
    ]
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        for equation in find_equations(text):
            assert len(equation.sides) == len(equation.values) >= 2
        assert all(isinstance(number, Fraction) for number in extract_numbers(text))
        assert parse_number(text) is None or isinstance(parse_number(text), Fraction)
        try:
            assert isinstance(evaluate(text), Fraction)
        except ArithmeticParseError:
            pass
