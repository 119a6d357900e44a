"""`reasoning-gym train ppo`: step-level PPO of a causal LM on a Reasoning environment.

Example::

    reasoning-gym train ppo --env Reasoning-Arithmetic-v0 --model smollm2-135m \\
        --updates 50 --episodes-per-update 16 --output-dir runs/ppo-arith
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import Any

# (flag, PPOConfig field, type, help). Defaults come from PPOConfig.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--env", "env_id", str, "task name or environment id, e.g. Reasoning-Arithmetic-v0"),
    ("--model", "model", str, "actor model: short name, local folder or hub id"),
    ("--reward-mode", "reward_mode", str, "outcome, process, process+outcome or potential"),
    ("--prm", "prm", str, "process reward model of the environment: auto, oracle, none, ..."),
    ("--process-weight", "process_weight", float, "weight of the PRM score in the reward"),
    ("--outcome-weight", "outcome_weight", float, "weight of the verifier score"),
    ("--max-steps", "max_steps", int, "steps per episode before truncation"),
    ("--max-step-tokens", "max_step_tokens", int, "maximum tokens generated per step"),
    ("--max-context-tokens", "max_context_tokens", int, "context length that truncates"),
    ("--updates", "num_updates", int, "number of PPO updates"),
    ("--episodes-per-update", "episodes_per_update", int, "episodes per rollout"),
    ("--samples-per-problem", "samples_per_problem", int, "episodes per problem per rollout"),
    ("--temperature", "temperature", float, "sampling temperature of rollouts"),
    ("--lr", "learning_rate", float, "AdamW learning rate"),
    ("--critic-lr", "critic_learning_rate", float, "learning rate of the critic"),
    ("--epochs", "update_epochs", int, "passes over each rollout batch"),
    ("--minibatches", "num_minibatches", int, "minibatches per epoch"),
    ("--grad-accum", "grad_accum_steps", int, "micro-batches per minibatch"),
    ("--max-grad-norm", "max_grad_norm", float, "gradient-norm clipping threshold"),
    ("--gamma", "gamma", float, "per-token discount"),
    ("--gae-lambda", "gae_lambda", float, "GAE lambda"),
    ("--clip-coef", "clip_coef", float, "PPO ratio clipping epsilon"),
    ("--vf-clip-coef", "vf_clip_coef", float, "value clipping range"),
    ("--vf-coef", "vf_coef", float, "value loss weight"),
    ("--ent-coef", "ent_coef", float, "entropy bonus weight"),
    ("--target-kl", "target_kl", float, "approximate KL that stops an update's epochs"),
    ("--kl-coef", "kl_coef", float, "per-token KL penalty coefficient"),
    ("--kl-estimator", "kl_estimator", str, "k1 or k3"),
    ("--adaptive-kl-target", "adaptive_kl_target", float, "target KL per episode"),
    ("--reward-clip", "reward_clip", float, "rewards are clipped to [-c, c]"),
    ("--nonfinite-reward", "nonfinite_reward", str, "clip or skip_batch"),
    ("--reward-normalization", "reward_normalization", str, "none, batch or group"),
    ("--critic", "critic", str, "value_head or separate"),
    ("--critic-model", "critic_model", str, "model of a separate critic"),
    ("--lora-r", "lora_r", int, "LoRA rank (with --lora)"),
    ("--lora-alpha", "lora_alpha", int, "LoRA alpha (with --lora)"),
    ("--dtype", "dtype", str, "float32, bfloat16 or float16"),
    ("--device", "device", str, "torch device, e.g. cpu or cuda"),
    ("--seed", "seed", int, "seed of sampling, shuffling and problem choice"),
    ("--output-dir", "output_dir", str, "folder of metrics, logs and checkpoints"),
    ("--checkpoint-every", "checkpoint_every", int, "updates between checkpoints (0: none)"),
    ("--eval-every", "eval_every", int, "updates between greedy evaluations (0: none)"),
    ("--eval-problems", "eval_problems", int, "held-out problems per evaluation"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `train ppo` to ``parser``."""
    from agents.ppo.config import PPOConfig

    add_trainer_arguments(parser, _OPTIONS, PPOConfig())


def add_trainer_arguments(
    parser: argparse.ArgumentParser, options: list[tuple[str, str, Any, str]], defaults: Any
) -> None:
    """Add one option per ``(flag, config field, type, help)`` row plus the run flags.

    Defaults come from the config instance ``defaults``; PPO and process GRPO share this.
    """
    for flag, name, kind, help_text in options:
        default = getattr(defaults, name)
        parser.add_argument(
            flag, dest=name, type=kind, default=default, help=f"{help_text} (default: {default})"
        )
    parser.add_argument("--lora", dest="use_lora", action="store_true", help="train LoRA adapters")
    parser.add_argument(
        "--task-kwargs",
        default="{}",
        help="task options as JSON, e.g. '{\"num_operations\": 2}' (default: {})",
    )
    parser.add_argument(
        "--no-resume", dest="resume", action="store_false", help="ignore existing checkpoints"
    )
    parser.add_argument(
        "--no-tensorboard", dest="tensorboard", action="store_false", help="skip TensorBoard logs"
    )
    parser.add_argument(
        "--no-progress", dest="progress_bar", action="store_false", help="hide the progress bar"
    )
    parser.add_argument(
        "--save-model", default=None, help="folder to save the trained actor into at the end"
    )


def parse_task_kwargs(text: str) -> dict[str, Any]:
    """Parse ``--task-kwargs``; raise ValueError unless it is a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--task-kwargs {text!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"--task-kwargs must be a JSON object, got {text!r}")
    return value


def build_config(
    config_class: Any,
    args: argparse.Namespace,
    options: list[tuple[str, str, Any, str]],
    prm_field: str,
) -> Any:
    """Build ``config_class`` from parsed arguments; ``none`` in ``prm_field`` means no PRM."""
    values = {name: getattr(args, name) for _, name, _, _ in options}
    if values[prm_field] in ("none", "None"):
        values[prm_field] = None
    return config_class(
        **values,
        use_lora=args.use_lora,
        task_kwargs=parse_task_kwargs(args.task_kwargs),
        resume=args.resume,
        tensorboard=args.tensorboard,
        progress_bar=args.progress_bar,
    )


def config_from_args(args: argparse.Namespace) -> Any:
    """Build the PPOConfig described by parsed arguments."""
    from agents.ppo.config import PPOConfig

    return build_config(PPOConfig, args, _OPTIONS, prm_field="prm")


def train_and_report(
    args: argparse.Namespace,
    make_trainer: Any,
    summary: Any,
    metrics_file: str,
) -> int:
    """Build a trainer from ``args``, train it and print a summary; return the exit status.

    Args:
        args: Parsed arguments with ``save_model``.
        make_trainer: ``make_trainer(args) -> (trainer, config)``; a ValueError, TypeError
            or ReasoningGymError there is bad input and gives exit status 2.
        summary: ``summary(last_metrics) -> str``, the part of the final line after the
            update count.
        metrics_file: Name of the metrics file inside ``trainer.output_dir``.
    """
    from reasoning_gym.errors import ReasoningGymError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        trainer, config = make_trainer(args)
    except (ValueError, TypeError, ReasoningGymError) as exc:
        print(f"error: {exc}")
        return 2
    history = trainer.train()
    if args.save_model:
        trainer.save_model(args.save_model)
        print(f"saved the actor to {args.save_model}")
    if history:
        print(f"finished update {trainer.update}/{config.num_updates}: {summary(history[-1])}")
    else:
        print(f"nothing to do: the run in {config.output_dir} is at update {trainer.update}")
    print(f"metrics: {trainer.output_dir / metrics_file}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Train and print a summary; returns the process exit status."""

    def make_trainer(args: argparse.Namespace) -> tuple[Any, Any]:
        from agents.ppo.trainer import PPOTrainer

        config = config_from_args(args)
        return PPOTrainer(config), config

    def summary(last: dict[str, float]) -> str:
        return (
            f"rollout correct rate {last.get('rollout/correct_rate', math.nan):.3f}, "
            f"mean return {last.get('rollout/env_return_mean', math.nan):.3f}"
        )

    return train_and_report(args, make_trainer, summary, "metrics.csv")
