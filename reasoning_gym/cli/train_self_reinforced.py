"""`reasoning-gym train self-reinforced`: the policy and a learned PRM improve each other.

Example::

    reasoning-gym train self-reinforced --env Reasoning-Arithmetic-v0 --model smollm2-135m \\
        --rounds 3 --policy-update grpo-process --labeler mc --output-dir runs/self-reinforced
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import Any

# (flag, SelfReinforcedConfig field, type, help). Defaults come from SelfReinforcedConfig.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--env", "env_id", str, "task name or environment id, e.g. Reasoning-Arithmetic-v0"),
    ("--model", "model", str, "policy model: short name, local folder or hub id"),
    ("--prm-base", "prm_base", str, "backbone of the learned PRM (default: --model)"),
    ("--rounds", "rounds", int, "rounds in total; a resumed run counts finished ones"),
    ("--policy-update", "policy_update", str, "ppo or grpo-process"),
    ("--labeler", "labeler", str, "mc (Monte-Carlo rollouts of the policy) or oracle"),
    ("--mc-rollouts", "mc_rollouts", int, "Monte-Carlo continuations per labelled step"),
    ("--label-problems", "label_problems", int, "training problems labelled per round"),
    ("--label-samples", "label_samples", int, "solutions sampled per labelled problem"),
    ("--label-temperature", "label_temperature", float, "temperature of labelled rollouts"),
    ("--prm-steps", "prm_train_steps", int, "PRM optimizer steps per round"),
    ("--prm-batch-size", "prm_batch_size", int, "solutions per PRM optimizer step"),
    ("--prm-lr", "prm_learning_rate", float, "learning rate of the PRM"),
    ("--updates-per-round", "updates_per_round", int, "policy updates per round"),
    ("--episodes-per-update", "episodes_per_update", int, "episodes per policy update"),
    ("--group-size", "group_size", int, "solutions per problem in a GRPO group"),
    ("--lr", "learning_rate", float, "learning rate of the policy"),
    ("--kl-coef", "kl_coef", float, "KL coefficient of the policy update"),
    ("--grpo-reward-source", "grpo_reward_source", str, "process or process+outcome"),
    ("--max-steps", "max_steps", int, "steps per episode before truncation"),
    ("--max-step-tokens", "max_step_tokens", int, "maximum tokens generated per step"),
    ("--max-context-tokens", "max_context_tokens", int, "context length that truncates"),
    ("--eval-problems", "eval_problems", int, "held-out problems of the greedy accuracy"),
    ("--prm-eval-solutions", "prm_eval_solutions", int, "solutions of the PRM F1 probe (0: off)"),
    ("--seed", "seed", int, "seed of rollouts, labels and PRM batches"),
    ("--device", "device", str, "torch device, e.g. cpu or cuda"),
    ("--output-dir", "output_dir", str, "folder of rounds, history.json and curves.png"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `train self-reinforced` to ``parser``."""
    from agents.self_reinforced_config import SelfReinforcedConfig

    defaults = SelfReinforcedConfig()
    for flag, name, kind, help_text in _OPTIONS:
        default = getattr(defaults, name)
        parser.add_argument(
            flag, dest=name, type=kind, default=default, help=f"{help_text} (default: {default})"
        )
    parser.add_argument(
        "--task-kwargs",
        default="{}",
        help="task options as JSON, e.g. '{\"num_operations\": 2}' (default: {})",
    )
    parser.add_argument(
        "--policy-overrides",
        default="{}",
        help="further PPO or GRPO config fields as JSON, e.g. '{\"clip_coef\": 0.1}'",
    )
    parser.add_argument(
        "--no-resume", dest="resume", action="store_false", help="ignore finished rounds"
    )
    parser.add_argument(
        "--no-progress", dest="progress_bar", action="store_false", help="hide progress bars"
    )


def _json_object(flag: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{flag} {text!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> Any:
    """Build the SelfReinforcedConfig described by parsed arguments."""
    from agents.self_reinforced_config import SelfReinforcedConfig

    values = {name: getattr(args, name) for _, name, _, _ in _OPTIONS}
    return SelfReinforcedConfig(
        **values,
        task_kwargs=_json_object("--task-kwargs", args.task_kwargs),
        policy_overrides=_json_object("--policy-overrides", args.policy_overrides),
        resume=args.resume,
        progress_bar=args.progress_bar,
    )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    """Run the rounds and print one line per round; returns the process exit status."""
    from agents.self_reinforced import SelfReinforcedLoop
    from reasoning_gym.errors import ReasoningGymError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        loop = SelfReinforcedLoop(config)
    except (ValueError, TypeError, ReasoningGymError) as exc:
        print(f"error: {exc}")
        return 2
    history = loop.run()
    print("round  accuracy  PRM F1  labels")
    for record in history:
        labels = record.get("labels_total", 0)
        print(
            f"{record['round']:>5}  {_cell(record.get('accuracy')):>8}  "
            f"{_cell(record.get('prm_f1')):>6}  {labels:>6}"
        )
    print(f"history: {loop.output_dir / 'history.json'}, plot: {loop.output_dir / 'curves.png'}")
    return 0
