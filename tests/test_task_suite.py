"""Procedural step-checked tasks: gold solutions, corrupted steps, lenient formats, seeds."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from reasoning_gym.tasks import make_task
from reasoning_gym.tasks.base import Problem
from reasoning_gym.tasks.boolean_logic import BooleanLogicTask
from reasoning_gym.tasks.countdown import CountdownTask
from reasoning_gym.tasks.distractor_word import DistractorWordTask
from reasoning_gym.tasks.fractions import FractionsTask
from reasoning_gym.tasks.linear_equation import LinearEquationTask
from reasoning_gym.tasks.mixture import MixtureTask
from reasoning_gym.tasks.modular import ModularTask
from reasoning_gym.tasks.shortest_path import ShortestPathTask
from reasoning_gym.tasks.sorting import SortingTask
from reasoning_gym.tasks.unit_conversion import UnitConversionTask

TASKS = {
    "linear_equation": LinearEquationTask,
    "countdown": CountdownTask,
    "fractions": FractionsTask,
    "unit_conversion": UnitConversionTask,
    "boolean_logic": BooleanLogicTask,
    "sorting": SortingTask,
    "shortest_path": ShortestPathTask,
    "modular": ModularTask,
    "distractor_word": DistractorWordTask,
}
PROBLEMS_PER_DIFFICULTY = 1000


def hardest(cls) -> dict[str, int]:
    return {knob: high for knob, (_, high) in cls.difficulty_ranges.items()}


def easiest(cls) -> dict[str, int]:
    return {knob: low for knob, (low, _) in cls.difficulty_ranges.items()}


def corrupt(step: str) -> str:
    """Change the last number of a step by one, or flip its last truth value."""
    truths = list(re.finditer(r"True|False", step))
    if truths:
        last = truths[-1]
        flipped = "False" if last.group() == "True" else "True"
        return step[: last.start()] + flipped + step[last.end() :]
    numbers = list(re.finditer(r"\d+", step))
    last = numbers[-1]
    return step[: last.start()] + str(int(last.group()) + 1) + step[last.end() :]


@pytest.mark.parametrize("difficulty", ["default", "hardest"])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_gold_steps_pass_checker(name, difficulty):
    cls = TASKS[name]
    task = cls(**(hardest(cls) if difficulty == "hardest" else {}))
    for index in range(PROBLEMS_PER_DIFFICULTY):
        problem = task.problem(index)
        steps = problem.gold_steps
        assert steps[-1].startswith("The answer is \\boxed{"), problem.id
        for position, step in enumerate(steps):
            score = task.check_step(problem, steps[:position], step)
            assert score == 1.0, (problem.id, problem.question, steps[:position], step)
        assert task.verify(problem, steps[-1]) == 1.0, (problem.id, steps[-1])


@pytest.mark.parametrize("name", sorted(TASKS))
def test_corrupted_step_rejected(name):
    cls = TASKS[name]
    for difficulty in ({}, hardest(cls)):
        task = cls(**difficulty)
        for index in range(100):
            problem = task.problem(index)
            steps = problem.gold_steps
            for position, step in enumerate(steps):
                bad = corrupt(step)
                assert bad != step
                score = task.check_step(problem, steps[:position], bad)
                assert score == 0.0, (problem.id, steps[:position], bad)
            assert task.verify(problem, corrupt(steps[-1])) == 0.0


def make_problem(answer: str, **metadata) -> Problem:
    return Problem(id="handmade", question="", answer=answer, metadata=metadata)


LINEAR = make_problem("5", equation="3x + 6 = 2x + 11")
COUNTDOWN = make_problem("(8 - 4) * 6", numbers=[8, 4, 6, 3], target=24)
FRACTIONS = make_problem("17/12", terms=["3/4", "5/6", "1/6"], operators=["+", "-"])
UNITS = make_problem(
    "300000", dimension="length (metric)", quantity="3", from_unit="km", to_unit="cm"
)
BOOLEAN = make_problem(
    "True", formula="(P and not Q) or R", values={"P": True, "Q": False, "R": False}
)
SORTING = make_problem("[3, 5, 7]", numbers=[7, 3, 5])
GRAPH = make_problem("6", weights={"AB": 1, "AC": 1, "BD": 5, "CD": 9}, start="A", end="D")
MODULAR = make_problem("4", base=7, exponent=2, modulus=5)
WORD = make_problem(
    "38",
    relevant_numbers=[4, 5, 9, 14, 17],
    start=14,
    events=[["buy", 5, 9], ["-", 4], ["-", 17]],
)

FIRST_B = "dist(B) = dist(A) + w(A,B) = 0 + 1 = 1"

# (task name, problem, previous steps, step, expected score)
VARIANTS = [
    ("linear_equation", LINEAR, [], "3x+6=2x+11", 1.0),
    ("linear_equation", LINEAR, [], "3*x + 6 = 2*x + 11", 1.0),
    ("linear_equation", LINEAR, [], "3 × x + 6 = 2x + 11", 1.0),
    ("linear_equation", LINEAR, [], "Subtract 2x: x + 6 = 11", 1.0),
    ("linear_equation", LINEAR, [], "X = 5.", 1.0),
    ("linear_equation", LINEAR, [], "\\boxed{x = 5}", 1.0),
    ("linear_equation", LINEAR, [], "x = 6", 0.0),
    ("linear_equation", LINEAR, [], "x*x = 25", 0.0),
    ("linear_equation", LINEAR, [], "x**2 = 10", 0.0),
    ("linear_equation", LINEAR, [], "**x = 5**", 1.0),
    ("linear_equation", LINEAR, [], "0 = 0", 0.0),
    ("countdown", COUNTDOWN, [], "8 x 3 = 24", 1.0),
    ("countdown", COUNTDOWN, [], "8×3=24", 1.0),
    ("countdown", COUNTDOWN, [], "Multiply: 8 * 3 = 24.", 1.0),
    ("countdown", COUNTDOWN, [], "**8 * 3 = 24**", 1.0),
    ("countdown", COUNTDOWN, [], "8 * 8 = 64", 0.0),
    ("countdown", COUNTDOWN, [], "8 * 5 = 40", 0.0),
    ("countdown", COUNTDOWN, ["8 - 4 = 4"], "4 * 6 = 24", 1.0),
    ("countdown", COUNTDOWN, ["8 - 4 = 4"], "8 * 6 = 48", 0.0),
    ("countdown", COUNTDOWN, ["8 - 4 = 4"], "4 * 4 = 16", 0.0),
    ("countdown", COUNTDOWN, [], "\\boxed{(8-4) x 6}", 1.0),
    ("countdown", COUNTDOWN, [], "\\boxed{8 * 3}", 1.0),
    ("countdown", COUNTDOWN, [], "\\boxed{24}", 0.0),
    ("countdown", COUNTDOWN, [], "\\boxed{6 * 4 * 1}", 0.0),
    ("fractions", FRACTIONS, [], "3/4 + 5/6 = 9/12 + 10/12 = 19/12", 1.0),
    ("fractions", FRACTIONS, [], "3/4+5/6=19/12", 1.0),
    ("fractions", FRACTIONS, [], "\\frac{3}{4} + \\frac{5}{6} = \\frac{19}{12}", 1.0),
    ("fractions", FRACTIONS, [], "3/4 + 5/6 = 8/10", 0.0),
    ("fractions", FRACTIONS, [], "5/6 - 1/6 = 4/6", 0.0),
    ("fractions", FRACTIONS, ["3/4 + 5/6 = 19/12"], "19/12 - 1/6 = 17/12", 1.0),
    ("fractions", FRACTIONS, ["3/4 + 5/6 = 19/12"], "3/4 + 5/6 = 19/12", 0.0),
    ("fractions", FRACTIONS, [], "\\boxed{\\frac{17}{12}}", 1.0),
    ("fractions", FRACTIONS, [], "\\boxed{1 5/12}", 1.0),
    ("fractions", FRACTIONS, [], "\\boxed{17/13}", 0.0),
    ("unit_conversion", UNITS, [], "3 km = 3 * 1000 m = 3000 m", 1.0),
    ("unit_conversion", UNITS, [], "3 kilometres = 3,000 metres", 1.0),
    ("unit_conversion", UNITS, [], "So, 3 KM = 3000 M.", 1.0),
    ("unit_conversion", UNITS, [], "3000 m = 300000 cm", 1.0),
    ("unit_conversion", UNITS, [], "3 km = 300 m", 0.0),
    ("unit_conversion", UNITS, [], "1 m = 100 cm", 0.0),
    ("unit_conversion", UNITS, [], "3 km = 3000 g", 0.0),
    ("unit_conversion", UNITS, [], "\\boxed{300,000 cm}", 1.0),
    ("unit_conversion", UNITS, [], "\\boxed{300000 m}", 0.0),
    ("boolean_logic", BOOLEAN, [], "P and not Q = True and not False = True", 1.0),
    ("boolean_logic", BOOLEAN, [], "P & !Q = T & T = T", 1.0),
    ("boolean_logic", BOOLEAN, [], "p and not q = true and true = true", 1.0),
    ("boolean_logic", BOOLEAN, [], "P ∧ ¬Q = True", 1.0),
    ("boolean_logic", BOOLEAN, [], "True and not False = True", 1.0),
    ("boolean_logic", BOOLEAN, [], "P and not Q = False", 0.0),
    ("boolean_logic", BOOLEAN, [], "P or Q = True", 0.0),
    ("boolean_logic", BOOLEAN, [], "\\boxed{true}", 1.0),
    ("boolean_logic", BOOLEAN, [], "\\boxed{\\text{True}}", 1.0),
    ("boolean_logic", BOOLEAN, [], "\\boxed{False}", 0.0),
    ("sorting", SORTING, [], "swap 7 and 3 -> [3, 7, 5]", 1.0),
    ("sorting", SORTING, [], "Swap 7 and 3: [3, 7, 5]", 1.0),
    ("sorting", SORTING, [], "swap 7, 3 → 3 7 5", 1.0),
    ("sorting", SORTING, [], "SWAP 3 AND 7 -> [3,7,5].", 1.0),
    ("sorting", SORTING, [], "swap 7 and 3 -> [3, 5, 7]", 0.0),
    ("sorting", SORTING, [], "swap 3 and 5 -> [7, 5, 3]", 0.0),
    ("sorting", SORTING, ["swap 7 and 3 -> [3, 7, 5]"], "swap 7 and 5 -> [3, 5, 7]", 1.0),
    ("sorting", SORTING, ["swap 7 and 3 -> [3, 7, 5]"], "swap 7 and 3 -> [7, 3, 5]", 0.0),
    ("sorting", SORTING, [], "\\boxed{3, 5, 7}", 1.0),
    ("sorting", SORTING, [], "\\boxed{[3, 7, 5]}", 0.0),
    ("shortest_path", GRAPH, [], FIRST_B, 1.0),
    ("shortest_path", GRAPH, [], "d(B) = d(A) + w(A,B) = 1", 1.0),
    ("shortest_path", GRAPH, [], "dist[B] = dist[A] + w(A-B) = 1.", 1.0),
    ("shortest_path", GRAPH, [], "dist(b) = dist(a) + 1 = 1", 1.0),
    ("shortest_path", GRAPH, [], "dist(B) = dist(A) + w(A,B) = 0 + 2 = 2", 0.0),
    ("shortest_path", GRAPH, [], "dist(D) = dist(B) + w(B,D) = 1 + 5 = 6", 0.0),
    ("shortest_path", GRAPH, [FIRST_B], "dist(D) = dist(B) + w(B,D) = 1 + 5 = 6", 1.0),
    ("shortest_path", GRAPH, [], "dist(D) = dist(A) + w(A,D) = 0 + 3 = 3", 0.0),
    (
        "shortest_path",
        GRAPH,
        [FIRST_B, "dist(D) = dist(B) + w(B,D) = 6", "dist(C) = dist(A) + w(A,C) = 1"],
        "dist(D) = dist(C) + w(C,D) = 1 + 9 = 10",
        0.0,
    ),
    ("shortest_path", GRAPH, [], "\\boxed{6}", 1.0),
    ("shortest_path", GRAPH, [], "dist(A) = 0", 1.0),
    ("shortest_path", GRAPH, [], "dist(B) = 1", 0.0),
    ("shortest_path", GRAPH, [FIRST_B], "So dist(B) = 1", 1.0),
    ("shortest_path", GRAPH, [], "Then dist(B) = dist(A) + w(A,B) = 1", 1.0),
    ("shortest_path", GRAPH, [FIRST_B], "dist(B) = 1", 1.0),
    ("modular", MODULAR, [], "7 ≡ 2 (mod 5)", 1.0),
    ("modular", MODULAR, [], "7^2 ≡ 2^2 = 4 (mod 5)", 1.0),
    ("modular", MODULAR, [], "7^2 mod 5 = 49 mod 5 = 4", 1.0),
    ("modular", MODULAR, [], "7**2 = 49 ≡ 4 (mod 5)", 1.0),
    ("modular", MODULAR, [], "7^2 = 49 ≡ 4 \\pmod{5}", 1.0),
    ("modular", MODULAR, [], "7^2 \\equiv 4 (mod 5)", 1.0),
    ("modular", MODULAR, [], "7^2 = 4 (mod 5)", 1.0),
    ("modular", MODULAR, [], "7^2 = 4", 0.0),
    ("modular", MODULAR, [], "7^2 ≡ 3 (mod 5)", 0.0),
    ("modular", MODULAR, [], "7^2 ≡ 4 (mod 6)", 0.0),
    ("modular", MODULAR, [], "2^2 ≡ 4 (mod 5)", 0.0),
    ("modular", MODULAR, [], "\\boxed{9}", 0.0),
    ("distractor_word", WORD, [], "14 + 5 * 9 = 59", 1.0),
    ("distractor_word", WORD, [], "She buys 5 * 9 = 45 pencils, so 14 + 45 = 59.", 1.0),
    ("distractor_word", WORD, [], "14 + 5 x 9 = 59", 1.0),
    ("distractor_word", WORD, [], "14 + 36 = 50", 0.0),
    ("distractor_word", WORD, [], "14 + 5 * 9 = 60", 0.0),
    ("distractor_word", WORD, [], "Alice starts with 14 pencils.", 0.0),
    ("distractor_word", WORD, ["14 + 5 * 9 = 59"], "59 - 4 = 55", 1.0),
    ("distractor_word", WORD, [], "59 - 4 = 55", 0.0),
    ("distractor_word", WORD, [], "14 + 14 = 28", 0.0),
    ("distractor_word", WORD, [], "14 - 4 = 10", 1.0),
    ("distractor_word", WORD, [], "14 + 5 * 9 - 4 = 55", 1.0),
    ("distractor_word", WORD, ["14 - 4 = 10"], "10 + 5 * 9 = 55", 1.0),
    ("distractor_word", WORD, [], "\\boxed{38 pencils}", 1.0),
]


@pytest.mark.parametrize(("name", "problem", "previous", "step", "expected"), VARIANTS)
def test_step_format_variants(name, problem, previous, step, expected):
    task = TASKS[name]()
    assert task.check_step(problem, previous, step) == expected


def test_unit_facts_are_true():
    task = UnitConversionTask()
    cases = {
        ("time", "day"): "1 day = 24 hours",
        ("time", "week"): "1 week = 7 days = 168 hours",
        ("length (imperial)", "mile"): "1 mile = 1760 yards = 5280 feet",
        ("mass", "kg"): "1 kg = 1000 g",
        ("data", "GB"): "1 GB = 1000 MB",
    }
    for (dimension, unit), step in cases.items():
        problem = make_problem("0", dimension=dimension, quantity="1", from_unit=unit, to_unit=unit)
        assert task.check_step(problem, [], step) == 1.0, step
    wrong = make_problem("0", dimension="time", quantity="1", from_unit="day", to_unit="hour")
    assert task.check_step(wrong, [], "1 day = 60 hours") == 0.0


@pytest.mark.parametrize("name", sorted(TASKS))
def test_seeds_and_indices_differ(name):
    task = TASKS[name]()
    by_index = {task.problem(index).question for index in range(100)}
    by_seed = {task.problem(0, seed=seed).question for seed in range(100)}
    assert len(by_index) >= 90
    assert len(by_seed) >= 90
    assert task.problem(3, seed=1).question != task.problem(4, seed=0).question
    assert task.problem(7).question == TASKS[name]().problem(7).question
    assert TASKS[name](seed=5).problem(2).question == task.problem(2, seed=5).question


@pytest.mark.parametrize("name", sorted(TASKS))
def test_provenance_metadata(name):
    task = TASKS[name](seed=3)
    problem = task.problem(11)
    assert problem.metadata["task"] == name
    assert problem.metadata["source"] == "procedural"
    assert problem.metadata["seed"] == 3
    assert problem.metadata["index"] == 11
    assert problem.metadata["difficulty"] == task.difficulty()
    assert problem.id == task.problem(11).id
    assert problem.id.startswith(f"{name}/")
    assert problem.id.endswith("/seed=3/index=11")
    assert problem.id != task.problem(12).id
    assert problem.to_dict()["metadata"]["index"] == 11


@pytest.mark.parametrize("name", sorted(TASKS))
def test_difficulty_ranges_validated(name):
    cls = TASKS[name]
    assert cls(**easiest(cls)).difficulty() == easiest(cls)
    assert cls(**hardest(cls)).difficulty() == hardest(cls)
    for knob, (low, high) in cls.difficulty_ranges.items():
        for bad in (low - 1, high + 1):
            with pytest.raises(ValueError, match=rf"{knob}={bad} is outside its range"):
                cls(**{knob: bad})
        with pytest.raises(TypeError, match=knob):
            cls(**{knob: "3"})
    with pytest.raises(ValueError, match="unknown difficulty knob"):
        cls(no_such_knob=1)
    with pytest.raises(ValueError, match="non-negative"):
        cls().problem(-1)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_easiest_difficulty_generates(name):
    cls = TASKS[name]
    task = cls(**easiest(cls))
    for index in range(50):
        problem = task.problem(index)
        for position, step in enumerate(problem.gold_steps):
            assert task.check_step(problem, problem.gold_steps[:position], step) == 1.0


def test_registered_by_name():
    for name, cls in TASKS.items():
        assert isinstance(make_task(name), cls)
    assert isinstance(make_task("mixture"), MixtureTask)


def test_mixture_samples_by_weight():
    mixture = MixtureTask(tasks={"sorting": 1.0, "countdown": 3.0, "modular": 0.0}, seed=2)
    counts = Counter(mixture.problem(index).metadata["subtask"] for index in range(400))
    assert set(counts) == {"sorting", "countdown"}
    assert 0.65 <= counts["countdown"] / 400 <= 0.85
    assert (
        mixture.problem(5).question
        == MixtureTask(tasks={"sorting": 1.0, "countdown": 3.0}, seed=2).problem(5).question
    )
    other_seed = MixtureTask(tasks={"sorting": 1.0, "countdown": 3.0}, seed=3)
    assert (
        sum(mixture.problem(i).question != other_seed.problem(i).question for i in range(50)) >= 45
    )


def test_mixture_delegates_checks():
    mixture = MixtureTask(task_kwargs={"sorting": {"length": 6}})
    seen = set()
    for index in range(60):
        problem = mixture.problem(index)
        subtask = problem.metadata["subtask"]
        seen.add(subtask)
        assert problem.metadata["task"] == "mixture"
        assert problem.metadata["index"] == index
        assert problem.id.startswith(f"mixture/seed=0/index={index}:{subtask}/")
        assert problem.question.startswith(mixture.subtasks[subtask].instruction)
        steps = problem.gold_steps
        for position, step in enumerate(steps):
            assert mixture.check_step(problem, steps[:position], step) == 1.0
            assert mixture.check_step(problem, steps[:position], corrupt(step)) == 0.0
        assert mixture.verify(problem, steps[-1]) == 1.0
    assert len(seen) >= 7
    assert mixture.difficulty()["sorting"]["length"] == 6


def test_mixture_with_arithmetic_task():
    mixture = MixtureTask(tasks={"arithmetic": 1.0, "countdown": 2.0}, seed=1)
    seen = set()
    for index in range(30):
        problem = mixture.problem(index)
        seen.add(problem.metadata["subtask"])
        steps = problem.gold_steps
        for position, step in enumerate(steps):
            assert mixture.check_step(problem, steps[:position], step) == 1.0
        assert mixture.verify(problem, steps[-1]) == 1.0
    assert seen == {"arithmetic", "countdown"}


def test_mixture_rejects_bad_weights():
    with pytest.raises(ValueError, match="empty"):
        MixtureTask(tasks={})
    with pytest.raises(ValueError, match="weight of task 'sorting'"):
        MixtureTask(tasks={"sorting": -1.0})
    with pytest.raises(ValueError, match="all task weights are zero"):
        MixtureTask(tasks={"sorting": 0.0})
    with pytest.raises(ValueError, match="not in tasks"):
        MixtureTask(tasks={"sorting": 1.0}, task_kwargs={"countdown": {}})
    with pytest.raises(KeyError, match="sortng"):
        MixtureTask(tasks={"sortng": 1.0})
    with pytest.raises(ValueError, match="not made by a MixtureTask"):
        MixtureTask().check_step(SORTING, [], "swap 7 and 3 -> [3, 7, 5]")


def test_oracle_env_replays_gold():
    from reasoning_gym.env import ReasoningEnv

    for name in [*sorted(TASKS), "mixture"]:
        env = ReasoningEnv(task=name, prm="oracle", max_steps=40)
        for index in range(3):
            env.reset(options={"index": index})
            info = {}
            for step in env.problem.gold_steps:
                _, _, terminated, truncated, info = env.step(step)
                assert info["prm_score"] == 1.0, (name, step)
            assert terminated and not truncated
            assert info["correct"], (name, env.problem.id)


def test_env_ids_registered():
    import gymnasium as gym

    import reasoning_gym  # noqa: F401  (registers the environment ids)

    for suffix in ("LinearEquation", "Countdown", "ShortestPath", "DistractorWord", "Mixture"):
        assert f"Reasoning-{suffix}-v0" in gym.registry
