"""Few-shot prompts: worked examples placed before the question in ``s_0``."""

from __future__ import annotations

import pytest

from reasoning_gym.env import ReasoningEnv
from reasoning_gym.tasks.arithmetic import ArithmeticTask
from reasoning_gym.tasks.base import FEW_SHOT_SEED, Problem
from reasoning_gym.tasks.gsm8k import GSM8KTask
from reasoning_gym.tasks.jsonl import JsonlTask


def test_chat_prompt_example_turns(hf_tokenizer):
    task = ArithmeticTask(num_operations=1)
    env = ReasoningEnv(task=task, tokenizer=hf_tokenizer, few_shot=2)
    obs, _ = env.reset(options={"index": 0})
    text = hf_tokenizer.decode(obs)
    examples = task.few_shot_problems(2)
    assert text.count("<|im_start|>user") == 3
    assert text.count("<|im_start|>assistant") == 3
    first = text.index(examples[0].question)
    second = text.index(examples[1].question)
    question = text.index(task.problem(0).question)
    assert first < second < question
    # Each example's answer turn is its gold steps joined by the step separator.
    assert "\n".join(examples[0].gold_steps) + "<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_plain_prompt_examples(hf_tokenizer_plain):
    task = ArithmeticTask(num_operations=2)
    env = ReasoningEnv(task=task, tokenizer=hf_tokenizer_plain, few_shot=1)
    obs, _ = env.reset(options={"index": 3})
    text = hf_tokenizer_plain.decode(obs)
    example = task.few_shot_problems(1)[0]
    solution = "\n".join(example.gold_steps)
    assert f"Question: {example.question}\nSolution:\n{solution}\n\n" in text
    assert text.endswith(f"Question: {task.problem(3).question}\nSolution:\n")


def test_examples_use_own_seed():
    task = ArithmeticTask()
    examples = task.few_shot_problems(3)
    assert [e.metadata["seed"] for e in examples] == [FEW_SHOT_SEED] * 3
    assert all(e.gold_steps for e in examples)
    assert {e.id for e in examples}.isdisjoint({task.problem(i).id for i in range(3)})


def test_repeated_question_example_skipped():
    task = ArithmeticTask()
    current, other = task.problem(0), task.problem(1)
    env = ReasoningEnv(task=task, few_shot=[current, other], prompt_style="plain")
    obs, _ = env.reset(options={"index": 0})
    text = env.tokenizer.decode(obs)
    assert text.count(current.question) == 1
    assert text.count(other.question) == 1
    # With a count, the spare example keeps the number of examples.
    env = ReasoningEnv(task=task, few_shot=2, prompt_style="plain")
    pool = task.few_shot_problems(3)
    obs, _ = env.reset(options={"problem": pool[0]})
    text = env.tokenizer.decode(obs)
    assert text.count("Question: ") == 3
    assert text.count(pool[0].question) == 1
    assert pool[1].question in text
    assert pool[2].question in text


def test_zero_examples_same_prompt():
    task = ArithmeticTask()
    plain = ReasoningEnv(task=task).prompt_ids(task.problem(0))
    zero = ReasoningEnv(task=task, few_shot=0).prompt_ids(task.problem(0))
    assert plain.tolist() == zero.tolist()


@pytest.mark.parametrize(
    ("few_shot", "error", "match"),
    [
        (-1, ValueError, "few_shot=-1 must be 0 or more"),
        ("2", TypeError, "few_shot must be an int"),
        (True, TypeError, "few_shot must be an int"),
        ([Problem(id="x", question="q", answer="1")], ValueError, "with gold_steps"),
    ],
)
def test_bad_few_shot_values(few_shot, error, match):
    with pytest.raises(error, match=match):
        ReasoningEnv(task=ArithmeticTask(), few_shot=few_shot)


def test_dataset_task_without_examples(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"question": "1 + 1?", "answer": "2"}\n')
    with pytest.raises(ValueError, match="pass few_shot=0"):
        ReasoningEnv(task=JsonlTask(path=path), few_shot=1)


def test_gsm8k_examples_from_train(shared_data, monkeypatch):
    monkeypatch.setenv("REASONING_GYM_DATA", str(shared_data))
    task = GSM8KTask(limit=2)
    env = ReasoningEnv(task=task, few_shot=1, prompt_style="plain")
    obs, _ = env.reset(options={"index": 0})
    text = env.tokenizer.decode(obs)
    first_train = GSM8KTask(split="train", limit=1).problem(0)
    assert first_train.metadata["split"] == "train"
    assert first_train.question in text
    assert "The answer is \\boxed{72}." in text
    assert text.endswith(f"Question: {task.problem(0).question}\nSolution:\n")
