"""Curriculum: difficulty moves up above the window, down below it, and stays in range."""

from __future__ import annotations

import pytest

from reasoning_gym.tasks.countdown import CountdownTask
from reasoning_gym.tasks.curriculum import Curriculum
from reasoning_gym.tasks.sorting import SortingTask


def test_update_moves_both_ways():
    curriculum = Curriculum(
        SortingTask, ranges={"length": (3, 8), "max_value": (9, 99)}, step_sizes={"max_value": 30}
    )
    assert curriculum.difficulty == {"length": 3, "max_value": 9}
    assert curriculum.update(0.9) == {"length": 4, "max_value": 39}
    assert curriculum.update(0.95) == {"length": 5, "max_value": 69}
    assert curriculum.update(0.6) == {"length": 5, "max_value": 69}
    assert curriculum.update(0.1) == {"length": 4, "max_value": 39}
    assert [accuracy for accuracy, _ in curriculum.history] == [0.9, 0.95, 0.6, 0.1]


def test_update_clamps_to_ranges():
    curriculum = Curriculum(SortingTask, ranges={"length": (3, 5), "max_value": (9, 20)})
    for _ in range(10):
        difficulty = curriculum.update(1.0)
    assert difficulty == {"length": 5, "max_value": 19}
    curriculum = Curriculum(
        SortingTask, ranges={"length": (3, 5), "max_value": (9, 20)}, step_sizes={"max_value": 7}
    )
    for _ in range(5):
        difficulty = curriculum.update(1.0)
    assert difficulty == {"length": 5, "max_value": 20}
    for _ in range(10):
        difficulty = curriculum.update(0.0)
    assert difficulty == {"length": 3, "max_value": 9}


def test_window_edges_keep_difficulty():
    curriculum = Curriculum(CountdownTask, target=(0.4, 0.8), initial={"num_count": 4})
    start = curriculum.difficulty
    assert curriculum.update(0.4) == start
    assert curriculum.update(0.8) == start
    assert curriculum.update(0.81)["num_count"] == 5
    assert curriculum.update(0.39)["num_count"] == 4


def test_make_task_uses_difficulty():
    curriculum = Curriculum("sorting", task_kwargs={"seed": 4})
    curriculum.update(1.0)
    task = curriculum.make_task()
    assert isinstance(task, SortingTask)
    assert task.difficulty() == curriculum.difficulty
    assert task.seed == 4
    problem = task.problem(0)
    assert len(problem.metadata["numbers"]) == curriculum.difficulty["length"]


def test_default_ranges_are_documented_ranges():
    curriculum = Curriculum("countdown")
    assert curriculum.ranges == dict(CountdownTask.difficulty_ranges)
    assert curriculum.difficulty == {"num_count": 3, "max_number": 10}


def test_callable_factory_with_float_knob():
    built = []

    def factory(temperature: float) -> CountdownTask:
        built.append(temperature)
        return CountdownTask()

    curriculum = Curriculum(
        factory, ranges={"temperature": (0.0, 1.0)}, step_sizes={"temperature": 0.25}
    )
    assert curriculum.update(0.9) == {"temperature": 0.25}
    curriculum.make_task()
    assert built == [0.25]


def test_invalid_arguments_rejected():
    with pytest.raises(ValueError, match="leaves the documented range"):
        Curriculum(SortingTask, ranges={"length": (2, 5)})
    with pytest.raises(ValueError, match="unknown difficulty knob"):
        Curriculum(SortingTask, ranges={"size": (2, 5)})
    with pytest.raises(ValueError, match="inverted"):
        Curriculum(SortingTask, ranges={"length": (6, 4)})
    with pytest.raises(ValueError, match="target"):
        Curriculum(SortingTask, target=(0.8, 0.4))
    with pytest.raises(ValueError, match="step size of length must be positive"):
        Curriculum(SortingTask, step_sizes={"length": 0})
    with pytest.raises(ValueError, match="initial length=20 is outside"):
        Curriculum(SortingTask, initial={"length": 20})
    with pytest.raises(ValueError, match="no difficulty knobs"):
        Curriculum(lambda: CountdownTask())
    with pytest.raises(KeyError, match="sortng"):
        Curriculum("sortng")
    curriculum = Curriculum(SortingTask)
    with pytest.raises(ValueError, match="outside"):
        curriculum.update(1.5)
    with pytest.raises(ValueError, match="outside"):
        curriculum.update(float("nan"))
    with pytest.raises(TypeError, match="accuracy"):
        curriculum.update("0.5")
