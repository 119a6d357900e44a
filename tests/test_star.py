"""Tests of STaR: rationale filtering, rationalization without hint leaks, rounds and resume."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from agents.star import (
    RationaleExample,
    StarConfig,
    StarTrainer,
    collect_rationales,
    hint_text,
    hinted_problem,
)
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.policies.base import StepPolicy, StepProposal
from reasoning_gym.tasks.base import Problem, Task, problem_rng
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


class AdditionTask(Task):
    """One-digit additions with an exact verifier (no math-verify needed)."""

    name = "test-addition"

    def problem(self, index: int, seed: int = 0) -> Problem:
        rng = problem_rng(self.name, seed, index)
        a, b = rng.randint(1, 9), rng.randint(10, 99)
        return Problem(
            id=f"add/{seed}/{index}",
            question=f"What is {a} + {b}?",
            answer=str(a + b),
            gold_steps=(f"{a} + {b} = {a + b}", f"\\boxed{{{a + b}}}"),
        )

    def is_final_answer(self, text: str) -> bool:
        return _BOXED.search(text) is not None

    def verify(self, problem: Problem, answer_text: str) -> float:
        found = _BOXED.findall(answer_text)
        return 1.0 if found and found[-1].strip() == problem.answer else 0.0


class ScriptedPolicy(StepPolicy):
    """Writes a fixed solution chosen by ``behaviour(question, hinted)``, one step per call.

    ``behaviour`` returns ``"right"`` (correct steps), ``"wrong"`` (a wrong answer) or
    ``"leak"`` (correct answer, but a step quotes the hint).
    """

    def __init__(self, tokenizer, behaviour):
        super().__init__()
        self.tokenizer = tokenizer
        self.behaviour = behaviour
        self.step_index = 0

    def reset(self) -> None:
        self.step_index = 0

    def propose(self, contexts, n=1, sampling=None):
        text = self.tokenizer.decode(contexts[0])
        a, b = (int(x) for x in _QUESTION.findall(text)[-1])
        kind = self.behaviour(f"What is {a} + {b}?", "Hint:" in text)
        total = a + b if kind in ("right", "leak") else a + b + 1
        first = "The hint says so." if kind == "leak" else f"{a} + {b} = {total}"
        steps = [first, f"\\boxed{{{total}}}"]
        step = steps[min(self.step_index, 1)]
        self.step_index += 1
        ids = np.asarray(self.tokenizer.encode(step, add_special_tokens=False), dtype=np.int64)
        return [[StepProposal(token_ids=ids, text=step, logprobs=np.zeros(len(ids)))] * n]


@pytest.fixture
def task():
    return AdditionTask()


@pytest.fixture
def env(task):
    return ReasoningEnv(task=task, tokenizer=tiny_tokenizer(), prm=None, reward_mode="outcome")


def _four_problems(task):
    problems = [task.problem(i) for i in range(4)]
    assert len({p.question for p in problems}) == 4
    return problems


# ---------------------------------------------------------------------------- hints


def test_hinted_problem_keeps_answer(task):
    problem = task.problem(0)
    hinted = hinted_problem(problem)
    assert hinted.answer == problem.answer
    assert hinted.question.startswith(problem.question)
    assert f"the answer is {problem.answer}" in hinted.question
    assert "Hint" not in problem.question
    assert hint_text(problem) == f"(Hint: the answer is {problem.answer}.)"


# ---------------------------------------------------------------------------- filtering


def test_filter_keeps_only_verified(env, task):
    problems = _four_problems(task)
    plan = {
        problems[0].question: ("right", "right"),  # solved directly
        problems[1].question: ("wrong", "right"),  # solved with the hint
        problems[2].question: ("wrong", "leak"),  # solved with the hint but quotes it
        problems[3].question: ("wrong", "wrong"),  # never solved
    }
    policy = ScriptedPolicy(env.tokenizer.hf, lambda q, hinted: plan[q][int(hinted)])
    eos = env.tokenizer.eos_token_id
    examples, stats = collect_rationales(env, policy, problems, eos_token_id=eos)

    assert stats.attempted == 4
    assert stats.kept_direct == 1
    assert stats.kept_rationalized == 1
    assert stats.rationalization_attempts == 3
    assert stats.rejected_hint_leaks == 1
    assert [e.problem_id for e in examples] == [problems[0].id, problems[1].id]
    assert [e.source for e in examples] == ["direct", "rationalization"]
    for example, problem in zip(examples, problems[:2], strict=True):
        assert example.steps[-1] == f"\\boxed{{{problem.answer}}}"
        assert task.verify(problem, example.steps[-1]) == 1.0


def test_rationalized_example_never_has_hint(env, task):
    problems = _four_problems(task)
    policy = ScriptedPolicy(env.tokenizer.hf, lambda q, hinted: "right" if hinted else "wrong")
    eos = env.tokenizer.eos_token_id
    examples, stats = collect_rationales(env, policy, problems, eos_token_id=eos)

    assert stats.kept_rationalized == 4
    for example, problem in zip(examples, problems, strict=True):
        assert isinstance(example, RationaleExample)
        text = env.tokenizer.decode(example.input_ids)
        assert "Hint" not in text
        assert "answer is" not in text
        assert example.question == problem.question
        prompt = env.prompt_ids(problem).tolist()
        assert example.input_ids[: len(prompt)] == prompt
        assert example.labels[: len(prompt)] == [-100] * len(prompt)
        completion = env.tokenizer.decode(example.input_ids[len(prompt) :])
        a_plus_b = problem.question[len("What is ") : -1]
        expected = f"{a_plus_b} = {problem.answer}\n\\boxed{{{problem.answer}}}\n<|im_end|>"
        assert completion == expected
        assert example.labels[len(prompt) :] == example.input_ids[len(prompt) :]


def test_without_rationalization_no_retry(env, task):
    problems = _four_problems(task)
    policy = ScriptedPolicy(env.tokenizer.hf, lambda q, hinted: "right" if hinted else "wrong")
    examples, stats = collect_rationales(env, policy, problems, rationalize=False)
    assert examples == []
    assert stats.rationalization_attempts == 0
    assert stats.kept_rationalized == 0


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": 0}, "rounds=0"),
        ({"hint_template": "{question} hint"}, "must contain"),
        ({"num_train_problems": 10, "eval_start": 5}, "overlap"),
        ({"temperature": -1.0}, "temperature=-1.0"),
    ],
)
def test_config_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StarConfig(**kwargs)


def test_config_held_out_after_train():
    config = StarConfig(num_train_problems=10, num_eval_problems=5)
    assert list(config.eval_indices) == list(range(10, 15))


# ---------------------------------------------------------------------------- rounds


def test_rounds_checkpoint_and_resume(tmp_path, task):
    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), seed=3)
    base_weights = [p.detach().clone() for p in model.parameters()]
    calls = []

    def factory(model, tokenizer, config):
        calls.append(model)
        plan = {True: "right", False: "wrong"}
        return ScriptedPolicy(tokenizer, lambda q, hinted: plan[hinted])

    config = StarConfig(
        rounds=1,
        num_train_problems=4,
        num_eval_problems=2,
        batch_size=4,
        num_train_epochs=1.0,
        learning_rate=1e-2,
        output_dir=str(tmp_path / "star"),
    )
    history = StarTrainer(model, tokenizer, task, config, policy_factory=factory).run()

    assert [row["round"] for row in history] == [0, 1]
    assert history[1]["kept_rationalized"] == 4
    assert history[1]["kept_direct"] == 0
    assert history[1]["heldout_total"] == 2
    assert history[1]["heldout_accuracy"] == 0.0
    assert len(calls) == 3  # base evaluation, round-1 generation, round-1 evaluation
    round_dir = tmp_path / "star" / "round_1"
    assert (round_dir / "model" / "config.json").is_file()
    assert json.loads((round_dir / "round.json").read_text())["kept_rationalized"] == 4
    assert (tmp_path / "star" / "star_rounds.png").stat().st_size > 0
    saved = json.loads((tmp_path / "star" / "history.json").read_text())
    assert len(saved["rounds"]) == 2
    examples = [
        json.loads(line) for line in (round_dir / "examples.jsonl").read_text().splitlines()
    ]
    assert all("Hint" not in " ".join(row["steps"]) for row in examples)

    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(round_dir / "model")
    changed = [
        not torch.equal(a, b) for a, b in zip(base_weights, trained.parameters(), strict=True)
    ]
    assert any(changed)

    # A second run with two rounds resumes: only round 2 is generated and evaluated.
    calls.clear()
    config.rounds = 2
    history = StarTrainer(model, tokenizer, task, config, policy_factory=factory).run()
    assert [row["round"] for row in history] == [0, 1, 2]
    assert len(calls) == 2
    assert (tmp_path / "star" / "round_2" / "round.json").is_file()

    # Resuming with other settings is rejected instead of mixing two runs.
    config.rationalize = False
    with pytest.raises(ValueError, match="rationalize"):
        StarTrainer(model, tokenizer, task, config, policy_factory=factory).run()
