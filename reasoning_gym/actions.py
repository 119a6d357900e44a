"""Helpers that build actions: an intermediate step or a final answer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def step_action(text: str) -> str:
    """Return ``text`` as one intermediate step (newlines folded to spaces).

    The environment appends the step separator itself, so a step must not contain it.
    """
    if not isinstance(text, str):
        raise TypeError(f"step text must be a str, got {type(text).__name__}")
    return " ".join(text.split())


def answer_action(answer: object, prefix: str = "The answer is ") -> str:
    """Return a final-answer step, ``"The answer is \\boxed{ANSWER}."``."""
    return f"{prefix}\\boxed{{{answer}}}."


def token_action(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Return token ids as a 1-D int64 array, the form the environment appends exactly."""
    array = np.asarray(ids, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"token ids must be 1-D, got shape {array.shape}")
    return array


def is_final_answer(text: str) -> bool:
    """Whether ``text`` is in a final-answer format (``\\boxed{}``, ``####``, ...)."""
    from reasoning_gym.verify.answers import is_final_answer as _is_final_answer

    return _is_final_answer(text)
