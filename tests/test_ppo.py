"""Tests of the step-level PPO agent: config, rollout storage, GAE, losses and training."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from agents.ppo.buffer import (
    Episode,
    collate_episodes,
    compute_gae,
    normalize_episode_returns,
    place_step_rewards,
    sanitize_rewards,
)
from agents.ppo.config import PPOConfig
from agents.ppo.loss import (
    adaptive_kl_coef,
    kl_penalty,
    masked_whiten,
    policy_loss,
    value_loss,
)

# ---------------------------------------------------------------------------- config


def test_config_defaults_valid():
    config = PPOConfig()
    assert config.minibatch_size == 8
    assert config.to_dict()["kl_estimator"] == "k1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": 1.5}, "gamma=1.5"),
        ({"kl_estimator": "k2"}, "kl_estimator='k2'"),
        ({"episodes_per_update": 6, "samples_per_problem": 4}, "multiple of"),
        ({"num_minibatches": 32}, "num_minibatches=32"),
        ({"critic": "separate"}, "critic_model"),
        ({"reward_normalization": "group"}, "samples_per_problem >= 2"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"target_kl": float("nan")}, "target_kl=nan"),
        ({"num_updates": 0}, "num_updates=0"),
    ],
)
def test_config_rejects_invalid(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        PPOConfig(**kwargs)


# ---------------------------------------------------------------------------- rewards


def test_reward_placement_last_token():
    # Steps of 3, 1, 0 and 2 tokens, each followed by a one-token separator:
    # tokens 0-2 step 0, 3 sep, 4 step 1, 5 sep, 6 sep of the empty step 2, 7-8 step 3, 9 sep.
    rewards = place_step_rewards([3, 1, 0, 2], 1, [0.1, 0.2, 0.3, 0.4])
    expected = np.zeros(10)
    expected[[2, 4, 6, 8]] = [0.1, 0.2, 0.3, 0.4]
    np.testing.assert_allclose(rewards, expected)


def test_reward_placement_one_token_step():
    rewards = place_step_rewards([1], 2, [0.7])
    np.testing.assert_allclose(rewards, [0.7, 0.0, 0.0])


def test_reward_placement_empty_step_no_separator():
    # An empty step without a separator falls back to the previous token; an empty
    # first step is carried to the next step's reward token.
    np.testing.assert_allclose(place_step_rewards([2, 0], 0, [1.0, 0.5]), [0.0, 1.5])
    np.testing.assert_allclose(place_step_rewards([0, 2], 0, [1.0, 0.5]), [0.0, 1.5])
    with pytest.raises(ValueError, match="without tokens"):
        place_step_rewards([0], 0, [1.0])


def test_episode_rejects_inconsistent_lengths():
    with pytest.raises(ValueError, match="action tokens"):
        Episode(np.arange(3), np.arange(4), [2], 1, np.array([1.0]), True, False)


def test_sanitize_rewards_counts_nonfinite():
    cleaned, count = sanitize_rewards(np.array([1.0, np.nan, np.inf, -np.inf, 20.0]), clip=10.0)
    np.testing.assert_allclose(cleaned, [1.0, 0.0, 10.0, -10.0, 10.0])
    assert count == 3


def test_normalize_identical_returns_gives_zeros():
    rewards = [np.array([0.5, 1.0]), np.array([1.0, 0.5]), np.array([1.0]), np.array([0.0])]
    out = normalize_episode_returns(rewards, groups=[0, 0, 1, 1], eps=1e-6)
    # Group 0 has equal returns (1.5): no signal, so zeros rather than amplified noise.
    np.testing.assert_array_equal(out[0], [0.0, 0.0])
    np.testing.assert_array_equal(out[1], [0.0, 0.0])
    # Group 1 has returns 1 and 0: mean 0.5, std 0.5 -> +1 and -1.
    np.testing.assert_allclose(out[2], [1.0])
    np.testing.assert_allclose(out[3], [-1.0])


def test_normalize_keeps_process_shape():
    rewards = [np.array([0.5, 1.5]), np.array([0.0, 0.0])]
    out = normalize_episode_returns(rewards, groups=[0, 0], eps=1e-6)
    # Returns 2 and 0: std 1, mean 1. Rewards are divided by 1, the last one shifted by -1.
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    np.testing.assert_allclose(out[1], [0.0, -1.0])
    assert out[0].sum() == pytest.approx(1.0)
    assert out[1].sum() == pytest.approx(-1.0)


# ---------------------------------------------------------------------------- batches and GAE


def _episode(prompt_length: int, steps: list[int], rewards: list[float], terminated=True):
    tokens = sum(steps) + len(steps)
    return Episode(
        prompt_ids=np.arange(10, 10 + prompt_length),
        action_ids=np.arange(50, 50 + tokens),
        step_lengths=steps,
        separator_length=1,
        step_rewards=np.array(rewards),
        terminated=terminated,
        truncated=not terminated,
    )


def test_collate_aligns_responses():
    batch = collate_episodes([_episode(3, [1], [1.0]), _episode(5, [2, 0], [0.5, -0.1])], 0)
    assert batch.query_length == 5
    assert batch.response_length == 4
    # Row 0: two pad columns, 3 prompt tokens, 2 action tokens, then padding.
    assert batch.input_ids[0].tolist() == [0, 0, 10, 11, 12, 50, 51, 0, 0]
    assert batch.attention_mask[0].tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert batch.position_ids[0, 2:7].tolist() == [0, 1, 2, 3, 4]
    assert batch.action_mask[0].tolist() == [1, 1, 0, 0]
    assert batch.env_rewards[0].tolist() == pytest.approx([1.0, 0, 0, 0])
    # Row 1: step of 2 tokens (reward on token 1), empty step (reward on its separator, 3).
    assert batch.env_rewards[1].tolist() == pytest.approx([0, 0.5, 0, -0.1])
    assert batch.num_tokens.tolist() == [2, 4]


def test_gae_matches_hand_computed_table():
    # gamma 0.9, lambda 0.8, so gamma * lambda = 0.72.
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.2, 0.0, 0.0], [0.2, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [1.0, 2.0, 0.0], [1.0, 2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    bootstrap = torch.tensor([5.0, 3.0, 3.0])
    terminated = torch.tensor([True, False, True])
    advantages, returns = compute_gae(rewards, values, mask, bootstrap, terminated, 0.9, 0.8)
    expected = torch.tensor(
        [
            # Terminated: deltas 0.04, 0.03, 0.3; the bootstrap value 5.0 is ignored.
            [0.21712, 0.246, 0.3],
            # Truncated: delta_1 = 0 + 0.9 * 3.0 - 2.0 = 0.7, delta_0 = 0.2 + 1.8 - 1.0 = 1.0.
            [1.504, 0.7, 0.0],
            # Same row terminated: delta_1 = -2.0, A_0 = 1.0 + 0.72 * -2.0.
            [-0.44, -2.0, 0.0],
        ]
    )
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, (expected + values) * mask)


def test_gae_lambda_one_gives_discounted_return():
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[0.3, -0.2, 0.9]])
    mask = torch.ones(1, 3)
    _, returns = compute_gae(
        rewards, values, mask, torch.zeros(1), torch.tensor([True]), gamma=0.5, gae_lambda=1.0
    )
    torch.testing.assert_close(returns, torch.tensor([[1 + 0.5 * 2 + 0.25 * 3, 2 + 1.5, 3.0]]))


# ---------------------------------------------------------------------------- losses


def test_policy_loss_hand_computed():
    old = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.7, 0.3, 0.55, 0.9]]))  # ratios 1.4, 0.6, 1.1, (padding)
    advantages = torch.tensor([[1.0, -2.0, 0.5, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss, stats = policy_loss(new, old, advantages, mask, clip_coef=0.2)
    # Token losses: max(-1.4, -1.2) = -1.2; max(1.2, 1.6) = 1.6; -0.55 (inside the range).
    assert loss.item() == pytest.approx((-1.2 + 1.6 - 0.55) / 3, abs=1e-6)
    assert stats["clipfrac"].item() == pytest.approx(2 / 3)
    # With a normalizer the token sum is divided by it instead.
    loss_sum, _ = policy_loss(new, old, advantages, mask, clip_coef=0.2, normalizer=1.0)
    assert loss_sum.item() == pytest.approx(-1.2 + 1.6 - 0.55, abs=1e-6)


def test_value_loss_clipped_hand_computed():
    new = torch.tensor([[1.5, 0.0]])
    old = torch.tensor([[1.0, 0.0]])
    returns = torch.tensor([[2.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0]])
    clipped, stats = value_loss(new, old, returns, mask, clip_coef=0.2)
    # Unclipped error 0.25; clipped prediction 1.2 gives 0.64; the larger one is used.
    assert clipped.item() == pytest.approx(0.5 * 0.64)
    assert stats["vf_clipfrac"].item() == 1.0
    unclipped, _ = value_loss(new, old, returns, mask, clip_coef=None)
    assert unclipped.item() == pytest.approx(0.5 * 0.25)


def test_kl_estimators():
    logp = torch.log(torch.tensor([0.5, 0.2]))
    ref = torch.log(torch.tensor([0.25, 0.4]))
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), logp - ref)
    k3 = kl_penalty(logp, ref, "k3")
    # r = p_ref / p = 0.5 and 2.0: (r - 1) - log r.
    torch.testing.assert_close(k3, torch.tensor([-0.5 - math.log(0.5), 1.0 - math.log(2.0)]))
    assert bool((k3 >= 0).all())


def test_adaptive_kl_coef_moves_toward_target():
    # KL twice the target: the error is clipped to +0.2, so coef * (1 + 0.2 * 10 / 100).
    assert adaptive_kl_coef(0.1, kl=2.0, target=1.0, steps=10, horizon=100) == pytest.approx(0.102)
    # KL 0.9 of the target: error -0.1.
    assert adaptive_kl_coef(0.1, kl=0.9, target=1.0, steps=10, horizon=100) == pytest.approx(0.099)


def test_whiten_constant_gives_zeros():
    values = torch.full((2, 3), 0.7)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.equal(masked_whiten(values, mask), torch.zeros(2, 3))
    varied = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, 99.0]])
    whitened = masked_whiten(varied, mask)
    real = whitened[mask.bool()]
    assert real.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert real.pow(2).mean().item() == pytest.approx(1.0, abs=1e-5)
    assert whitened[1, 1].item() == 0.0


# ---------------------------------------------------------------------------- trainer on a real env

from agents.ppo.rollout import (  # noqa: E402
    episode_from_state,
    generate_steps,
    line_end_token_ids,
)
from agents.ppo.trainer import PPOTrainer  # noqa: E402
from reasoning_gym.env import ReasoningEnv  # noqa: E402
from reasoning_gym.tasks.base import Problem, Task  # noqa: E402
from reasoning_gym.testing import tiny_causal_lm  # noqa: E402


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


def _letter_env() -> ReasoningEnv:
    return ReasoningEnv(
        task=_LetterTask(), tokenizer="byte", prm="oracle", max_steps=3, max_step_tokens=6
    )


def _tiny_config(tmp_path, **overrides) -> PPOConfig:
    settings = dict(
        model="tiny",
        num_updates=2,
        episodes_per_update=4,
        num_minibatches=2,
        update_epochs=1,
        max_steps=3,
        max_step_tokens=6,
        learning_rate=1e-3,
        output_dir=str(tmp_path / "run"),
        checkpoint_every=1,
        tensorboard=False,
        progress_bar=False,
    )
    settings.update(overrides)
    return PPOConfig(**settings)


def _tiny_trainer(config: PPOConfig) -> PPOTrainer:
    return PPOTrainer(config, env_fn=_letter_env, model=tiny_causal_lm(259, hidden_size=32))


def test_env_rewards_land_on_step_tokens():
    env = _letter_env()
    env.reset(options={"index": 3})
    rewards = []
    for action in (np.array([ord("x")]), np.zeros(0, dtype=np.int64), np.array([ord("A")] * 2)):
        _, reward, terminated, _, _ = env.step(action)
        rewards.append(float(reward))
    assert terminated
    episode = episode_from_state(env.get_state(), len(env.separator_ids), 3, 0, True)
    # Tokens: "x" (0), "\n" (1), "\n" of the empty step (2), "A" (3), "A" (4), "\n" (5).
    assert episode.step_lengths == [1, 0, 2]
    token_rewards = episode.token_rewards()
    expected = np.zeros(6)
    expected[[0, 2, 4]] = rewards
    np.testing.assert_allclose(token_rewards, expected)
    # The empty step is invalid and carries the environment's invalid-step reward.
    assert rewards[1] == pytest.approx(-0.1)


@pytest.mark.slow
def test_one_update_lowers_batch_loss(tmp_path):
    trainer = _tiny_trainer(_tiny_config(tmp_path, num_minibatches=1, vf_coef=0.5))
    episodes, _ = trainer.collect_rollout()
    token_rewards, nonfinite = trainer.shape_rewards(episodes)
    assert nonfinite == 0
    batch = collate_episodes(episodes, trainer.pad_token_id, token_rewards)
    data = trainer.compute_advantages(batch)
    before = trainer.batch_loss(batch, data)
    # Rollout and update forward passes agree, so the first ratio is 1.
    assert before["losses/approx_kl"] == pytest.approx(0.0, abs=1e-6)
    params_before = [p.detach().clone() for p in trainer.policy.actor_parameters()]

    trainer.optimize(batch, data)

    after = trainer.batch_loss(batch, data)
    changed = [
        not torch.equal(old, new)
        for old, new in zip(params_before, trainer.policy.actor_parameters(), strict=True)
    ]
    assert all(changed)
    assert after["losses/loss"] < before["losses/loss"]


@pytest.mark.slow
def test_resume_reproduces_next_update(tmp_path):
    uninterrupted = _tiny_trainer(_tiny_config(tmp_path / "a"))
    uninterrupted.train()

    first = _tiny_trainer(_tiny_config(tmp_path / "b", num_updates=1))
    first.train()
    resumed = _tiny_trainer(_tiny_config(tmp_path / "b"))
    assert resumed.update == 1
    history = resumed.train()
    assert len(history) == 1

    for expected, actual in zip(
        uninterrupted.policy.parameters(), resumed.policy.parameters(), strict=True
    ):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert resumed.problem_cursor == uninterrupted.problem_cursor
    rows = (tmp_path / "b" / "run" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header and one row per update, no duplicates


class _BrokenVerifierTask(_LetterTask):
    """Every step is a final answer and the verifier returns NaN."""

    def verify(self, problem: Problem, answer_text: str) -> float:
        return float("nan")

    def is_final_answer(self, text: str) -> bool:
        return True


def test_nonfinite_reward_skips_batch(tmp_path):
    def env_fn():
        return ReasoningEnv(
            task=_BrokenVerifierTask(), tokenizer="byte", prm=None, max_steps=2, max_step_tokens=4
        )

    config = _tiny_config(tmp_path, num_updates=1, nonfinite_reward="skip_batch")
    trainer = PPOTrainer(config, env_fn=env_fn, model=tiny_causal_lm(259, hidden_size=32))
    params_before = [p.detach().clone() for p in trainer.policy.actor_parameters()]
    metrics = trainer.train_step()
    assert metrics["rollout/nonfinite_rewards"] > 0
    assert metrics["rollout/skipped"] == 1.0
    for old, new in zip(params_before, trainer.policy.actor_parameters(), strict=True):
        assert torch.equal(old, new)


@pytest.mark.slow
def test_nonfinite_reward_clipped_to_zero(tmp_path):
    def env_fn():
        return ReasoningEnv(
            task=_BrokenVerifierTask(), tokenizer="byte", prm=None, max_steps=2, max_step_tokens=4
        )

    trainer = PPOTrainer(
        _tiny_config(tmp_path, num_updates=1), env_fn=env_fn, model=tiny_causal_lm(259, 32)
    )
    episodes, _ = trainer.collect_rollout()
    token_rewards, nonfinite = trainer.shape_rewards(episodes)
    assert nonfinite == len(episodes)
    for rewards in token_rewards:
        assert np.all(rewards == 0.0)
    metrics = trainer.train_step()
    assert metrics["rollout/skipped"] == 0.0
    assert math.isfinite(metrics["losses/loss"])


@pytest.mark.slow
def test_lora_with_separate_critic(tmp_path):
    config = _tiny_config(
        tmp_path, num_updates=1, use_lora=True, lora_r=2, critic="separate", critic_model="tiny"
    )
    trainer = PPOTrainer(
        config,
        env_fn=_letter_env,
        model=tiny_causal_lm(259, hidden_size=32),
        critic_model=tiny_causal_lm(259, hidden_size=16, seed=1),
    )
    actor = trainer.policy.actor
    frozen = {n: p.detach().clone() for n, p in actor.named_parameters() if not p.requires_grad}
    adapters = {n: p.detach().clone() for n, p in actor.named_parameters() if p.requires_grad}
    assert adapters and all("lora_" in name for name in adapters)

    metrics = trainer.train_step()

    # LoRA B starts at zero, so the actor equals the reference during the first rollout.
    assert metrics["rollout/kl_per_episode"] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(metrics["losses/value_loss"])
    params = dict(actor.named_parameters())
    assert all(torch.equal(params[name], value) for name, value in frozen.items())
    assert any(not torch.equal(params[name], value) for name, value in adapters.items())


class _StubTokenizer:
    vocab_size = 5

    def decode(self, ids):
        return ["a", "\n", ".\n", "\n\n", "b"][ids[0]]


def test_line_end_token_ids():
    # Id 1 is the separator itself; ids 2 and 3 end with it.
    assert line_end_token_ids(_StubTokenizer(), "\n", [1]) == [2, 3]


def test_generate_steps_stop_rules():
    model = tiny_causal_lm(259, hidden_size=32)
    context = np.arange(40, 60)
    greedy = int(model(input_ids=torch.as_tensor(context)[None]).logits[0, -1].argmax())

    def run(**kwargs):
        settings = dict(separator_ids=[], eos_ids=[], line_end_ids=())
        settings.update(kwargs)
        return generate_steps(
            model, [context], max_new_tokens=5, temperature=0.0, generator=None,
            pad_token_id=256, **settings,
        )[0].tolist()  # fmt: skip

    assert len(run()) == 5
    # A line-end token ends the step and stays in it.
    assert run(line_end_ids=[greedy]) == [greedy]
    # The separator ends the step and is removed (the environment appends it).
    assert run(separator_ids=[greedy]) == []
    assert run(eos_ids=[greedy]) == []


@pytest.mark.slow
def test_grad_accumulation_matches_full_minibatch(tmp_path):
    trainers = []
    for accum in (1, 2):
        config = _tiny_config(
            tmp_path / f"accum{accum}",
            num_updates=1,
            num_minibatches=1,
            grad_accum_steps=accum,
            max_grad_norm=1e6,  # no clipping, so the gradients are compared unscaled
        )
        trainer = _tiny_trainer(config)
        trainer.train_step()
        trainers.append(trainer)
    # Micro-batch losses are divided by the minibatch's token count, so the summed
    # gradients equal the full minibatch's gradient up to float rounding. With one
    # minibatch and one epoch, .grad still contains that gradient after the update.
    compared = 0
    for full, accumulated in zip(
        trainers[0].policy.parameters(), trainers[1].policy.parameters(), strict=True
    ):
        if full.grad is None:
            continue
        torch.testing.assert_close(accumulated.grad, full.grad, rtol=1e-4, atol=1e-7)
        compared += 1
    assert compared > 0
