"""Difficulty curricula: move a task's difficulty knobs to keep accuracy inside a window.

``Curriculum.update(accuracy)`` raises every knob by its step size when the measured
accuracy is above the target window, lowers every knob when it is below, and leaves the
difficulty alone inside the window. Knobs never leave their ranges.

Example::

    curriculum = Curriculum("countdown", target=(0.4, 0.8))
    task = curriculum.make_task()
    ...  # evaluate a policy on task problems
    curriculum.update(accuracy=0.9)  # harder next round
    task = curriculum.make_task()
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from reasoning_gym.tasks.base import Task, make_task

logger = logging.getLogger(__name__)

TaskFactory = Callable[..., Task]


class Curriculum:
    """Adapts the difficulty knobs of one task to a target accuracy window.

    Args:
        task_factory: A registered task name, a Task subclass, or a callable
            ``factory(**knobs) -> Task``.
        ranges: Knob -> ``(min, max)`` the curriculum may use. Defaults to the task's
            ``difficulty_ranges``; each range must lie inside the documented one when the
            task documents it.
        target: Accuracy window ``(low, high)`` with ``0 <= low < high <= 1``.
        step_sizes: Knob -> how much one update moves it (default 1 for every knob).
        initial: Knob -> starting value (default: the minimum of each range).
        task_kwargs: Extra keyword arguments of every ``make_task`` call, such as ``seed``.

    Raises:
        ValueError: Empty or inverted ranges, a range outside the documented one, a bad
            window, a non-positive step size or an initial value outside its range.
    """

    def __init__(
        self,
        task_factory: str | type[Task] | TaskFactory,
        ranges: Mapping[str, tuple[float, float]] | None = None,
        target: tuple[float, float] = (0.4, 0.8),
        step_sizes: Mapping[str, float] | None = None,
        initial: Mapping[str, float] | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
    ):
        self._factory = _resolve_factory(task_factory)
        self.task_kwargs = dict(task_kwargs or {})
        documented = _documented_ranges(task_factory, self._factory, self.task_kwargs)
        if ranges is None:
            ranges = documented
        self.ranges = _validate_ranges(ranges, documented)
        self.target = _validate_target(target)
        self.step_sizes = _validate_steps(step_sizes, self.ranges)
        self._difficulty = _validate_initial(initial, self.ranges)
        self.history: list[tuple[float, dict[str, float]]] = []

    @property
    def difficulty(self) -> dict[str, float]:
        """The current knob values (a copy)."""
        return dict(self._difficulty)

    def update(self, accuracy: float) -> dict[str, float]:
        """Move the knobs for a measured ``accuracy`` in [0, 1] and return the new difficulty.

        Above the window every knob rises by its step, below it every knob falls by its
        step, and each knob is clamped to its range.
        """
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
            raise TypeError(f"accuracy must be a number in [0, 1], got {accuracy!r}")
        if math.isnan(accuracy) or not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy={accuracy!r} is outside [0, 1]")
        low, high = self.target
        direction = 0
        if accuracy > high:
            direction = 1
        elif accuracy < low:
            direction = -1
        if direction:
            for knob, (knob_low, knob_high) in self.ranges.items():
                moved = self._difficulty[knob] + direction * self.step_sizes[knob]
                self._difficulty[knob] = _keep_type(
                    min(max(moved, knob_low), knob_high), knob_low, self.step_sizes[knob]
                )
        self.history.append((float(accuracy), self.difficulty))
        logger.debug("curriculum accuracy=%.3f -> difficulty %s", accuracy, self._difficulty)
        return self.difficulty

    def make_task(self) -> Task:
        """Build the task at the current difficulty."""
        return self._factory(**self.task_kwargs, **self._difficulty)

    def __repr__(self) -> str:
        return f"Curriculum(difficulty={self._difficulty}, target={self.target})"


def _resolve_factory(task_factory: Any) -> TaskFactory:
    if isinstance(task_factory, str):
        name = task_factory
        make_task(name)  # raises UnknownNameError early for a misspelt name
        return lambda **kwargs: make_task(name, **kwargs)
    if callable(task_factory):
        return task_factory
    raise TypeError(
        f"task_factory must be a task name, a Task subclass or a callable, got {task_factory!r}"
    )


def _documented_ranges(
    task_factory: Any, factory: TaskFactory, task_kwargs: Mapping[str, Any]
) -> dict[str, tuple[float, float]]:
    ranges = getattr(task_factory, "difficulty_ranges", None)
    if ranges is None and isinstance(task_factory, str):
        ranges = factory(**task_kwargs).difficulty_ranges
    return dict(ranges or {})


def _validate_ranges(
    ranges: Mapping[str, tuple[float, float]], documented: Mapping[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    if not ranges:
        raise ValueError(
            "the curriculum has no difficulty knobs: pass ranges={'knob': (min, max)} or use a "
            "task with difficulty_ranges"
        )
    checked = {}
    for knob, bounds in ranges.items():
        low, high = bounds
        if low > high:
            raise ValueError(f"range of {knob} is inverted: ({low}, {high}); use (min, max)")
        if documented:
            if knob not in documented:
                raise ValueError(
                    f"unknown difficulty knob {knob!r}; the task's knobs are {sorted(documented)}"
                )
            doc_low, doc_high = documented[knob]
            if low < doc_low or high > doc_high:
                raise ValueError(
                    f"range of {knob} ({low}, {high}) leaves the documented range "
                    f"[{doc_low}, {doc_high}]"
                )
        checked[knob] = (low, high)
    return checked


def _validate_target(target: tuple[float, float]) -> tuple[float, float]:
    low, high = target
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"target={target!r} must satisfy 0 <= low < high <= 1")
    return float(low), float(high)


def _validate_steps(
    step_sizes: Mapping[str, float] | None, ranges: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    steps = {knob: 1 for knob in ranges}
    for knob, size in (step_sizes or {}).items():
        if knob not in ranges:
            raise ValueError(f"step size given for unknown knob {knob!r}; knobs: {sorted(ranges)}")
        if not size > 0:
            raise ValueError(f"step size of {knob} must be positive, got {size!r}")
        steps[knob] = size
    return steps


def _validate_initial(
    initial: Mapping[str, float] | None, ranges: Mapping[str, tuple[float, float]]
) -> dict[str, float]:
    values = {knob: low for knob, (low, _) in ranges.items()}
    for knob, value in (initial or {}).items():
        if knob not in ranges:
            raise ValueError(
                f"initial value given for unknown knob {knob!r}; knobs: {sorted(ranges)}"
            )
        low, high = ranges[knob]
        if not low <= value <= high:
            raise ValueError(f"initial {knob}={value} is outside its range [{low}, {high}]")
        values[knob] = value
    return values


def _keep_type(value: float, low: float, step: float) -> float:
    """Keep integer knobs integers when their range and step are integers."""
    if isinstance(low, int) and isinstance(step, int):
        return int(value)
    return value
