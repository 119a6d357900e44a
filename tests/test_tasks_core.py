"""Core tasks: procedural arithmetic, GSM8K and generic JSONL loading."""

from __future__ import annotations

import json

import pytest

from reasoning_gym.errors import DatasetFormatError
from reasoning_gym.tasks import make_task
from reasoning_gym.tasks.arithmetic import ArithmeticTask
from reasoning_gym.tasks.gsm8k import GSM8KTask, gold_steps_from_solution
from reasoning_gym.tasks.jsonl import JsonlTask

# ---------------------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------------------


def test_arithmetic_is_deterministic():
    task = ArithmeticTask(num_operations=4, max_operand=50)
    first = task.problem(7, seed=3)
    again = ArithmeticTask(num_operations=4, max_operand=50).problem(7, seed=3)
    assert first.question == again.question
    assert first.gold_steps == again.gold_steps
    assert first.answer == again.answer
    assert first.id == "arithmetic/n4-m50/seed=3/index=7"


def test_arithmetic_seeds_and_indices_differ():
    task = ArithmeticTask()
    by_index = {task.problem(i).question for i in range(20)}
    by_seed = {task.problem(0, seed=s).question for s in range(20)}
    assert len(by_index) == 20
    assert len(by_seed) == 20


def test_arithmetic_constructor_seed_is_base():
    assert ArithmeticTask(seed=5).problem(2).question == ArithmeticTask().problem(2, 5).question


def test_arithmetic_problem_fields():
    problem = ArithmeticTask(num_operations=3, max_operand=20).problem(12)
    assert problem.metadata["task"] == "arithmetic"
    assert problem.metadata["source"] == "procedural"
    assert problem.metadata["seed"] == 0
    assert problem.metadata["index"] == 12
    assert problem.metadata["difficulty"] == {"num_operations": 3, "max_operand": 20}
    assert problem.gold_steps[-1] == f"The answer is \\boxed{{{problem.answer}}}."
    assert len(problem.gold_steps) == 3 + 1


@pytest.mark.parametrize(("num_operations", "max_operand"), [(1, 5), (3, 20), (8, 10000)])
def test_arithmetic_gold_solutions_pass(num_operations, max_operand):
    task = ArithmeticTask(num_operations=num_operations, max_operand=max_operand)
    for index in range(200):
        problem = task.problem(index)
        steps = problem.gold_steps
        assert len(steps) == num_operations + 1
        values = [int(step.rsplit("=", 1)[1]) for step in steps[:-1]]
        assert min(values) >= 0
        assert values[-1] == int(problem.answer)
        for k, step in enumerate(steps):
            assert task.check_step(problem, steps[:k], step) == 1.0, (problem.id, step)
        assert task.verify(problem, steps[-1]) == 1.0


def test_arithmetic_rejects_corrupted_result():
    task = ArithmeticTask(num_operations=3, max_operand=20)
    problem = task.problem(12)
    steps = problem.gold_steps
    left, result = steps[0].rsplit("=", 1)
    corrupted = f"{left}= {int(result) + 1}"
    assert task.check_step(problem, (), corrupted) == 0.0


def test_arithmetic_rejects_unknown_number():
    task = ArithmeticTask(num_operations=3, max_operand=20)
    problem = task.problem(12)
    assert "997" not in problem.question
    assert task.check_step(problem, (), "997 + 3 = 1000") == 0.0
    assert task.check_step(problem, (), "The answer is \\boxed{997}.") == 0.0
    assert task.check_step(problem, (), "So she has 997 shells.") == 0.0


def test_arithmetic_check_step_cases():
    task = ArithmeticTask(num_operations=3, max_operand=20)
    problem = task.problem(12)
    # Lena has 6 shells. Then Lena buys 10 boxes with 8 shells in each box. ...
    assert problem.question.startswith("Lena has 6 shells.")
    assert task.check_step(problem, (), "Let me think about this.") == 0.0  # no progress
    assert task.check_step(problem, (), "Step 1: 10 * 8 = 80") == 1.0
    assert task.check_step(problem, (), "10 x 8 = 80 shells, then 6 + 80 = 86") == 1.0
    assert task.check_step(problem, (), "6 + 80 = 86") == 0.0
    assert task.check_step(problem, ("10 * 8 = 80",), "6 + 80 = 86") == 1.0
    assert task.check_step(problem, ("10 * 8 = 81",), "6 + 81 = 87") == 0.0
    assert task.check_step(problem, (), "Lena starts with 6 shells.") == 0.0
    # A known number that is not the gold answer is a wrong final step.
    assert task.check_step(problem, (), "The answer is \\boxed{6}.") == 0.0
    gold = problem.answer
    assert task.check_step(problem, (), f"The answer is \\boxed{{{gold}}}.") == 1.0
    assert task.check_step(problem, (), "\\boxed{x}") == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"num_operations": 0}, ValueError),
        ({"num_operations": 9}, ValueError),
        ({"max_operand": 4}, ValueError),
        ({"max_operand": 10001}, ValueError),
        ({"num_operations": 2.0}, TypeError),
        ({"seed": "1"}, TypeError),
    ],
)
def test_arithmetic_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        ArithmeticTask(**kwargs)


def test_arithmetic_rejects_negative_index():
    with pytest.raises(ValueError):
        ArithmeticTask().problem(-1)


def test_arithmetic_registered():
    task = make_task("arithmetic", num_operations=2)
    assert isinstance(task, ArithmeticTask)
    assert task.has_step_checker
    assert task.num_problems is None
    assert task.difficulty() == {"num_operations": 2, "max_operand": 20}


# ---------------------------------------------------------------------------------------
# GSM8K
# ---------------------------------------------------------------------------------------


def test_gsm8k_loads_real_test_split(shared_data):
    task = GSM8KTask(path=shared_data / "gsm8k_test.jsonl")
    assert task.num_problems == 1319
    first = task.problem(0)
    assert first.id == "gsm8k/gsm8k_test/index=0"
    assert first.answer == "18"
    assert first.gold_steps == (
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer’s market.",
        "The answer is \\boxed{18}.",
    )
    for index in range(task.num_problems):
        problem = task.problem(index)
        assert task.verify(problem, problem.gold_steps[-1]) == 1.0, problem.id
        assert task.verify(problem, "The answer is \\boxed{-0.5}.") == 0.0, problem.id


def test_gsm8k_gold_steps_mostly_check(shared_data):
    task = GSM8KTask(path=shared_data / "gsm8k_test.jsonl", limit=200)
    assert task.num_problems == 200
    scores = [
        task.check_step(problem, problem.gold_steps[:k], step)
        for problem in (task.problem(i) for i in range(task.num_problems))
        for k, step in enumerate(problem.gold_steps)
    ]
    # A few GSM8K solutions contain sloppy arithmetic such as "$32 - $20 = $300".
    assert sum(scores) >= 0.99 * len(scores)


def test_gsm8k_check_step_on_processbench(shared_data, tmp_path):
    """Human-labelled GSM8K solutions: steps before the first error must not be flagged."""
    path = shared_data / "processbench_gsm8k.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    record = {"question": "q", "answer": "#### 1"}
    task = GSM8KTask(path=_write_lines(tmp_path / "one.jsonl", [json.dumps(record)]))
    problem = task.problem(0)
    flagged_correct = 0
    flagged_errors = 0
    for item in json.loads(path.read_text(encoding="utf-8")):
        label = item["label"]  # index of the first wrong step, -1 when none is wrong
        for k, step in enumerate(item["steps"]):
            score = task.check_step(problem, item["steps"][:k], step)
            if label == -1 or k < label:
                flagged_correct += score == 0.0
            elif k == label:
                flagged_errors += score == 0.0
    assert flagged_correct == 0
    # Most labelled errors are wrong plans, which an arithmetic checker cannot see.
    assert flagged_errors >= 10


def test_gsm8k_default_path_from_env(shared_data, monkeypatch):
    monkeypatch.setenv("REASONING_GYM_DATA", str(shared_data))
    task = GSM8KTask(limit=3)
    assert task.num_problems == 3
    assert task.problem(2).id == "gsm8k/test/index=2"
    assert task.source == str(shared_data / "gsm8k_test.jsonl")


def test_gsm8k_check_step_catches_calculation_errors(tmp_path):
    record = {"question": "Eggs cost $2. She sells 9.", "answer": "9 * 2 = <<9*2=18>>18\n#### 18"}
    task = GSM8KTask(path=_write_lines(tmp_path / "one.jsonl", [json.dumps(record)]))
    problem = task.problem(0)
    assert task.check_step(problem, (), "She makes 9 * 2 = $18 every day.") == 1.0
    assert task.check_step(problem, (), "She makes 9 * 2 = $19 every day.") == 0.0
    assert task.check_step(problem, (), "She makes 9 * 2 = $<<9*2=19>>19.") == 0.0
    assert task.check_step(problem, (), "She sells the rest at the market.") == 1.0


def test_gold_steps_remove_annotations():
    solution = "It takes 2/2=<<2/2=1>>1 bolt\n\nSo 2+1=<<2+1=3>>3 bolts\n#### 3"
    assert gold_steps_from_solution(solution, "3") == (
        "It takes 2/2=1 bolt",
        "So 2+1=3 bolts",
        "The answer is \\boxed{3}.",
    )


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_gsm8k_malformed_line_names_file_and_line(tmp_path):
    good = json.dumps({"question": "1+1?", "answer": "1+1=<<1+1=2>>2\n#### 2"})
    path = _write_lines(tmp_path / "bad.jsonl", [good, "", "{not json"])
    with pytest.raises(DatasetFormatError, match=r"bad\.jsonl:3"):
        GSM8KTask(path=path)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "q"}, "missing field 'answer'"),
        ({"question": "q", "answer": "no final line"}, "####"),
        ({"question": "q", "answer": "x\n#### \\frac{"}, "gold answer"),
        ({"question": ["q"], "answer": "#### 2"}, "must be a string"),
    ],
)
def test_gsm8k_bad_record_raises(tmp_path, record, message):
    good = json.dumps({"question": "1+1?", "answer": "#### 2"})
    path = _write_lines(tmp_path / "records.jsonl", [good, json.dumps(record)])
    with pytest.raises(DatasetFormatError, match=r"records\.jsonl:2") as raised:
        GSM8KTask(path=path)
    assert message in str(raised.value)


def test_gsm8k_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        GSM8KTask(path=tmp_path / "x.jsonl", split="validation")
    with pytest.raises(ValueError):
        GSM8KTask(path=tmp_path / "x.jsonl", limit=0)
    with pytest.raises(FileNotFoundError):
        GSM8KTask(path=tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------
# JSONL
# ---------------------------------------------------------------------------------------


def test_jsonl_task_loads_records(tmp_path):
    path = _write_lines(
        tmp_path / "qa.jsonl",
        [
            json.dumps({"problem": "What is 1/2 + 1/4?", "solution": "\\frac{3}{4}"}),
            json.dumps({"problem": "What is 6 * 7?", "solution": 42}),
            json.dumps({"problem": "GSM8K style", "solution": "2 + 2 = 4\n#### 4"}),
        ],
    )
    task = JsonlTask(path, question_key="problem", answer_key="solution")
    assert task.num_problems == 3
    assert not task.has_step_checker
    first = task.problem(0)
    assert first.id == "jsonl/qa/index=0"
    assert first.gold_steps is None
    assert first.metadata["line"] == 1
    assert task.verify(first, "The answer is 0.75.") == 1.0
    assert task.verify(first, "\\boxed{0.7}") == 0.0
    assert task.problem(1).answer == "42"
    assert task.problem(2).answer == "4"
    with pytest.raises(ValueError):
        task.problem(3)


def test_jsonl_task_errors_name_line(tmp_path):
    path = _write_lines(
        tmp_path / "qa.jsonl", [json.dumps({"question": "q", "answer": "1"}), "[1]"]
    )
    with pytest.raises(DatasetFormatError, match=r"qa\.jsonl:2: expected a JSON object"):
        JsonlTask(path)
    empty = _write_lines(tmp_path / "empty.jsonl", [""])
    with pytest.raises(ValueError, match="no records"):
        JsonlTask(empty)


def test_gsm8k_without_data_asks_for_path(tmp_path, monkeypatch):
    import datasets

    import reasoning_gym.tasks.gsm8k as gsm8k_module

    def offline(*args, **kwargs):
        raise ConnectionError("no network in this test")

    monkeypatch.setenv("REASONING_GYM_DATA", str(tmp_path))
    monkeypatch.setattr(gsm8k_module, "_CHECKOUT_DATA_DIR", tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(FileNotFoundError, match=r"Pass path=\.\.\.") as raised:
        GSM8KTask()
    assert "ConnectionError" in str(raised.value)
