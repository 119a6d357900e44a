"""Settings of the self-reinforced loop, validated when the config is built."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

POLICY_UPDATES = ("ppo", "grpo-process")
LABELERS = ("mc", "oracle")


@dataclass
class SelfReinforcedConfig:
    """Settings of :class:`agents.self_reinforced.SelfReinforcedLoop`.

    Problem indices: round ``k`` (from 1) uses the block starting at
    ``train_offset + (k - 1) * round_stride``. Its first ``label_problems`` indices are
    rolled out and labelled, and the policy update trains on the indices after them.
    Held-out accuracy uses ``eval_offset ..`` and the PRM probe ``prm_eval_offset ..``.

    Attributes:
        env_id: Task name or environment id.
        model: Policy model name or folder (``reasoning_gym.models``); also the default
            backbone of the learned PRM.
        prm_base: Backbone of the learned PRM; None uses ``model``.
        task_kwargs: Keyword arguments of the task factory.
        rounds: Rounds to run in total (a resumed run counts the finished ones).
        policy_update: ``"ppo"`` (PPO with the PRM score as process reward plus the
            outcome) or ``"grpo-process"`` (process-supervised GRPO with the PRM).
        labeler: ``"mc"`` (Monte-Carlo soft labels from ``mc_rollouts`` continuations
            of the current policy) or ``"oracle"`` (the task's exact step checker).
        mc_rollouts: Continuations per step for Monte-Carlo labels.
        label_problems: Training problems rolled out per round for labels.
        label_samples: Solutions sampled per labelled problem.
        label_temperature: Sampling temperature of the labelled rollouts and of the
            Monte-Carlo continuations.
        prm_train_steps: PRM optimizer steps per round, over all labels so far.
        prm_batch_size: Solutions per PRM optimizer step.
        prm_learning_rate: AdamW learning rate of the PRM.
        updates_per_round: Policy updates per round.
        episodes_per_update: Episodes per policy update.
        group_size: Solutions per problem in GRPO groups (``samples_per_problem``).
        learning_rate: Learning rate of the policy.
        kl_coef: KL coefficient of the policy update.
        grpo_reward_source: ``reward_source`` of the GRPO update (``"process"`` or
            ``"process+outcome"``).
        policy_overrides: Further fields of the PPO or GRPO config (for example
            ``{"clip_coef": 0.1}``).
        max_steps: Steps per episode.
        max_step_tokens: Tokens per step.
        max_context_tokens: Context length that truncates an episode.
        eval_problems: Held-out problems of the greedy accuracy.
        eval_offset: Index of the first held-out problem.
        prm_eval_solutions: Corrupted and gold solutions of the PRM probe (needs a task
            with gold steps); 0 disables the probe.
        prm_eval_offset: Index of the first problem of the PRM probe.
        train_offset: Index of the first training problem.
        round_stride: Problem indices reserved per round.
        seed: Seed of rollouts, labels and PRM batches (combined with the round).
        device: Torch device.
        output_dir: Folder of rounds, history, plot and work files.
        resume: Continue after the newest finished round in ``output_dir``.
        progress_bar: Whether to show tqdm progress bars.
    """

    env_id: str = "arithmetic"
    model: str = "smollm2-135m"
    prm_base: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    rounds: int = 3
    policy_update: str = "grpo-process"
    labeler: str = "mc"
    mc_rollouts: int = 4
    label_problems: int = 16
    label_samples: int = 2
    label_temperature: float = 1.0
    prm_train_steps: int = 50
    prm_batch_size: int = 8
    prm_learning_rate: float = 3e-4
    updates_per_round: int = 5
    episodes_per_update: int = 16
    group_size: int = 4
    learning_rate: float = 1e-5
    kl_coef: float = 0.04
    grpo_reward_source: str = "process"
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    max_steps: int = 8
    max_step_tokens: int = 64
    max_context_tokens: int = 1024
    eval_problems: int = 32
    eval_offset: int = 1_000_000
    prm_eval_solutions: int = 64
    prm_eval_offset: int = 4_000_000
    train_offset: int = 0
    round_stride: int = 100_000
    seed: int = 0
    device: str = "cpu"
    output_dir: str = "runs/self_reinforced"
    resume: bool = True
    progress_bar: bool = True

    def __post_init__(self) -> None:
        for name in (
            "rounds",
            "mc_rollouts",
            "label_problems",
            "label_samples",
            "prm_train_steps",
            "prm_batch_size",
            "updates_per_round",
            "episodes_per_update",
            "group_size",
            "max_steps",
            "max_step_tokens",
            "max_context_tokens",
            "eval_problems",
            "round_stride",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in (
            "prm_eval_solutions",
            "eval_offset",
            "prm_eval_offset",
            "train_offset",
            "seed",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r} must be a non-negative integer")
        for name in ("label_temperature", "prm_learning_rate", "learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive number")
        if not isinstance(self.kl_coef, (int, float)) or not self.kl_coef >= 0:
            raise ValueError(f"kl_coef={self.kl_coef!r} must be a number >= 0")
        if self.policy_update not in POLICY_UPDATES:
            raise ValueError(f"policy_update={self.policy_update!r} is not one of {POLICY_UPDATES}")
        if self.labeler not in LABELERS:
            raise ValueError(f"labeler={self.labeler!r} is not one of {LABELERS}")
        if self.grpo_reward_source not in ("process", "process+outcome"):
            raise ValueError(
                f"grpo_reward_source={self.grpo_reward_source!r} is invalid: use 'process' or "
                "'process+outcome' (an outcome-only update would not use the PRM)"
            )
        if self.policy_update == "grpo-process" and self.episodes_per_update % self.group_size:
            raise ValueError(
                f"episodes_per_update={self.episodes_per_update} is not a multiple of "
                f"group_size={self.group_size}; make it one"
            )
        problems_per_round = self.label_problems + self.updates_per_round * self.episodes_per_update
        if problems_per_round > self.round_stride:
            raise ValueError(
                f"a round uses up to {problems_per_round} training problems but round_stride="
                f"{self.round_stride}; raise round_stride"
            )
        if not isinstance(self.policy_overrides, dict):
            raise TypeError(f"policy_overrides must be a dict, got {self.policy_overrides!r}")

    def round_start(self, round_number: int) -> int:
        """Index of the first training problem of round ``round_number`` (from 1)."""
        return self.train_offset + (round_number - 1) * self.round_stride

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict."""
        return copy.deepcopy(dataclasses.asdict(self))
