"""`reasoning-gym train grpo-process`: process-supervised GRPO of a causal LM.

Example::

    reasoning-gym train grpo-process --env Reasoning-Arithmetic-v0 --model smollm2-135m \\
        --step-prm oracle --group-size 4 --updates 50 --output-dir runs/grpo-process
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from reasoning_gym.cli.train_ppo import add_trainer_arguments, build_config, train_and_report

# (flag, GRPOProcessConfig field, type, help). Defaults come from GRPOProcessConfig.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--env", "env_id", str, "task name or environment id, e.g. Reasoning-Arithmetic-v0"),
    ("--model", "model", str, "actor model: short name, local folder or hub id"),
    ("--step-prm", "step_prm", str, "PRM that scores each step: oracle, learned:PATH, mc:K"),
    ("--reward-source", "reward_source", str, "process, outcome or process+outcome"),
    ("--process-weight", "process_weight", float, "weight of the PRM score in a step reward"),
    ("--max-steps", "max_steps", int, "steps per episode before truncation"),
    ("--max-step-tokens", "max_step_tokens", int, "maximum tokens generated per step"),
    ("--max-context-tokens", "max_context_tokens", int, "context length that truncates"),
    ("--updates", "num_updates", int, "number of GRPO updates"),
    ("--episodes-per-update", "episodes_per_update", int, "episodes per rollout"),
    ("--group-size", "samples_per_problem", int, "solutions sampled per problem (G)"),
    ("--temperature", "temperature", float, "sampling temperature of rollouts"),
    ("--lr", "learning_rate", float, "AdamW learning rate"),
    ("--epochs", "update_epochs", int, "passes over each rollout batch"),
    ("--minibatches", "num_minibatches", int, "minibatches per epoch"),
    ("--grad-accum", "grad_accum_steps", int, "micro-batches per minibatch"),
    ("--max-grad-norm", "max_grad_norm", float, "gradient-norm clipping threshold"),
    ("--clip-coef", "clip_coef", float, "ratio clipping epsilon"),
    ("--ent-coef", "ent_coef", float, "entropy bonus weight"),
    ("--kl-coef", "kl_coef", float, "weight of the KL to the reference model in the loss"),
    ("--kl-estimator", "kl_estimator", str, "k1 or k3"),
    ("--advantage-eps", "advantage_eps", float, "group std below which advantages are 0"),
    ("--reward-clip", "reward_clip", float, "finite rewards are clipped to [-c, c]"),
    ("--nonfinite-reward", "nonfinite_reward", str, "clip (exclude NaN) or skip_batch"),
    ("--dtype", "dtype", str, "float32, bfloat16 or float16"),
    ("--device", "device", str, "torch device, e.g. cpu or cuda"),
    ("--seed", "seed", int, "seed of sampling, shuffling and problem choice"),
    ("--output-dir", "output_dir", str, "folder of metrics, logs and checkpoints"),
    ("--checkpoint-every", "checkpoint_every", int, "updates between checkpoints (0: none)"),
    ("--eval-every", "eval_every", int, "updates between greedy evaluations (0: none)"),
    ("--eval-problems", "eval_problems", int, "held-out problems per evaluation"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `train grpo-process` to ``parser``."""
    from agents.grpo_process.config import GRPOProcessConfig

    add_trainer_arguments(parser, _OPTIONS, GRPOProcessConfig())


def config_from_args(args: argparse.Namespace) -> Any:
    """Build the GRPOProcessConfig described by parsed arguments."""
    from agents.grpo_process.config import GRPOProcessConfig

    return build_config(GRPOProcessConfig, args, _OPTIONS, prm_field="step_prm")


def run(args: argparse.Namespace) -> int:
    """Train and print a summary; returns the process exit status."""

    def make_trainer(args: argparse.Namespace) -> tuple[Any, Any]:
        from agents.grpo_process.trainer import GRPOProcessTrainer

        config = config_from_args(args)
        return GRPOProcessTrainer(config), config

    def summary(last: dict[str, float]) -> str:
        return (
            f"rollout correct rate {last.get('rollout/correct_rate', math.nan):.3f}, "
            f"degenerate groups {last.get('rollout/degenerate_groups', math.nan):.2f}, "
            f"non-finite rewards {last.get('rollout/nonfinite_rewards', 0):.0f}"
        )

    return train_and_report(args, make_trainer, summary, "grpo_metrics.jsonl")
