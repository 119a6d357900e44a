"""Final-answer extraction and verification.

``extract_answer`` finds the final answer in model text. ``verify_answer`` compares it
with a gold answer in two stages:

1. Fast path: when both sides read as plain numbers (``parse_number``: ``$18.00``,
   ``1,000``, ``3/4``, ``\\frac{3}{4}``, ``2 1/2``, ``7 apples``), the exact fractions are
   compared in-process.
2. Slow path: anything else (LaTeX expressions, sets, intervals, ...) goes to
   math-verify's ``parse``/``verify``. math-verify's own timeouts use ``signal.alarm``,
   which only works in the main thread, so they are disabled (``parsing_timeout=None``,
   ``timeout_seconds=None``) and the call runs in a one-worker process pool instead. A
   call that exceeds ``timeout`` seconds is treated as wrong, logged, and its worker
   process is terminated and replaced. The functions are therefore safe to call from
   worker threads.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from reasoning_gym.errors import GoldAnswerError
from reasoning_gym.verify.safe_arith import parse_number, strip_markdown_bold

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_ANSWER_CHARS",
    "GoldAnswer",
    "answers_equivalent",
    "extract_answer",
    "is_final_answer",
    "normalize_answer",
    "parse_gold",
    "shutdown_verifier_pool",
    "verify_answer",
    "verify_answers",
]

logger = logging.getLogger(__name__)

#: Extracted answers (and gold answers) longer than this are rejected as wrong.
MAX_ANSWER_CHARS = 1000
#: Seconds one math-verify comparison may take before it counts as wrong.
DEFAULT_TIMEOUT_S = 5.0
#: Seconds allowed for starting the worker process and importing math-verify in it.
_POOL_START_TIMEOUT_S = 120.0
_CACHE_SIZE = 4096

# ---------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASH_RE = re.compile(r"####[ \t]*([^\n]*\S)")
# The answer runs to the end of the line or of the sentence: a period followed by
# whitespace or the end ("is 3.5." gives "3.5").
_SENTENCE = r"(.+?)(?:\.(?=\s|$)|[ \t]*$)"
_ANSWER_IS_RE = re.compile(
    r"\bthe\s+(?:final\s+)?answer\s+is\s*:?[ \t]*" + _SENTENCE, re.IGNORECASE | re.MULTILINE
)
# "Answer:" counts only at the start of a line ("**Final Answer:** 42"), so that prose such
# as "to find the answer: first ..." does not end an episode.
_ANSWER_COLON_RE = re.compile(
    r"^[ \t>#*_]*(?:final[ \t]+)?answer(?:\*\*|__)?[ \t]*:[ \t]*" + _SENTENCE,
    re.IGNORECASE | re.MULTILINE,
)


def _last_complete_box(text: str) -> str | None:
    """Content of the complete ``\\boxed{...}`` that closes last, or None.

    One left-to-right pass with a brace stack, so nested and unclosed boxes cost linear
    time; ``\\{`` and ``\\}`` are escaped braces and do not count.
    """
    starts = {m.end() - 1: m.end() for m in _BOX_RE.finditer(text)}
    if not starts:
        return None
    stack: list[int | None] = []  # content start for a box's brace, None for other braces
    last: str | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            stack.append(starts.get(i))
        elif char == "}" and stack:
            content_start = stack.pop()
            if content_start is not None:
                last = text[content_start:i]
        i += 1
    return last


def _strip_answer(answer: str) -> str:
    return answer.strip().rstrip(".,;").strip()


def extract_answer(text: str) -> str | None:
    """Extract the final answer from model text, or return None if it states none.

    Formats, in order of precedence:

    1. the last complete ``\\boxed{...}``: nested braces are handled, an unclosed box is
       ignored and separate boxes are never joined;
    2. the last ``#### x``;
    3. the last "The answer is x", case-insensitive, up to the end of the sentence;
    4. the last "Answer: x" at the start of a line ("Final Answer:" and Markdown bold
       allowed), case-insensitive, up to the end of the sentence.

    Surrounding whitespace and a trailing period or comma are removed. Other
    normalisation happens in ``normalize_answer``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    boxed = _last_complete_box(text)
    if boxed is not None:
        return boxed.strip()
    for pattern in (_HASH_RE, _ANSWER_IS_RE, _ANSWER_COLON_RE):
        matches = pattern.findall(text)
        if matches:
            return _strip_answer(matches[-1])
    return None


def is_final_answer(text: str) -> bool:
    """Return whether ``text`` states a final answer in a format of ``extract_answer``."""
    return extract_answer(text) is not None


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def normalize_answer(answer: str) -> str:
    """Normalise an extracted answer for comparison.

    Removes Markdown bold, math delimiters (``$...$``, ``\\(...\\)``), ``\\text{}``
    wrappers, LaTeX thin spaces, a trailing period or comma and a leading ``+``, and
    replaces the Unicode minus with ``-``. Numbers with currency, units or thousands
    separators are left to ``parse_number``.
    """
    text = strip_markdown_bold(answer.strip()).replace("−", "-")
    changed = True
    while changed:
        changed = False
        text = _strip_answer(text)
        for left, right in _DELIMITERS:
            if (
                len(text) > len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
            ):
                text = text[len(left) : -len(right)]
                changed = True
                break
    text = re.sub(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\[,!;: ]", "", text).replace("{,}", ",")
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"^\+\s*(?=[\d.$\\])", "", text)
    return text.strip()


def _answer_part(text: str) -> str:
    extracted = extract_answer(text)
    return extracted if extracted is not None else text


# ---------------------------------------------------------------------------------------
# Slow path: math-verify in a worker process
# ---------------------------------------------------------------------------------------


def _worker_init() -> None:
    # Quiet math-verify's "timeout is disabled" warnings: the parent enforces timeouts.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    import math_verify  # noqa: F401  (imported once at start-up, not on the first request)


def _worker_ready() -> bool:
    return True


def _mv_parse(text: str) -> list[Any]:
    """Parse an extracted answer as the content of a box, else as plain text.

    Without the box math-verify reads bare LaTeX such as ``\\frac{\\sqrt{2}}{2}`` as
    nothing and ``2x`` as 2.
    """
    from math_verify import parse

    parsed = parse("\\boxed{" + text + "}", parsing_timeout=None)
    if _has_expression(parsed):
        return parsed
    return parse(text, parsing_timeout=None)


def _has_expression(parsed: list[Any]) -> bool:
    """math-verify returns the raw string as fallback: only a sympy object counts."""
    return any(not isinstance(item, str) for item in parsed)


def _worker_gold_parses(gold: str) -> bool:
    return _has_expression(_mv_parse(gold))


def _worker_verify(gold: str, pred: str, symmetric: bool) -> bool | None:
    """Return None when the gold answer does not parse, else the comparison result."""
    from math_verify import verify

    parsed_gold = _mv_parse(gold)
    if not _has_expression(parsed_gold):
        return None
    parsed_pred = _mv_parse(pred)
    if not parsed_pred:
        return False
    if verify(parsed_gold, parsed_pred, timeout_seconds=None):
        return True
    if symmetric and _has_expression(parsed_pred):
        return bool(verify(parsed_pred, parsed_gold, timeout_seconds=None))
    return False


_pool_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def _mp_context() -> multiprocessing.context.BaseContext:
    """Prefer "fork" where available.

    "spawn" and "forkserver" re-import the caller's ``__main__`` module in the worker,
    which fails for scripts without an ``if __name__ == "__main__":`` guard. The forked
    worker only runs math-verify, as torch's DataLoader workers only run dataset code.
    """
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _get_pool() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=_mp_context(), initializer=_worker_init
            )
            pool.submit(_worker_ready).result(timeout=_POOL_START_TIMEOUT_S)
            _pool = pool
        return _pool


def _discard_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Terminate ``pool``'s worker (it may be stuck in sympy) and forget the pool."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
    else:
        # NOTE: `_processes` is private to ProcessPoolExecutor (Python 3.10-3.13); it is
        # the only way to stop a worker that is stuck in a computation.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown_verifier_pool() -> None:
    """Stop the math-verify worker process (it is started again on the next slow call)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_in_pool(function: Callable[..., Any], *args: Any, timeout: float) -> tuple[bool, Any]:
    """Run ``function(*args)`` in the worker; return (finished, result)."""
    key = (function.__name__, *args)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return True, _cache[key]
    for attempt in range(2):
        try:
            pool = _get_pool()
        except (concurrent.futures.TimeoutError, BrokenProcessPool, OSError) as error:
            logger.warning("math-verify worker process failed to start: %s", error)
            return False, None
        try:
            result = pool.submit(function, *args).result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            logger.warning(
                "math-verify timed out after %.1f s on %s; counted as not equivalent",
                timeout,
                [arg[:80] for arg in args if isinstance(arg, str)],
            )
            _discard_pool(pool)
            return False, None
        except BrokenProcessPool:
            # Another thread's timeout terminated the worker; retry once on a new one.
            _discard_pool(pool)
            if attempt == 0:
                continue
            logger.warning(
                "math-verify worker process died on %s",
                [arg[:80] for arg in args if isinstance(arg, str)],
            )
            return False, None
        with _cache_lock:
            _cache[key] = result
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return True, result
    return False, None


def _run_many_in_pool(
    function: Callable[..., Any], calls: list[tuple[Any, ...]], timeout: float
) -> list[tuple[bool, Any]]:
    """Run ``function(*args)`` for each ``args`` in ``calls`` and return (finished, result) each.

    All calls missing from the cache are submitted to the worker at once, so the batch
    waits on the worker once instead of once per call. The worker runs them one after
    another, so waiting ``timeout`` seconds for each result after the previous one
    gives each call its own ``timeout``. After a timeout or a dead worker, the calls
    still waiting run one by one through ``_run_in_pool``, which replaces the worker.
    """
    outcomes: list[tuple[bool, Any] | None] = [None] * len(calls)
    missing: list[int] = []
    with _cache_lock:
        for index, args in enumerate(calls):
            key = (function.__name__, *args)
            if key in _cache:
                _cache.move_to_end(key)
                outcomes[index] = (True, _cache[key])
            else:
                missing.append(index)
    if missing:
        try:
            pool = _get_pool()
        except (concurrent.futures.TimeoutError, BrokenProcessPool, OSError) as error:
            logger.warning("math-verify worker process failed to start: %s", error)
            pool = None
        futures = [] if pool is None else [pool.submit(function, *calls[i]) for i in missing]
        for position, index in enumerate(missing):
            if pool is None:
                outcomes[index] = (False, None)
                continue
            try:
                result = futures[position].result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                logger.warning(
                    "math-verify timed out after %.1f s on %s; counted as not equivalent",
                    timeout,
                    [arg[:80] for arg in calls[index] if isinstance(arg, str)],
                )
                _discard_pool(pool)
                outcomes[index] = (False, None)
                for later in missing[position + 1 :]:
                    outcomes[later] = _run_in_pool(function, *calls[later], timeout=timeout)
                break
            except BrokenProcessPool:
                # Another thread's timeout terminated the worker.
                _discard_pool(pool)
                for later in missing[position:]:
                    outcomes[later] = _run_in_pool(function, *calls[later], timeout=timeout)
                break
            with _cache_lock:
                _cache[(function.__name__, *calls[index])] = result
                if len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
            outcomes[index] = (True, result)
    return [outcome if outcome is not None else (False, None) for outcome in outcomes]


# ---------------------------------------------------------------------------------------
# Public comparison API
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldAnswer:
    """A gold answer that the verifier can compare against.

    Attributes:
        text: The gold answer as given.
        normalized: The text after ``normalize_answer``.
        value: The exact number when the gold is a plain number, else None (then
            math-verify parsed it as an expression).
    """

    text: str
    normalized: str
    value: Fraction | None


def parse_gold(gold: str | int | float) -> GoldAnswer:
    """Check that ``gold`` can be compared against and return it parsed.

    A gold answer that the verifier cannot parse would make every prediction wrong, so
    datasets call this at load time.

    Raises:
        GoldAnswerError: ``gold`` is empty, longer than ``MAX_ANSWER_CHARS``, or neither a
            plain number nor an expression that math-verify parses (or parsing timed out).
    """
    if isinstance(gold, bool) or not isinstance(gold, (str, int, float)):
        raise GoldAnswerError(
            f"gold answer must be a str or number, got {type(gold).__name__}: {gold!r}"
        )
    text = str(gold)
    normalized = normalize_answer(_answer_part(text))
    if not normalized:
        raise GoldAnswerError(f"gold answer {text!r} is empty; give the final answer text")
    if len(normalized) > MAX_ANSWER_CHARS:
        raise GoldAnswerError(
            f"gold answer has {len(normalized)} characters, more than {MAX_ANSWER_CHARS}; "
            "give only the final answer"
        )
    value = parse_number(normalized)
    if value is not None:
        return GoldAnswer(text, normalized, value)
    finished, parses = _run_in_pool(_worker_gold_parses, normalized, timeout=DEFAULT_TIMEOUT_S)
    if not finished:
        raise GoldAnswerError(
            f"parsing gold answer {text[:200]!r} with math-verify failed or timed out; "
            "simplify it to a number or a short LaTeX expression"
        )
    if not parses:
        raise GoldAnswerError(
            f"gold answer {text[:200]!r} is neither a number nor a LaTeX expression that "
            "math-verify parses; write it as a number or LaTeX such as \\frac{3}{4}"
        )
    return GoldAnswer(text, normalized, None)


def _compare(pred: str, gold: str, symmetric: bool, timeout: float) -> bool:
    fast = _compare_in_process(pred, gold)
    if fast is not None:
        return fast
    if symmetric and pred > gold:
        pred, gold = gold, pred  # one cache entry per unordered pair
    finished, result = _run_in_pool(_worker_verify, gold, pred, symmetric, timeout=timeout)
    return _worker_outcome(finished, result, gold, symmetric)


def _compare_in_process(pred: str, gold: str) -> bool | None:
    """Return the comparison when it needs no math-verify, else None."""
    if not pred or not gold:
        return False
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        logger.debug("answer longer than %d characters counted as wrong", MAX_ANSWER_CHARS)
        return False
    pred_value = parse_number(pred)
    gold_value = parse_number(gold)
    if pred_value is not None and gold_value is not None:
        return pred_value == gold_value
    return None


def _worker_outcome(finished: bool, result: bool | None, gold: str, symmetric: bool) -> bool:
    """Turn a ``_worker_verify`` outcome into the comparison result."""
    if not finished:
        return False
    if result is None:
        if symmetric:
            return False
        logger.warning("gold answer %r does not parse; every prediction counts as wrong", gold)
        return False
    return bool(result)


def verify_answer(pred_text: str, gold: str, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """Check whether the final answer in ``pred_text`` is equivalent to ``gold``.

    Args:
        pred_text: Model output; its answer is found with ``extract_answer``, or the
            whole text is the answer when it has none of those formats.
        gold: The gold answer, or a ``GoldAnswer`` from ``parse_gold``. The same
            extraction applies, so ``#### 18`` works.
        timeout: Seconds the math-verify comparison may take; after that the answer
            counts as wrong and a warning is logged.

    Returns:
        True when equivalent. Answers over ``MAX_ANSWER_CHARS`` characters, an empty
        answer and a gold answer that does not parse always give False.
    """
    pred, gold_text = _normalized_pair(pred_text, gold, "pred_text", "gold")
    return _compare(pred, gold_text, symmetric=False, timeout=timeout)


def _normalized_pair(pred_text: Any, gold: Any, pred_name: str, gold_name: str) -> tuple[str, str]:
    """Check the types of a prediction and a gold answer; return both normalized."""
    if not isinstance(pred_text, str):
        raise TypeError(f"{pred_name} must be a str, got {type(pred_text).__name__}")
    if isinstance(gold, GoldAnswer):
        gold = gold.normalized
    if not isinstance(gold, str):
        raise TypeError(f"{gold_name} must be a str, got {type(gold).__name__}")
    return normalize_answer(_answer_part(pred_text)), normalize_answer(_answer_part(gold))


def verify_answers(
    pred_texts: Sequence[str],
    golds: Sequence[str | GoldAnswer],
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[bool]:
    """Check each ``pred_texts[i]`` against ``golds[i]``, as ``verify_answer`` does one pair.

    Plain numbers are compared in-process. The comparisons that need math-verify are
    submitted to the worker process together, so a batch waits on the worker once
    instead of once per answer. ``timeout`` applies to each comparison.

    Raises:
        ValueError: When the two sequences differ in length.
        TypeError: On a prediction or gold answer that is not a str (or GoldAnswer).
    """
    if len(pred_texts) != len(golds):
        raise ValueError(
            f"got {len(pred_texts)} predictions and {len(golds)} gold answers; pass one gold "
            "answer per prediction"
        )
    results: list[bool] = []
    slow: list[tuple[int, str, str]] = []  # (index, gold, pred)
    for index, (pred_text, gold) in enumerate(zip(pred_texts, golds, strict=True)):
        pred, gold = _normalized_pair(pred_text, gold, f"pred_texts[{index}]", f"golds[{index}]")
        fast = _compare_in_process(pred, gold)
        results.append(bool(fast))
        if fast is None:
            slow.append((index, gold, pred))
    calls = [(gold, pred, False) for _, gold, pred in slow]
    outcomes = _run_many_in_pool(_worker_verify, calls, timeout=timeout)
    for (index, gold, _), (finished, result) in zip(slow, outcomes, strict=True):
        results[index] = _worker_outcome(finished, result, gold, symmetric=False)
    return results


def answers_equivalent(a: str, b: str, timeout: float = DEFAULT_TIMEOUT_S) -> bool:
    """Check whether two answers are equivalent, for majority voting.

    Symmetric: both go through the same extraction and normalisation as
    ``verify_answer``, and the math-verify comparison is tried in both directions
    (equivalent if either holds). Identical normalised answers are equivalent even when
    they do not parse; different ones that do not parse are not.
    """
    if not isinstance(a, str) or not isinstance(b, str):
        raise TypeError(f"answers must be str, got {type(a).__name__} and {type(b).__name__}")
    first = normalize_answer(_answer_part(a))
    second = normalize_answer(_answer_part(b))
    if first == second:
        return bool(first) and len(first) <= MAX_ANSWER_CHARS
    return _compare(first, second, symmetric=True, timeout=timeout)
