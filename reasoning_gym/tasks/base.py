"""Problems, the Task interface and the task registry.

A task supplies problems, an outcome verifier and, optionally, an exact step checker.
Procedural tasks build each problem from its own RNG seeded by ``(seed, index)``, so a
problem depends only on those two numbers and never on the global RNG.
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reasoning_gym.errors import UnknownNameError


@dataclass(frozen=True, eq=False)
class Problem:
    """One reasoning problem.

    Attributes:
        id: Stable identifier, for example ``"arithmetic/seed=0/index=12"``.
        question: The question shown to the policy.
        answer: Gold final answer as text; only the outcome verifier reads it.
        gold_steps: Gold reasoning steps, the last one being the final answer, or None.
        metadata: Provenance (task, source, seed, index, difficulty, ...).
    """

    id: str
    question: str
    answer: str
    gold_steps: tuple[str, ...] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy (used in episode records)."""
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "gold_steps": list(self.gold_steps) if self.gold_steps is not None else None,
            "metadata": dict(self.metadata),
        }


#: Seed under which procedural tasks generate their few-shot examples, far from the seeds
#: of training and evaluation problems.
FEW_SHOT_SEED = 1_000_000_007


def problem_rng(task_name: str, seed: int, index: int) -> random.Random:
    """Return the RNG that generates problem ``index`` of ``task_name`` under ``seed``.

    The seed material is hashed, so neighbouring seeds and indices give unrelated streams
    (``Random(seed + index)`` would make seed 1/index 0 equal seed 0/index 1).
    """
    digest = hashlib.blake2b(f"{task_name}:{seed}:{index}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


class Task(abc.ABC):
    """A source of problems with an outcome verifier and an optional step checker.

    Subclasses set ``name`` and ``instruction`` and implement ``problem``. The default
    ``verify`` extracts the final answer and compares it with math-verify.
    """

    name: str = ""
    instruction: str = (
        "Solve the problem step by step. Write one step per line. "
        "End with the final answer in the form \\boxed{ANSWER}."
    )
    #: Difficulty knobs: name -> (documented minimum, documented maximum).
    difficulty_ranges: Mapping[str, tuple[float, float]] = MappingProxyType({})

    @property
    def num_problems(self) -> int | None:
        """Number of distinct problems, or None for an unbounded procedural task."""
        return None

    @abc.abstractmethod
    def problem(self, index: int, seed: int = 0) -> Problem:
        """Return problem ``index`` (procedural tasks: generated from ``(seed, index)``)."""

    def verify(self, problem: Problem, answer_text: str) -> float:
        """Score a final answer against the gold answer: 1.0 if equivalent, else 0.0."""
        from reasoning_gym.verify.answers import verify_answer

        return 1.0 if verify_answer(answer_text, problem.answer) else 0.0

    def verify_batch(self, problems: Sequence[Problem], answer_texts: Sequence[str]) -> list[float]:
        """Score several final answers, as ``verify`` scores one.

        With the default ``verify``, the answers that need math-verify go to its worker
        process in one submission. A task that overrides ``verify`` is called once per answer.
        """
        if type(self).verify is not Task.verify:
            return [self.verify(p, text) for p, text in zip(problems, answer_texts, strict=True)]
        from reasoning_gym.verify.answers import verify_answers

        golds = [problem.answer for problem in problems]
        return [1.0 if ok else 0.0 for ok in verify_answers(list(answer_texts), golds)]

    def check_step(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> float | None:
        """Score one step in [0, 1] given the steps before it; None if the task has no checker."""
        return None

    @property
    def has_step_checker(self) -> bool:
        """Whether ``check_step`` is implemented (the oracle PRM needs it)."""
        return type(self).check_step is not Task.check_step

    def difficulty(self) -> dict[str, Any]:
        """Return the current difficulty knobs as a plain dict (provenance, curricula)."""
        return {}

    def few_shot_problems(self, count: int) -> list[Problem]:
        """Return ``count`` solved problems to show as worked examples in prompts.

        Procedural tasks generate them under seed :data:`FEW_SHOT_SEED`. A dataset task
        overrides this (GSM8K reads its training split) or raises.

        Raises:
            ValueError: The task has a fixed problem set and no source of examples.
        """
        if self.num_problems is not None:
            raise ValueError(
                f"task {self.name!r} has no source of few-shot examples; pass few_shot=0, "
                "or pass few_shot=[Problem(...), ...] with gold_steps"
            )
        return [self.problem(index, seed=FEW_SHOT_SEED) for index in range(count)]


TaskFactory = Callable[..., Task]

_TASKS: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory, *, overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> Task`` under ``name`` (lower-case, no spaces)."""
    if not name or name != name.strip() or " " in name:
        raise ValueError(f"invalid task name {name!r}: use a non-empty name without spaces")
    if name in _TASKS and not overwrite:
        raise ValueError(f"task {name!r} is already registered; pass overwrite=True to replace it")
    _TASKS[name] = factory


def make_task(name: str | Task, **kwargs: Any) -> Task:
    """Build a registered task by name, or return ``name`` if it already is a Task."""
    if isinstance(name, Task):
        if kwargs:
            raise ValueError(
                f"task options {sorted(kwargs)} were given with a Task instance; "
                "configure the instance instead"
            )
        return name
    from reasoning_gym.tasks import ensure_builtin_tasks

    ensure_builtin_tasks()
    if name not in _TASKS:
        raise UnknownNameError("task", name, _TASKS)
    factory = _TASKS[name]
    resolve = getattr(factory, "resolve", None)
    try:
        signature = inspect.signature(resolve() if resolve is not None else factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as error:
            raise ValueError(
                f"invalid options {sorted(kwargs)} for task {name!r}: {error}; its options "
                f"are {signature} (the command line's --data sets 'path' of the dataset tasks)"
            ) from None
    return factory(**kwargs)


def registered_tasks() -> list[str]:
    """Return the names of all registered tasks, built-in ones included."""
    from reasoning_gym.tasks import ensure_builtin_tasks

    ensure_builtin_tasks()
    return sorted(_TASKS)
