"""Immutable episode snapshots whose token storage is shared between snapshots.

The context of an episode only grows by appending, so all snapshots of one episode
can share one growable buffer: a snapshot is a ``(buffer, length)`` pair plus a linked
list of step records. Appending at the end of a buffer costs amortised O(step length).
When a search branches from an older snapshot, the first append copies the prefix into
a fresh buffer (copy on write), so no snapshot ever sees another branch's tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from reasoning_gym.tasks.base import Problem


class TokenBuffer:
    """Append-only int64 storage with capacity doubling.

    ``filled`` is the number of positions ever written. Views of ``[:n]`` with
    ``n <= filled`` stay valid forever because written positions never change.
    """

    __slots__ = ("_data", "filled")

    def __init__(self, initial: np.ndarray, capacity: int | None = None):
        capacity = max(int(capacity or 0), 2 * len(initial), 64)
        self._data = np.empty(capacity, dtype=np.int64)
        self._data[: len(initial)] = initial
        self.filled = len(initial)

    def view(self, length: int) -> np.ndarray:
        """Read-only view of the first ``length`` tokens (no copy)."""
        out = self._data[:length]
        out.flags.writeable = False
        return out

    def append_at(self, length: int, ids: np.ndarray) -> TokenBuffer:
        """Append ``ids`` after the first ``length`` tokens; return the buffer that holds them.

        Returns ``self`` when ``length`` is the end of the buffer, otherwise a new buffer
        (the caller branched from an older snapshot).
        """
        if length != self.filled:
            fresh = TokenBuffer(self._data[:length], capacity=2 * (length + len(ids)))
            return fresh.append_at(length, ids)
        end = length + len(ids)
        if end > len(self._data):
            grown = np.empty(max(2 * len(self._data), end), dtype=np.int64)
            grown[:length] = self._data[:length]
            # Old views keep pointing at the old array, whose contents stay valid.
            self._data = grown
        self._data[length:end] = ids
        self.filled = end
        return self


@dataclass(frozen=True, eq=False)
class StepRecord:
    """One step of an episode, linked to the step before it.

    Attributes:
        ids: Token ids of the action as appended, without the separator.  # (L,)
        text: Decoded text of ``ids``.
        score: PRM score of the step, or None when no PRM scored it.
        reward: Reward the environment returned for the step.
        is_final: Whether the step was a final answer.
        invalid: Whether the step was empty, whitespace-only or only separators.
        parent: The previous step, or None for the first one.
        index: Position of the step in the episode, from 0.
    """

    ids: np.ndarray
    text: str
    score: float | None
    reward: float
    is_final: bool
    invalid: bool
    parent: StepRecord | None
    index: int


@dataclass(frozen=True, eq=False)
class ReasoningState:
    """Snapshot of an episode: ``s_t`` = prompt ids + each step's ids and separator.

    Restoring a snapshot with ``ReasoningEnv.set_state`` reproduces the episode exactly.
    """

    problem: Problem
    prompt_length: int
    buffer: TokenBuffer
    length: int
    last_step: StepRecord | None
    terminated: bool = False
    truncated: bool = False
    potential: float = 0.0  # Phi(s_t) of potential-based shaping
    task_name: str = ""  # task of the environment that made the snapshot

    @property
    def ids(self) -> np.ndarray:
        """Token ids of the whole context (the observation).  # (T,)"""
        return self.buffer.view(self.length)

    @property
    def prompt_ids(self) -> np.ndarray:
        return self.buffer.view(self.prompt_length)

    @property
    def num_steps(self) -> int:
        return 0 if self.last_step is None else self.last_step.index + 1

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    def iter_steps_reversed(self) -> Iterator[StepRecord]:
        node = self.last_step
        while node is not None:
            yield node
            node = node.parent

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        """All steps, first to last (O(number of steps))."""
        return tuple(reversed(list(self.iter_steps_reversed())))

    @property
    def step_texts(self) -> tuple[str, ...]:
        return tuple(step.text for step in self.steps)
