"""The oracle PRM: the task's exact step checker, which may read the gold answer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.tasks.base import Task


class OraclePRM(ProcessRewardModel):
    """Scores each step with ``task.check_step``.

    Only tasks with an exact step checker (for example the procedural arithmetic task)
    support it. ``uses_gold_answer`` is True because a checker may compare against the gold
    solution, so search agents treat this PRM as a training-time or analysis tool.

    Args:
        task: A Task or a registered task name.
        unjudged_score: Score of a step for which ``check_step`` returns None.
        cache_size: Entries of the score cache.
    """

    name = "oracle"
    uses_gold_answer = True

    def __init__(self, task: Task | str, unjudged_score: float = 0.5, cache_size: int = 65536):
        super().__init__(cache_size=cache_size)
        from reasoning_gym.tasks.base import make_task

        self.task = make_task(task)
        if not self.task.has_step_checker:
            raise ValueError(
                f"task {self.task.name!r} has no step checker, so the oracle PRM cannot score "
                "its steps; use prm='mc' (Monte-Carlo rollouts), a learned PRM, or prm=None"
            )
        if not 0.0 <= unjudged_score <= 1.0:
            raise ValueError(f"unjudged_score={unjudged_score} is outside [0, 1]")
        self.unjudged_score = float(unjudged_score)

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        scores = np.empty(len(queries), dtype=np.float64)
        for i, query in enumerate(queries):
            value = self.task.check_step(query.problem, query.previous_steps, query.step)
            scores[i] = self.unjudged_score if value is None else float(value)
        return scores
