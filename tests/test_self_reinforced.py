"""Tests of the self-reinforced loop: one round end to end on tiny models, then resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from agents.self_reinforced import SelfReinforcedLoop
from agents.self_reinforced_config import SelfReinforcedConfig
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.prm.learned import LearnedPRM
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer


def _env() -> ReasoningEnv:
    return ReasoningEnv(
        task="arithmetic", tokenizer="byte", prm=None, reward_mode="outcome",
        max_steps=2, max_step_tokens=6, task_kwargs={"num_operations": 1, "max_operand": 5},
    )  # fmt: skip


def _prm() -> LearnedPRM:
    tokenizer = tiny_tokenizer()
    return LearnedPRM.from_base(tiny_causal_lm(len(tokenizer), hidden_size=32), tokenizer)


def _config(tmp_path, **overrides) -> SelfReinforcedConfig:
    settings = dict(
        model="tiny",
        rounds=1,
        labeler="mc",
        mc_rollouts=2,
        label_problems=2,
        label_samples=2,
        prm_train_steps=2,
        prm_batch_size=2,
        updates_per_round=1,
        episodes_per_update=4,
        group_size=2,
        learning_rate=1e-3,
        max_steps=2,
        max_step_tokens=6,
        eval_problems=2,
        prm_eval_solutions=8,
        output_dir=str(tmp_path / "run"),
        progress_bar=False,
    )
    settings.update(overrides)
    return SelfReinforcedConfig(**settings)


def _loop(config: SelfReinforcedConfig) -> SelfReinforcedLoop:
    return SelfReinforcedLoop(
        config, model=tiny_causal_lm(259, hidden_size=32), env_fn=_env, prm=_prm()
    )


def test_config_rejects_invalid():
    with pytest.raises(ValueError, match="labeler='human'"):
        SelfReinforcedConfig(labeler="human")
    with pytest.raises(ValueError, match="policy_update='dpo'"):
        SelfReinforcedConfig(policy_update="dpo")
    with pytest.raises(ValueError, match="multiple of group_size"):
        SelfReinforcedConfig(episodes_per_update=6, group_size=4)
    with pytest.raises(ValueError, match="round_stride"):
        SelfReinforcedConfig(round_stride=10)


def test_one_round_then_resume(tmp_path):
    loop = _loop(_config(tmp_path))
    prm_before = [p.detach().clone() for p in loop.prm.model.parameters()]
    policy_before = [p.detach().clone() for p in loop.actor.parameters()]
    history = loop.run()

    assert [record["round"] for record in history] == [0, 1]
    record = history[1]
    assert record["labelled_solutions"] == 4.0
    assert record["labels_total"] > 0
    assert 0.0 <= record["label_oracle_agreement"] <= 1.0
    assert math.isfinite(record["prm_loss"])
    assert 0.0 <= record["prm_f1"] <= 1.0
    assert record["policy_updates"] == 1.0
    assert any(
        not torch.equal(a, b) for a, b in zip(prm_before, loop.prm.model.parameters(), strict=True)
    )
    assert any(
        not torch.equal(a, b) for a, b in zip(policy_before, loop.actor.parameters(), strict=True)
    )

    run_dir = tmp_path / "run"
    round_dir = run_dir / "rounds" / "round_001"
    for name in ("policy.pt", "labels.jsonl", "round.json", "prm/prm_config.json"):
        assert (round_dir / name).is_file(), name
    assert (run_dir / "curves.png").stat().st_size > 0
    assert len(json.loads((run_dir / "history.json").read_text())) == 2
    assert not any(p.name.startswith(".tmp-") for p in (run_dir / "rounds").iterdir())

    resumed = _loop(_config(tmp_path))
    assert resumed.completed_rounds == 1
    assert len(resumed.labels) == len(loop.labels)
    for a, b in zip(loop.actor.parameters(), resumed.actor.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    for a, b in zip(loop.prm.model.parameters(), resumed.prm.model.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)

    def fail(round_number):
        raise AssertionError(f"round {round_number} was run again")

    resumed.run_round = fail
    assert [record["round"] for record in resumed.run()] == [0, 1]
