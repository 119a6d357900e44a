"""A weighted mixture of tasks behind one task (environment id ``Reasoning-Mixture-v0``).

Problem ``index`` picks a sub-task by weight with ``problem_rng("mixture", seed, index)``
and takes that sub-task's problem. The question starts with the sub-task's instruction,
because the environment shows one system prompt (the mixture's) for every problem.
``verify`` and ``check_step`` rebuild the sub-task's own problem from the metadata and
delegate to the sub-task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from reasoning_gym.tasks.base import Problem, Task, make_task, problem_rng

#: Sub-tasks of a mixture built without ``tasks``: the step-checked procedural tasks.
DEFAULT_TASKS: Mapping[str, float] = MappingProxyType(
    {
        "linear_equation": 1.0,
        "countdown": 1.0,
        "fractions": 1.0,
        "unit_conversion": 1.0,
        "boolean_logic": 1.0,
        "sorting": 1.0,
        "shortest_path": 1.0,
        "modular": 1.0,
        "distractor_word": 1.0,
    }
)


class MixtureTask(Task):
    """Samples each problem from one of several tasks in proportion to their weights.

    Args:
        tasks: Task name -> non-negative weight (at least one positive). Defaults to
            ``DEFAULT_TASKS``.
        seed: Seed of the problem stream, passed on to every sub-task's ``problem``.
        task_kwargs: Task name -> keyword arguments of that sub-task (difficulty knobs).

    Raises:
        ValueError: No tasks, a negative or non-finite weight, all weights zero, or
            ``task_kwargs`` for a task that is not in the mixture.
        UnknownNameError: A task name that is not registered.
    """

    name = "mixture"
    instruction = (
        "Solve the problem step by step in the format that the problem's instructions "
        "describe. Write one step per line. End with the final answer in the form "
        "\\boxed{ANSWER}."
    )

    def __init__(
        self,
        tasks: Mapping[str, float] | None = None,
        seed: int = 0,
        task_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        weights = dict(DEFAULT_TASKS if tasks is None else tasks)
        if not weights:
            raise ValueError("tasks is empty; give at least one {'task name': weight}")
        if "mixture" in weights:
            raise ValueError("a mixture cannot contain the 'mixture' task itself")
        for task_name, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise TypeError(f"weight of task {task_name!r} must be a number, got {weight!r}")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"weight of task {task_name!r} is {weight}; use a finite number >= 0"
                )
        total = sum(weights.values())
        if total <= 0:
            raise ValueError(f"all task weights are zero in {weights}; give one a positive weight")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        extra = dict(task_kwargs or {})
        unknown = sorted(set(extra) - set(weights))
        if unknown:
            raise ValueError(
                f"task_kwargs given for {unknown}, which are not in tasks {sorted(weights)}"
            )

        self.seed = seed
        self.weights = MappingProxyType({k: v / total for k, v in weights.items() if v > 0})
        self.subtasks: dict[str, Task] = {
            task_name: make_task(task_name, **dict(extra.get(task_name, {})))
            for task_name in self.weights
        }
        self._names = list(self.weights)
        self._cumulative = []
        running = 0.0
        for task_name in self._names:
            running += self.weights[task_name]
            self._cumulative.append(running)

    def difficulty(self) -> dict[str, Any]:
        """Return each sub-task's difficulty knobs, keyed by task name."""
        return {task_name: task.difficulty() for task_name, task in self.subtasks.items()}

    def choose(self, index: int, seed: int | None = None) -> str:
        """Return the name of the sub-task that supplies problem ``index``."""
        rng = problem_rng(self.name, self.seed if seed is None else seed, index)
        draw = rng.random()
        for task_name, bound in zip(self._names, self._cumulative, strict=False):
            if draw < bound:
                return task_name
        return self._names[-1]  # draw within rounding error of 1.0

    def problem(self, index: int, seed: int | None = None) -> Problem:
        """Return problem ``index``: the chosen sub-task's problem with mixture provenance."""
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ValueError(f"index={index!r} must be a non-negative integer")
        seed = self.seed if seed is None else seed
        task_name = self.choose(index, seed)
        subtask = self.subtasks[task_name]
        sub_index = index
        if subtask.num_problems is not None:
            # A finite data set: draw an index from the same per-problem RNG stream.
            sub_index = problem_rng(f"{self.name}:{task_name}", seed, index).randrange(
                subtask.num_problems
            )
        inner = subtask.problem(sub_index, seed=seed)
        metadata = {
            "task": self.name,
            "subtask": task_name,
            "source": inner.metadata.get("source", task_name),
            "seed": seed,
            "index": index,
            "difficulty": subtask.difficulty(),
            "subtask_problem": inner.to_dict(),
        }
        return Problem(
            id=f"{self.name}/seed={seed}/index={index}:{inner.id}",
            question=f"{subtask.instruction}\n\n{inner.question}",
            answer=inner.answer,
            gold_steps=inner.gold_steps,
            metadata=metadata,
        )

    def _delegate(self, problem: Problem) -> tuple[Task, Problem]:
        try:
            task_name = problem.metadata["subtask"]
            record = problem.metadata["subtask_problem"]
        except KeyError as error:
            raise ValueError(
                f"problem {problem.id!r} was not made by a MixtureTask (metadata lacks {error})"
            ) from None
        if task_name not in self.subtasks:
            raise ValueError(
                f"problem {problem.id!r} comes from sub-task {task_name!r}, which this mixture "
                f"does not contain ({sorted(self.subtasks)})"
            )
        gold = record.get("gold_steps")
        inner = Problem(
            id=record["id"],
            question=record["question"],
            answer=record["answer"],
            gold_steps=tuple(gold) if gold is not None else None,
            metadata=record.get("metadata", {}),
        )
        return self.subtasks[task_name], inner

    def verify(self, problem: Problem, answer_text: str) -> float:
        """Score a final answer with the sub-task's verifier."""
        task, inner = self._delegate(problem)
        return task.verify(inner, answer_text)

    def check_step(
        self, problem: Problem, previous_steps: Sequence[str], step: str
    ) -> float | None:
        """Score a step with the sub-task's step checker (None if it has none)."""
        task, inner = self._delegate(problem)
        return task.check_step(inner, previous_steps, step)
