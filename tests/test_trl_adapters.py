"""Tests of the TRL adapters: datasets, reward functions, the tool environment and trainers."""

from __future__ import annotations

import os
import re

import pytest
import torch

from agents.trl_adapters import (
    ReasoningToolEnv,
    build_dataset,
    completion_text,
    make_environment_factory,
    make_grpo_trainer,
    make_reward_fn,
    make_rloo_trainer,
    prepare_model,
    prepare_tool_tokenizer,
)
from reasoning_gym.prm.base import CallablePRM
from reasoning_gym.tasks.base import Problem, Task, problem_rng
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


class AdditionTask(Task):
    """One-digit additions with an exact verifier and a step checker."""

    name = "test-addition"

    def problem(self, index: int, seed: int = 0) -> Problem:
        rng = problem_rng(self.name, seed, index)
        a, b = rng.randint(1, 9), rng.randint(10, 99)
        return Problem(id=f"add/{seed}/{index}", question=f"What is {a} + {b}?", answer=str(a + b))

    def is_final_answer(self, text: str) -> bool:
        return _BOXED.search(text) is not None

    def verify(self, problem: Problem, answer_text: str) -> float:
        found = _BOXED.findall(answer_text)
        return 1.0 if found and found[-1].strip() == problem.answer else 0.0

    def check_step(self, problem, previous_steps, step) -> float:
        return 1.0 if problem.answer in step else 0.0


def digit_share(query) -> float:
    """A PRM that scores a step by its share of digits, so random text gets varied scores."""
    return sum(ch.isdigit() for ch in query.step) / max(len(query.step), 1)


@pytest.fixture
def task():
    return AdditionTask()


def _grpo_config(tmp_path, **overrides):
    from trl import GRPOConfig

    settings = dict(
        output_dir=str(tmp_path / "grpo"),
        use_cpu=True,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_tool_calling_iterations=2,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    settings.update(overrides)
    return GRPOConfig(**settings)


# ---------------------------------------------------------------------------- dataset


def test_dataset_rows_carry_problem(task):
    dataset = build_dataset(task, num_problems=3, seed=5)
    assert dataset["problem_index"] == [0, 1, 2]
    assert dataset["problem_seed"] == [5, 5, 5]
    for row in dataset:
        problem = task.problem(row["problem_index"], seed=5)
        assert row["answer"] == problem.answer
        assert row["prompt"][-1] == {"role": "user", "content": problem.question}
        assert row["prompt"][0]["content"] == task.instruction


def test_dataset_rejects_bad_arguments(task):
    with pytest.raises(ValueError, match="exactly one"):
        build_dataset(task)
    with pytest.raises(ValueError, match="-1"):
        build_dataset(task, indices=[0, -1])


# ---------------------------------------------------------------------------- reward functions


def test_outcome_reward_scores_final_answer(task):
    problems = [task.problem(i) for i in range(3)]
    completions = [
        f"first\n\\boxed{{{problems[0].answer}}}",
        "\\boxed{-1}",
        "no final answer here",
    ]
    reward = make_reward_fn(task, mode="outcome")
    assert reward(completions, problem_index=[0, 1, 2], problem_seed=[0, 0, 0]) == [1.0, 0.0, 0.0]
    # Without the index column, the answer column gives the gold answer.
    assert reward(completions, answer=[p.answer for p in problems]) == [1.0, 0.0, 0.0]
    assert reward.__name__ == "reasoning_outcome_reward"


def test_process_reward_aggregates_steps(task):
    problem = task.problem(0)
    completions = [
        f"{problem.answer} is it\n\\boxed{{{problem.answer}}}\nignored after the answer",
        f"wrong step\n{problem.answer}",
        "",
    ]
    columns = {"problem_index": [0, 0, 0]}
    by_min = make_reward_fn(task, mode="process", aggregation="min")
    by_mean = make_reward_fn(task, mode="process", aggregation="mean")
    both = make_reward_fn(task, mode="both", aggregation="mean", process_weight=0.5)
    assert by_min(completions, **columns) == [1.0, 0.0, 0.0]
    assert by_mean(completions, **columns) == [1.0, 0.5, 0.0]
    assert both(completions, **columns) == [1.5, 0.25, 0.0]


def test_reward_reads_tool_call_messages(task):
    problem = task.problem(0)
    completion = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "step", "arguments": {"text": "a"}}},
                {
                    "type": "function",
                    "function": {"name": "answer", "arguments": {"text": problem.answer}},
                },
            ],
        },
        {"role": "tool", "name": "answer", "content": "The final answer was recorded."},
    ]
    assert completion_text(completion, task) == f"a\n\\boxed{{{problem.answer}}}"
    reward = make_reward_fn(task, mode="outcome")
    assert reward([completion], problem_index=[0]) == [1.0]


def test_reward_fn_rejects_bad_input(task):
    with pytest.raises(ValueError, match="mode='steps'"):
        make_reward_fn(task, mode="steps")
    with pytest.raises(ValueError, match="aggregation='max'"):
        make_reward_fn(task, aggregation="max")
    reward = make_reward_fn(task)
    with pytest.raises(ValueError, match="problem_index"):
        reward(["\\boxed{1}"])


def test_process_mode_needs_prm():
    class NoChecker(AdditionTask):
        check_step = Task.check_step

    with pytest.raises(ValueError, match="no step checker"):
        make_reward_fn(NoChecker(), mode="process")


# ---------------------------------------------------------------------------- tool environment


def test_tool_env_episode_and_reward(task):
    factory = make_environment_factory(task, tokenizer=tiny_tokenizer(), reward_mode="both")
    env = factory()
    problem = task.problem(2)
    row = {"prompt": [{"role": "user", "content": ""}], "problem_index": 2, "problem_seed": 0}
    assert env.reset(**row) == problem.question
    assert env.problem_index == 2
    assert env.step(f"so it is {problem.answer}") == "Step 1 recorded."
    assert env.answer(problem.answer) == "The final answer was recorded."
    assert "finished" in env.step("more")
    # Outcome 1 plus the minimum oracle step score 1.
    assert env.get_reward() == 2.0

    row["prompt"] = [{"role": "user", "content": problem.question}]
    assert env.reset(**row) is None
    assert env.answer("0") == "The final answer was recorded."
    assert env.get_reward() == 0.0


def test_tool_env_exposes_only_tools(task):
    import inspect

    tools = [
        name
        for name, _ in inspect.getmembers(ReasoningToolEnv, predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]
    assert tools == ["answer", "step"]


# ---------------------------------------------------------------------------- tokenizer and model


def test_tool_tokenizer_replaces_chatml():
    from trl.chat_template_utils import qwen2_5_chat_template

    original = tiny_tokenizer()
    prepared = prepare_tool_tokenizer(original)
    assert prepared.chat_template == qwen2_5_chat_template
    assert prepared.response_template is not None
    assert prepared.padding_side == "left"
    assert original.chat_template != qwen2_5_chat_template
    with pytest.raises(ValueError, match="cannot render tool calls"):
        prepare_tool_tokenizer(original, chat_template="keep")
    with pytest.raises(ValueError, match="cannot render tool calls"):
        prepare_tool_tokenizer(tiny_tokenizer(chat_template=False))


def test_prepare_model_saves_reference(tmp_path):
    model = tiny_causal_lm(len(tiny_tokenizer()))
    assert prepare_model(model, tmp_path, needs_reference=False) is model
    assert not (tmp_path / "base_model").exists()
    prepared = prepare_model(model, tmp_path, needs_reference=True)
    assert (tmp_path / "base_model" / "config.json").is_file()
    assert prepared.config._name_or_path == str(tmp_path / "base_model")


def test_prepare_model_rejects_gguf(tmp_path):
    model = tiny_causal_lm(len(tiny_tokenizer()))
    model.config.quantization_config = {"quant_method": "gguf"}
    with pytest.raises(ValueError, match="GGUF"):
        prepare_model(model, tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.gguf"):
        prepare_model(str(tmp_path / "missing.gguf"), tmp_path)


# ---------------------------------------------------------------------------- trainers


def _changed(before, model) -> bool:
    return any(
        not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True)
    )


def test_grpo_two_steps_change_parameters(tmp_path, task):
    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    process = make_reward_fn(task, prm=CallablePRM(digit_share), mode="process")
    trainer = make_grpo_trainer(
        model, tokenizer, task, _grpo_config(tmp_path), num_problems=8, extra_reward_funcs=[process]
    )
    trainer.train()
    assert trainer.state.global_step == 2
    assert _changed(before, trainer.model)


def test_grpo_group_shares_one_problem(tmp_path, task):
    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), seed=2)
    seen = []

    def record(prompts, completions, problem_index, environments, **kwargs):
        for prompt, index, env in zip(prompts, problem_index, environments, strict=True):
            seen.append((index, env.problem_index, env.env.problem.question, prompt[-1]["content"]))
        return [0.0] * len(completions)

    config = _grpo_config(tmp_path, num_generations=4, per_device_train_batch_size=8)
    trainer = make_grpo_trainer(
        model, tokenizer, task, config, num_problems=16, extra_reward_funcs=[record]
    )
    trainer.train()

    assert len(seen) == 16  # 2 steps x 8 completions
    for start in range(0, len(seen), 4):
        group = seen[start : start + 4]
        assert len({index for index, _, _, _ in group}) == 1
        for index, env_index, question, prompt in group:
            assert env_index == index
            assert question == task.problem(index).question
            assert prompt == question


def test_rloo_two_steps_change_parameters(tmp_path, task):
    from trl import RLOOConfig

    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), seed=3)
    before = [p.detach().clone() for p in model.parameters()]
    config = RLOOConfig(
        output_dir=str(tmp_path / "rloo"),
        use_cpu=True,
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    assert config.beta > 0  # the reference model must be loaded from disk
    trainer = make_rloo_trainer(
        model,
        tokenizer,
        task,
        config,
        num_problems=8,
        reward_mode="process",
        prm=CallablePRM(digit_share),
    )
    trainer.train()
    assert trainer.state.global_step == 2
    assert (tmp_path / "rloo" / "base_model" / "config.json").is_file()
    assert _changed(before, trainer.model)
