"""Answer verification and bounded arithmetic checking.

``answers`` extracts and compares final answers (exact fractions, then math-verify in a
worker process); ``safe_arith`` evaluates and checks the arithmetic that steps state.
"""

from reasoning_gym.verify.answers import (
    GoldAnswer,
    answers_equivalent,
    extract_answer,
    is_final_answer,
    normalize_answer,
    parse_gold,
    verify_answer,
)
from reasoning_gym.verify.safe_arith import (
    Equation,
    evaluate,
    extract_numbers,
    find_equations,
    parse_number,
)

__all__ = [
    "Equation",
    "GoldAnswer",
    "answers_equivalent",
    "evaluate",
    "extract_answer",
    "extract_numbers",
    "find_equations",
    "is_final_answer",
    "normalize_answer",
    "parse_gold",
    "parse_number",
    "verify_answer",
]
