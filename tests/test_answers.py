"""Final-answer extraction, normalisation and verification (fast path and math-verify)."""

from __future__ import annotations

import concurrent.futures
from fractions import Fraction

import pytest

from reasoning_gym.errors import GoldAnswerError
from reasoning_gym.verify.answers import (
    MAX_ANSWER_CHARS,
    answers_equivalent,
    extract_answer,
    is_final_answer,
    normalize_answer,
    parse_gold,
    verify_answer,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So \\boxed{42}.", "42"),
        ("\\boxed{1}\\boxed{2}", "2"),
        ("\\boxed{1} and later \\boxed{2", "1"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{\\boxed{3}}", "\\boxed{3}"),
        ("$\\boxed{7}$ The answer is 8", "7"),
        ("\\fbox{5}", "5"),
        ("\\boxed{}", ""),
        ("Janet makes 18.\n#### 18", "18"),
        ("#### 1,000", "1,000"),
        ("The answer is 7 apples.", "7 apples"),
        ("the final answer is: **42**.", "**42**"),
        ("The answer is 3.5. Then 8 more.", "3.5"),
        ("THE ANSWER IS -3", "-3"),
        ("Answer: $3.50.", "$3.50"),
        ("**Answer:** 42", "** 42"),
        ("answer: 5\nThe answer is 6", "6"),
        ("**Final Answer:** 9", "** 9"),
        ("Work.\n> Answer: 10", "10"),
    ],
)
def test_extract_answer_table(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "3 * 7 = 21", "\\boxed{3", "The answer depends on x.", "To find the answer: add 3 and 4."],
)
def test_extract_answer_none(text):
    assert extract_answer(text) is None
    assert is_final_answer(text) is False


def test_is_final_answer_formats():
    assert is_final_answer("so \\boxed{3}")
    assert is_final_answer("#### 3")
    assert is_final_answer("The answer is 3.")
    assert is_final_answer("Answer: 3")


def test_extract_answer_deep_unclosed_nesting():
    text = "\\boxed{" * 50_000
    assert extract_answer(text) is None


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\boxed{42}", "42"),
        ("**42**", "42"),
        ("The answer is **42**.", "42"),
        ("$18.00", "18"),
        ("\\boxed{\\$18}", "18"),
        ("1,000", "1000"),
        ("#### 1,000", "1000"),
        ("5.", "5"),
        ("The answer is 5.", "5"),
        ("-3", "-3"),
        ("−3", "-3"),
        ("\\boxed{−3}", "-3"),
        ("+7", "7"),
        ("0.75", "\\frac{3}{4}"),
        ("\\frac{3}{4}", "0.75"),
        ("3/4", "0.75"),
        ("2 1/2", "2.5"),
        ("2 1/2", "\\frac{5}{2}"),
        ("The answer is 7 apples.", "7"),
        ("Answer: 12 cm", "12"),
        ("75%", "75"),
        ("$\\boxed{18}$", "18"),
        ("42", "#### 42"),
    ],
)
def test_verify_accepts_equivalent(pred, gold):
    assert verify_answer(pred, gold) is True


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\boxed{1}\\boxed{2}", "12"),
        ("\\boxed{1}\\boxed{2}", "1"),
        ("\\boxed{41}", "42"),
        ("$18.50", "18"),
        ("1,000", "100"),
        ("-3", "3"),
        ("7", "-7"),
        ("0.75", "\\frac{3}{5}"),
        ("2 1/2", "21/2"),
        ("The answer is 8 apples.", "7"),
        ("\\boxed{}", "0"),
        ("", "0"),
        ("The answer is seven", "7"),
        ("7" * (MAX_ANSWER_CHARS + 1), "7"),
        ("2**3", "23"),
    ],
)
def test_verify_rejects_wrong(pred, gold):
    assert verify_answer(pred, gold) is False


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", True),
        ("\\boxed{(x+1)^2}", "x^2+2x+1", True),
        ("\\boxed{2x}", "2", False),
        ("\\boxed{2**3}", "8", True),
        ("\\boxed{\\pi}", "\\frac{\\pi}{1}", True),
        ("\\boxed{\\sqrt{3}}", "\\frac{\\sqrt{3}}{2}", False),
    ],
)
def test_verify_latex_slow_path(pred, gold, expected):
    assert verify_answer(pred, gold) is expected


def test_verify_from_worker_threads():
    cases = [("\\boxed{\\sqrt{8}}", "2\\sqrt{2}", True), ("\\boxed{\\sqrt{8}}", "\\sqrt{2}", False)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as threads:
        results = list(threads.map(lambda case: verify_answer(case[0], case[1]), cases))
    assert results == [True, False]


def test_verify_hostile_latex_times_out_as_wrong():
    assert verify_answer("\\boxed{9^{9^{9^{9}}}}", "\\sqrt{2}", timeout=1.0) is False
    # The worker is replaced after a timeout, so later comparisons still work.
    assert verify_answer("\\boxed{\\sqrt{4}}", "\\frac{\\sqrt{2}}{\\sqrt{2}} + 1") is True


def test_verify_hostile_numbers_on_fast_path():
    assert verify_answer("9" * 100_000, "9") is False
    assert verify_answer("\\boxed{9**9**9**9}", "9") is False
    assert verify_answer("(" * 400 + "1" + ")" * 400, "1") is False


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("\\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\frac{1}{2}", "\\boxed{0.5}", True),
        ("$1,000", "1000", True),
        ("x = 5", "5", True),
        ("5", "x = 5", True),
        ("\\{1, 2\\}", "\\{2, 1\\}", True),
        ("3", "4", False),
        ("", "", False),
    ],
)
def test_answers_equivalent_symmetric(a, b, expected):
    assert answers_equivalent(a, b) is expected
    assert answers_equivalent(b, a) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**42**", "42"),
        ("$\\frac{3}{4}$", "\\frac{3}{4}"),
        ("\\(x^2\\)", "x^2"),
        ("5.", "5"),
        ("+7", "7"),
        ("−3", "-3"),
        ("\\text{12 cm}", "12 cm"),
        ("1{,}000", "1,000"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ],
)
def test_normalize_answer_table(text, expected):
    assert normalize_answer(text) == expected


def test_parse_gold_values():
    assert parse_gold("18").value == Fraction(18)
    assert parse_gold("#### 1,000").value == Fraction(1000)
    assert parse_gold(7).value == Fraction(7)
    latex = parse_gold("\\frac{\\sqrt{3}}{2}")
    assert latex.value is None
    assert latex.normalized == "\\frac{\\sqrt{3}}{2}"


@pytest.mark.parametrize("gold", ["", "   ", "\\frac{", "1" * (MAX_ANSWER_CHARS + 1), None, True])
def test_parse_gold_rejects(gold):
    with pytest.raises(GoldAnswerError):
        parse_gold(gold)


def test_unparseable_gold_rewards_nothing():
    for pred in ["\\frac{", "1", "\\boxed{x}", ""]:
        assert verify_answer(pred, "\\frac{") is False
