"""Exception hierarchy of reasoning_gym.

Every message names the offending value and says how to fix it. Text produced by a
model never raises these: the environment turns junk steps into a defined reward.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ReasoningGymError(Exception):
    """Base class of every error raised on purpose by reasoning_gym."""


class UnknownNameError(ReasoningGymError, KeyError):
    """A task, PRM, policy, agent or model name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        message = f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known) or '(none)'}"
        close = difflib.get_close_matches(str(name), self.known, n=1, cutoff=0.5)
        if close:
            message += f". Did you mean {close[0]!r}?"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


class ResetNeededError(ReasoningGymError, RuntimeError):
    """`step` was called before `reset`, or after the episode ended."""


class InvalidActionError(ReasoningGymError, TypeError):
    """An action of the wrong type, shape, or with token ids outside the vocabulary."""


class DatasetFormatError(ReasoningGymError, ValueError):
    """A malformed dataset record; the message names the file and line number."""


class GoldAnswerError(ReasoningGymError, ValueError):
    """A gold answer that the verifier cannot parse, so it could not reward anything."""


class ArithmeticParseError(ReasoningGymError, ValueError):
    """Text that the bounded arithmetic parser rejects (syntax, size or work limits)."""


class ModelNotFoundError(ReasoningGymError, FileNotFoundError):
    """A model name that is neither a short name, a local folder nor a reachable hub id."""
