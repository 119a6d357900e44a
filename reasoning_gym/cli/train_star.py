"""`reasoning-gym train star`: STaR self-training with rationalization on a Reasoning task.

Example::

    reasoning-gym train star --env Reasoning-Arithmetic-v0 --model smollm2-135m \\
        --rounds 3 --train-problems 64 --eval-problems 32 --output-dir runs/star-arith

Each finished round is saved under ``--output-dir`` and a rerun resumes after it.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from reasoning_gym.cli.train_ppo import parse_task_kwargs

# (flag, StarConfig field, type, help). Defaults come from StarConfig.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--rounds", "rounds", int, "number of STaR rounds"),
    ("--train-problems", "num_train_problems", int, "training problems per round"),
    ("--eval-problems", "num_eval_problems", int, "held-out problems evaluated per round"),
    ("--train-start", "train_start", int, "index of the first training problem"),
    ("--eval-start", "eval_start", int, "index of the first held-out problem"),
    ("--task-seed", "task_seed", int, "seed of procedural tasks"),
    ("--hint-template", "hint_template", str, "hinted question, with {question} and {answer}"),
    ("--temperature", "temperature", float, "sampling temperature of rationales (0: greedy)"),
    ("--max-steps", "max_steps", int, "steps per episode before truncation"),
    ("--max-step-tokens", "max_step_tokens", int, "maximum tokens generated per step"),
    ("--max-context-tokens", "max_context_tokens", int, "context length that truncates"),
    ("--lr", "learning_rate", float, "SFT learning rate"),
    ("--epochs", "num_train_epochs", float, "SFT epochs per round"),
    ("--batch-size", "batch_size", int, "SFT batch size per device"),
    ("--device", "device", str, "torch device, e.g. cpu or cuda"),
    ("--seed", "seed", int, "seed of sampling and SFT data order"),
    ("--output-dir", "output_dir", str, "folder of round checkpoints, JSON and plot"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `train star` to ``parser``."""
    from agents.star import StarConfig

    defaults = StarConfig()
    parser.add_argument(
        "--env", required=True, help="environment id or task name, e.g. Reasoning-Arithmetic-v0"
    )
    parser.add_argument(
        "--model", default=None, help="base model: short name or saved model folder"
    )
    for flag, name, kind, help_text in _OPTIONS:
        default = getattr(defaults, name) if name != "eval_start" else None
        shown = "after the training problems" if name == "eval_start" else default
        parser.add_argument(
            flag, dest=name, type=kind, default=default, help=f"{help_text} (default: {shown})"
        )
    parser.add_argument(
        "--no-rationalization",
        dest="rationalize",
        action="store_false",
        help="keep only directly solved problems (no second try with the answer as a hint)",
    )
    parser.add_argument(
        "--continue-training",
        action="store_true",
        help="fine-tune the previous round's model instead of restarting from the base model",
    )
    parser.add_argument(
        "--task-kwargs", default="{}", help="task options as JSON, e.g. '{\"difficulty\": 1}'"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide progress bars"
    )


def task_from_env_id(env_id: str) -> str:
    """Return the task name of an environment id or task name."""
    from reasoning_gym.registration import env_ids, resolve_env_id

    task_name = env_ids()[resolve_env_id(env_id)]
    if task_name is None:
        raise ValueError(
            f"--env {env_id!r} names no task; use a task-specific id such as "
            "Reasoning-Arithmetic-v0 or a task name"
        )
    return task_name


def run(args: argparse.Namespace) -> int:
    """Run STaR as configured by ``args``; prints one line per round."""
    from agents.star import StarConfig, StarTrainer
    from reasoning_gym.models import DEFAULT_MODEL

    names = {f.name for f in fields(StarConfig)}
    values = {name: getattr(args, name) for _, name, _, _ in _OPTIONS if name in names}
    values["rationalize"] = args.rationalize
    values["continue_training"] = args.continue_training
    config = StarConfig(**values)
    trainer = StarTrainer(
        model=args.model or DEFAULT_MODEL,
        tokenizer=None,
        task=task_from_env_id(args.env),
        config=config,
        task_kwargs=parse_task_kwargs(args.task_kwargs),
        progress=args.progress,
    )
    history = trainer.run()
    print("round  attempted  kept_direct  kept_rationalized  heldout_accuracy")
    for row in history:
        print(
            f"{row['round']:>5}  {row['attempted']:>9}  {row['kept_direct']:>11}  "
            f"{row['kept_rationalized']:>17}  {row['heldout_accuracy']:>16.3f}"
        )
    print(f"history and plot written to {config.output_dir}")
    return 0
