"""Batched answer verification: verify_answers and its use by the vector environment."""

from __future__ import annotations

import logging

import pytest

from reasoning_gym.verify import answers
from reasoning_gym.verify.answers import parse_gold, verify_answer, verify_answers

# (prediction text, gold): plain numbers take the in-process path, the rest math-verify.
CASES = [
    ("The answer is \\boxed{42}.", "42"),
    ("#### 1,000", "1000"),
    ("The answer is 7.", "8"),
    ("\\boxed{\\frac{3}{4}}", "0.75"),
    ("\\boxed{x^2 + 2x}", "2x + x^2"),
    ("\\boxed{\\{1, 2\\}}", "\\{2, 1\\}"),
    ("\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}"),
    ("\\boxed{x + 1}", "x + 2"),
    ("no answer here", "5"),
    ("\\boxed{}", "3"),
]


def test_batch_matches_single_calls():
    preds = [pred for pred, _ in CASES]
    golds = [gold for _, gold in CASES]
    batched = verify_answers(preds, golds)
    assert batched == [verify_answer(pred, gold) for pred, gold in CASES]
    assert batched == [True, True, False, True, True, True, True, False, False, False]


def test_batch_sends_slow_answers_together(monkeypatch):
    def one_by_one(*args, **kwargs):
        raise AssertionError("verify_answers called the one-comparison pool path")

    monkeypatch.setattr(answers, "_run_in_pool", one_by_one)
    preds = ["\\boxed{y^3 - y}", "\\boxed{(y - 1) y (y + 1)}", "\\boxed{y^3}"]
    golds = ["y(y-1)(y+1)"] * 3
    assert verify_answers(preds, golds) == [True, True, False]


def test_batch_accepts_parsed_gold():
    gold = parse_gold("\\frac{1}{2}")
    assert verify_answers(["\\boxed{0.5}", "\\boxed{2}"], [gold, gold]) == [True, False]


def test_batch_empty_input():
    assert verify_answers([], []) == []


def test_batch_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 predictions and 1 gold"):
        verify_answers(["1", "2"], ["1"])


def test_batch_type_errors_name_index():
    with pytest.raises(TypeError, match=r"pred_texts\[1\]"):
        verify_answers(["1", 2], ["1", "2"])
    with pytest.raises(TypeError, match=r"golds\[0\]"):
        verify_answers(["1"], [1])


def test_batch_timeout_counts_as_wrong(caplog):
    # Expressions used nowhere else, so the result cache has no entry for them.
    preds = ["\\boxed{z^5 + 3z - 11}", "\\boxed{z^7 - 13}"]
    golds = ["3z + z^5 - 11", "z^7 - 13"]
    with caplog.at_level(logging.WARNING, logger="reasoning_gym.verify.answers"):
        assert verify_answers(preds, golds, timeout=1e-6) == [False, False]
    assert "timed out" in caplog.text
    # The worker was replaced, and later calls work again.
    assert verify_answers(preds, golds) == [True, True]


def test_vector_env_verifies_finals_in_one_batch(monkeypatch):
    import numpy as np

    from reasoning_gym.env import ReasoningEnv
    from reasoning_gym.tasks.base import Problem, Task
    from reasoning_gym.vector import ReasoningVectorEnv

    class ExpressionTask(Task):
        name = "expression-answers"

        @property
        def num_problems(self) -> int:
            return 3

        def problem(self, index: int, seed: int = 0) -> Problem:
            return Problem(
                id=f"expression/{index}", question=f"Expand (w + {index})^2.", answer="w^2"
            )

    task = ExpressionTask()
    actions = ["\\boxed{w^2}", "\\boxed{w \\cdot w}", "\\boxed{2w}"]
    single_rewards = []
    for index, action in enumerate(actions):
        env = ReasoningEnv(task=task, prm=None)
        env.reset(options={"index": index})
        single_rewards.append(env.step(action)[1])

    def one_by_one(*args, **kwargs):
        raise AssertionError("the vector env verified an answer with a pool call of its own")

    monkeypatch.setattr(answers, "_run_in_pool", one_by_one)
    envs = ReasoningVectorEnv(num_envs=3, task=task, prm=None)
    envs.reset(options={"index": [0, 1, 2]})
    _, rewards, terminated, _, infos = envs.step(actions)
    assert terminated.tolist() == [True, True, True]
    assert infos["correct"].tolist() == [True, True, False]
    np.testing.assert_allclose(rewards, single_rewards)


def test_task_verify_batch_uses_override():
    from reasoning_gym.tasks.arithmetic import ArithmeticTask

    class LengthTask(ArithmeticTask):
        def verify(self, problem, answer_text):
            return float(len(answer_text))

    task = LengthTask()
    problems = [task.problem(0), task.problem(1)]
    assert task.verify_batch(problems, ["ab", "abcd"]) == [2.0, 4.0]
    default = ArithmeticTask()
    texts = [f"\\boxed{{{p.answer}}}" for p in problems[:1]] + ["\\boxed{-1}"]
    assert default.verify_batch(problems, texts) == [1.0, 0.0]
