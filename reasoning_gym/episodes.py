"""Run one episode of a step policy in a ReasoningEnv, and store episodes as JSON Lines.

The policy sees the environment's observation (token ids) as its context and its
proposal's token ids are the action, so no text is re-tokenized between the two.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from reasoning_gym.policies.base import SamplingConfig, StepPolicy

logger = logging.getLogger(__name__)


@dataclass
class EpisodeRecord:
    """Result of one episode, as written to one JSONL line.

    Attributes:
        index: Problem index passed to ``reset`` (None when a problem object was passed).
        problem_id: The problem's id.
        question: The problem's question.
        steps: Text of every step taken.
        step_rewards: Reward of every step.
        prm_scores: PRM score of every step (None where no PRM scored it).
        answer: Extracted final answer, or None.
        gold: Gold answer.
        correct: Whether the final answer was verified correct.
        episode_return: Undiscounted sum of ``step_rewards`` (key ``"return"`` in JSON).
        num_steps: Number of steps taken.
        generated_tokens: Tokens in the policy's proposals, separators excluded.
        wall_time_s: Wall-clock time of the episode in seconds.
        terminated: Whether the episode ended with a final answer.
        truncated: Whether it hit ``max_steps`` or the context limit.
        compute: Search agents' compute (policy calls, PRM calls, ...); empty otherwise.
    """

    index: int | None
    problem_id: str
    question: str
    steps: list[str] = field(default_factory=list)
    step_rewards: list[float] = field(default_factory=list)
    prm_scores: list[float | None] = field(default_factory=list)
    answer: str | None = None
    gold: str = ""
    correct: bool = False
    episode_return: float = 0.0
    num_steps: int = 0
    generated_tokens: int = 0
    wall_time_s: float = 0.0
    terminated: bool = False
    truncated: bool = False
    compute: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; ``episode_return`` is stored as ``"return"``."""
        data = asdict(self)
        data["return"] = data.pop("episode_return")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        """Build a record from :meth:`to_dict` output; unknown keys are ignored."""
        data = dict(data)
        if "return" in data:
            data["episode_return"] = data.pop("return")
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def run_episode(
    env: Any,
    policy: StepPolicy,
    *,
    index: int | None = None,
    options: dict[str, Any] | None = None,
    seed: int | None = None,
    sampling: SamplingConfig | None = None,
) -> EpisodeRecord:
    """Play one episode: reset, then one policy proposal per step until it ends.

    Args:
        env: A ``ReasoningEnv`` or a Gymnasium wrapper around one.
        policy: Any :class:`StepPolicy`; its per-episode cache is reset first.
        index: Problem index, passed as ``options={"index": index}``.
        options: Reset options used when ``index`` is None (``{"problem": Problem}``).
        seed: Seed passed to ``env.reset``.
        sampling: Sampling settings for every step; None keeps the policy's own.

    Returns:
        The episode's :class:`EpisodeRecord`.
    """
    if index is not None and options is not None:
        raise ValueError("pass either index or options to run_episode, not both")
    reset_options = {"index": int(index)} if index is not None else options
    started = time.perf_counter()
    policy.reset()
    observation, info = env.reset(seed=seed, options=reset_options)
    problem = env.unwrapped.problem

    record = EpisodeRecord(
        index=index, problem_id=str(problem.id), question=problem.question, gold=problem.answer
    )
    terminated = truncated = False
    while not (terminated or truncated):
        proposal = policy.propose([observation], n=1, sampling=sampling)[0][0]
        action = np.asarray(proposal.token_ids, dtype=np.int64)  # (L,)
        observation, reward, terminated, truncated, info = env.step(action)
        record.step_rewards.append(float(reward))
        record.prm_scores.append(_as_float(info.get("prm_score")))
        record.generated_tokens += len(action)

    state = env.unwrapped.get_state()
    record.steps = list(state.step_texts)
    record.num_steps = len(record.steps)
    record.answer = info.get("answer")
    record.gold = str(info.get("gold_answer", problem.answer))
    record.correct = bool(info.get("correct", False))
    record.episode_return = float(sum(record.step_rewards))
    record.terminated = bool(terminated)
    record.truncated = bool(truncated)
    record.wall_time_s = time.perf_counter() - started
    return record


class JsonlWriter:
    """Append JSON objects to a file, one per line, flushed after each line.

    A run stopped with Ctrl-C keeps every finished line, so it can be resumed.
    """

    def __init__(self, path: str | os.PathLike, append: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = open(self.path, "a" if append else "w", encoding="utf-8")

    def write(self, record: EpisodeRecord | dict[str, Any]) -> None:
        """Write one record as a line and flush it to the operating system."""
        data = record.to_dict() if isinstance(record, EpisodeRecord) else record
        self._handle.write(json.dumps(data, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the JSON object of every line of ``path``.

    A last line that is cut off (the writer was killed mid-line) is skipped with a
    warning; a malformed line elsewhere raises ``DatasetFormatError``.
    """
    from reasoning_gym.errors import DatasetFormatError

    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not line.endswith("\n"):
                logger.warning("%s: skipping the incomplete last line %d", path, number)
                return
            raise DatasetFormatError(f"{path}:{number}: invalid JSON ({exc})") from exc


def read_episodes(path: str | os.PathLike) -> list[EpisodeRecord]:
    """Read the episode records of a JSONL file written by :class:`JsonlWriter`."""
    return [EpisodeRecord.from_dict(data) for data in iter_jsonl(path)]


def summarize(records: list[EpisodeRecord]) -> dict[str, float]:
    """Aggregate episodes: accuracy, mean return and steps, tokens and tokens per second."""
    count = len(records)
    if count == 0:
        return {"episodes": 0}
    tokens = sum(record.generated_tokens for record in records)
    seconds = sum(record.wall_time_s for record in records)
    return {
        "episodes": count,
        "accuracy": sum(record.correct for record in records) / count,
        "mean_return": sum(record.episode_return for record in records) / count,
        "mean_steps": sum(record.num_steps for record in records) / count,
        "generated_tokens": tokens,
        "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        "wall_time_s": seconds,
        "terminated_fraction": sum(record.terminated for record in records) / count,
        **_mean_compute(records),
    }


def _mean_compute(records: list[EpisodeRecord]) -> dict[str, float]:
    """Mean per-problem compute of search agents (``mean_policy_calls``, ...)."""
    with_compute = [record.compute for record in records if record.compute]
    if not with_compute:
        return {}
    keys = ("policy_calls", "prm_calls", "prm_items")
    return {
        f"mean_{key}": sum(float(c.get(key, 0.0)) for c in with_compute) / len(with_compute)
        for key in keys
    }
