"""Tests of the process-supervised GRPO trainer on a tiny model and a real environment."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from agents.grpo_process.config import GRPOProcessConfig
from agents.grpo_process.trainer import GRPOProcessTrainer, spread_step_values
from agents.ppo.buffer import Episode, collate_episodes
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.prm.base import CallablePRM
from reasoning_gym.tasks.base import Problem, Task
from reasoning_gym.testing import tiny_causal_lm


class _LetterTask(Task):
    """Problem i expects the letter A; a step containing A or B is a final answer."""

    name = "letter"
    instruction = "Write A."

    def problem(self, index: int, seed: int = 0) -> Problem:
        return Problem(id=f"letter/{index}", question=str(index % 10), answer="A")

    def verify(self, problem: Problem, answer_text: str) -> float:
        return 1.0 if "A" in answer_text else 0.0

    def is_final_answer(self, text: str) -> bool:
        return "A" in text or "B" in text

    def check_step(self, problem, previous_steps, step) -> float:
        # Share of ASCII characters: varies between the random steps of an untrained model.
        return sum(c.isascii() for c in step) / max(len(step), 1)


def _env() -> ReasoningEnv:
    return ReasoningEnv(
        task=_LetterTask(), tokenizer="byte", prm=None, reward_mode="outcome",
        max_steps=3, max_step_tokens=6,
    )  # fmt: skip


def _config(tmp_path, **overrides) -> GRPOProcessConfig:
    settings = dict(
        model="tiny",
        num_updates=1,
        episodes_per_update=4,
        samples_per_problem=2,
        max_steps=3,
        max_step_tokens=6,
        learning_rate=1e-3,
        output_dir=str(tmp_path / "run"),
        checkpoint_every=1,
        tensorboard=False,
        progress_bar=False,
    )
    settings.update(overrides)
    return GRPOProcessConfig(**settings)


def _trainer(config: GRPOProcessConfig, prm=None) -> GRPOProcessTrainer:
    model = tiny_causal_lm(259, hidden_size=32)
    return GRPOProcessTrainer(config, env_fn=_env, model=model, prm=prm)


def _episode(step_lengths, group=0, problem_index=0) -> Episode:
    tokens = []
    for number, length in enumerate(step_lengths):
        tokens += [ord("a") + number] * length + [ord("\n")]
    return Episode(
        prompt_ids=np.array([ord("Q")]),
        action_ids=np.array(tokens),
        step_lengths=list(step_lengths),
        separator_length=1,
        step_rewards=np.zeros(len(step_lengths)),
        terminated=True,
        truncated=False,
        problem_index=problem_index,
        group=group,
    )


def test_config_rejects_invalid():
    with pytest.raises(ValueError, match="samples_per_problem=1"):
        GRPOProcessConfig(samples_per_problem=1, episodes_per_update=4)
    with pytest.raises(ValueError, match="reward_source='dense'"):
        GRPOProcessConfig(reward_source="dense")
    with pytest.raises(ValueError, match="needs step_prm"):
        GRPOProcessConfig(step_prm=None)
    with pytest.raises(ValueError, match="advantage_eps"):
        GRPOProcessConfig(advantage_eps=0.0)


def test_spread_covers_step_and_separator():
    episode = _episode([2, 0, 1])
    np.testing.assert_allclose(spread_step_values(episode, [1.0, 2.0, 3.0]), [1, 1, 1, 2, 3, 3])


def test_step_advantages_hand_computed(tmp_path):
    # Step "aa" scores 1, "b" scores 0: group rewards [1, 0] and [1] -> mean 2/3.
    prm = CallablePRM(lambda query: 1.0 if query.step.startswith("a") else 0.0)
    trainer = _trainer(_config(tmp_path), prm=prm)
    episodes = [_episode([2, 1]), _episode([2])]
    advantages, metrics = trainer.token_advantages(episodes)
    std = math.sqrt(2 / 9)
    high, low = (1 - 2 / 3) / std, (0 - 2 / 3) / std
    np.testing.assert_allclose(advantages[0], [high + low] * 3 + [low] * 2)
    np.testing.assert_allclose(advantages[1], [high] * 3)
    assert metrics["rollout/nonfinite_rewards"] == 0.0
    assert metrics["rollout/degenerate_groups"] == 0.0


def test_outcome_source_one_advantage_per_solution(tmp_path):
    trainer = _trainer(_config(tmp_path, reward_source="outcome"))
    assert trainer.prm is None
    right, wrong = _episode([1, 1]), _episode([3])
    right.step_rewards = np.array([0.0, 1.0])
    advantages, _ = trainer.token_advantages([right, wrong])
    np.testing.assert_allclose(advantages[0], [1.0] * 4)
    np.testing.assert_allclose(advantages[1], [-1.0] * 4)


def test_one_update_changes_parameters(tmp_path):
    trainer = _trainer(_config(tmp_path))  # step_prm="oracle": the task's check_step
    before = [p.detach().clone() for p in trainer.policy.actor_parameters()]
    metrics = trainer.train_step()
    assert metrics["rollout/skipped"] == 0.0
    assert metrics["rollout/degenerate_groups"] < 1.0
    assert math.isfinite(metrics["losses/loss"])
    changed = [
        not torch.equal(old, new)
        for old, new in zip(before, trainer.policy.actor_parameters(), strict=True)
    ]
    assert any(changed)
    assert (tmp_path / "run" / "grpo_metrics.jsonl").is_file()


def test_equal_rewards_zero_policy_gradient(tmp_path):
    prm = CallablePRM(lambda query: 0.5)
    trainer = _trainer(_config(tmp_path, kl_coef=0.0, ent_coef=0.0), prm=prm)
    episodes, _ = trainer.collect_rollout()
    advantages, metrics = trainer.token_advantages(episodes)
    assert metrics["rollout/degenerate_groups"] == 1.0
    for values in advantages:
        np.testing.assert_array_equal(values, 0.0)

    batch = collate_episodes(episodes, trainer.pad_token_id)
    data = trainer.rollout_tensors(batch, advantages)
    rows = np.arange(len(episodes))
    loss, _ = trainer._loss(batch, data, rows, batch.action_mask.sum())
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for param in trainer.policy.actor_parameters():
        assert param.grad is None or torch.count_nonzero(param.grad) == 0


def test_nan_rewards_excluded_and_reported(tmp_path, caplog):
    def score(query):
        # The second step of every solution gets NaN; the others their ASCII share.
        if len(query.previous_steps) == 1:
            return float("nan")
        return sum(c.isascii() for c in query.step) / max(len(query.step), 1)

    trainer = _trainer(_config(tmp_path), prm=CallablePRM(score))
    before = [p.detach().clone() for p in trainer.policy.actor_parameters()]
    with caplog.at_level(logging.WARNING, logger="agents.grpo_process.trainer"):
        metrics = trainer.train_step()
    assert metrics["rollout/nonfinite_rewards"] > 0
    assert "NaN or infinite" in caplog.text
    assert metrics["rollout/skipped"] == 0.0
    assert math.isfinite(metrics["losses/loss"])
    for param in trainer.policy.actor_parameters():
        assert torch.isfinite(param).all()
    assert any(
        not torch.equal(old, new)
        for old, new in zip(before, trainer.policy.actor_parameters(), strict=True)
    )


def test_nan_rewards_skip_batch(tmp_path):
    prm = CallablePRM(lambda query: float("nan"))
    trainer = _trainer(_config(tmp_path, nonfinite_reward="skip_batch"), prm=prm)
    before = [p.detach().clone() for p in trainer.policy.actor_parameters()]
    metrics = trainer.train_step()
    assert metrics["rollout/skipped"] == 1.0
    for old, new in zip(before, trainer.policy.actor_parameters(), strict=True):
        assert torch.equal(old, new)


def test_resume_keeps_update_count(tmp_path):
    first = _trainer(_config(tmp_path, num_updates=1))
    first.train()
    resumed = _trainer(_config(tmp_path, num_updates=2))
    assert resumed.update == 1
    resumed.train()
    lines = (tmp_path / "run" / "grpo_metrics.jsonl").read_text().strip().splitlines()
    assert len(lines) == 2
