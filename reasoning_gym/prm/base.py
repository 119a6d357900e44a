"""The process-reward-model interface, step-score aggregation and the score cache.

A PRM scores a batch of ``(problem, steps so far, candidate step)`` and returns one
score per item in [0, 1]. Plain callables are wrapped by :class:`CallablePRM`.
"""

from __future__ import annotations

import abc
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reasoning_gym.tasks.base import Problem

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class StepQuery:
    """One item to score: step ``step`` taken after ``previous_steps`` on ``problem``.

    Attributes:
        problem: The problem; only PRMs allowed to use the gold answer (oracle,
            Monte-Carlo labelling) read ``problem.answer``.
        previous_steps: Text of the steps already taken.
        step: Text of the candidate step.
        context_ids: Token ids of the state before the step, if known.  # (T,)
        step_ids: Token ids of the step, if known.  # (L,)
    """

    problem: Problem
    previous_steps: tuple[str, ...]
    step: str
    context_ids: np.ndarray | None = None
    step_ids: np.ndarray | None = None

    def cache_key(self) -> bytes:
        """Key of the score cache: (context ids, step ids) when known, else the text."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(self.problem.id.encode())
        if self.context_ids is not None and self.step_ids is not None:
            digest.update(b"ids")
            digest.update(np.ascontiguousarray(self.context_ids, dtype=np.int64).tobytes())
            digest.update(b"|")
            digest.update(np.ascontiguousarray(self.step_ids, dtype=np.int64).tobytes())
        else:
            digest.update(b"text")
            for text in (*self.previous_steps, self.step):
                digest.update(text.encode("utf-8", "replace"))
                digest.update(b"\x00")
        return digest.digest()


class ProcessRewardModel(abc.ABC):
    """Batched step scorer with a bounded LRU cache of scores."""

    name: str = "prm"
    #: Whether this PRM reads the gold answer (oracle, Monte-Carlo). Search agents warn
    #: when one is used at test time, since that leaks the answer into the search.
    uses_gold_answer: bool = False

    def __init__(self, cache_size: int = 65536):
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._cache_size = cache_size
        self.calls = 0  # batched calls to _score_batch
        self.items_scored = 0  # items actually scored (cache misses)
        self.cache_hits = 0

    @abc.abstractmethod
    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        """Score queries that missed the cache; return a float array of shape (B,)."""

    def score(self, queries: Sequence[StepQuery]) -> np.ndarray:
        """Score a batch of steps; returns an array of shape (B,) with values in [0, 1]."""
        scores = np.empty(len(queries), dtype=np.float64)
        keys = [query.cache_key() for query in queries]
        missing: list[int] = []
        for i, key in enumerate(keys):
            cached = self._cache.get(key)
            if cached is None:
                missing.append(i)
            else:
                self._cache.move_to_end(key)
                scores[i] = cached
                self.cache_hits += 1
        if missing:
            fresh = np.asarray(self._score_batch([queries[i] for i in missing]), dtype=np.float64)
            if fresh.shape != (len(missing),):
                raise ValueError(
                    f"{type(self).__name__}._score_batch returned shape {fresh.shape}, "
                    f"expected ({len(missing)},)"
                )
            fresh = sanitize_scores(fresh, source=self.name)
            self.calls += 1
            self.items_scored += len(missing)
            for i, value in zip(missing, fresh):
                scores[i] = value
                self._cache[keys[i]] = float(value)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return scores

    def score_solution(self, problem: Problem, steps: Sequence[str]) -> np.ndarray:
        """Score every step of a whole solution in one batch; returns shape (len(steps),)."""
        steps = tuple(steps)
        queries = [
            StepQuery(problem=problem, previous_steps=steps[:i], step=step)
            for i, step in enumerate(steps)
        ]
        return self.score(queries) if queries else np.zeros(0)

    def clear_cache(self) -> None:
        self._cache.clear()


def sanitize_scores(scores: np.ndarray, source: str = "prm") -> np.ndarray:
    """Clip scores into [0, 1]; NaN becomes 0.0 with a warning naming the PRM."""
    bad = ~np.isfinite(scores)
    if bad.any():
        logger.warning(
            "PRM %r returned %d non-finite score(s); they count as 0.0", source, int(bad.sum())
        )
        scores = np.where(np.isnan(scores), 0.0, scores)
    return np.clip(scores, 0.0, 1.0)


class CallablePRM(ProcessRewardModel):
    """Wraps a user function ``fn(query) -> float`` or, with ``batched=True``,
    ``fn(queries) -> sequence of floats``."""

    def __init__(
        self,
        fn: Callable,
        *,
        batched: bool = False,
        name: str | None = None,
        cache_size: int = 65536,
    ):
        super().__init__(cache_size=cache_size)
        self.fn = fn
        self.batched = batched
        self.name = name or getattr(fn, "__name__", "callable")

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        if self.batched:
            return np.asarray(self.fn(list(queries)), dtype=np.float64)
        return np.asarray([float(self.fn(query)) for query in queries], dtype=np.float64)


def _product(scores: np.ndarray) -> float:
    return float(np.prod(scores))


#: Aggregations of a solution's step scores into one solution score.
AGGREGATIONS: dict[str, Callable[[np.ndarray], float]] = {
    "min": lambda scores: float(np.min(scores)),
    "last": lambda scores: float(scores[-1]),
    "product": _product,
    "mean": lambda scores: float(np.mean(scores)),
}


def aggregate(scores: Sequence[float] | np.ndarray, how: str = "min") -> float:
    """Aggregate step scores into a solution score; an empty solution scores 0.0."""
    if how not in AGGREGATIONS:
        from reasoning_gym.errors import UnknownNameError

        raise UnknownNameError("aggregation", how, AGGREGATIONS)
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return 0.0
    return AGGREGATIONS[how](values)
