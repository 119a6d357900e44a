"""``reasoning-gym train ALGORITHM``: dispatch to one module per training algorithm."""

from __future__ import annotations

import argparse

from reasoning_gym.cli.dispatch import add_lazy_subcommands, run_chosen

ALGORITHMS: dict[str, tuple[str, str]] = {
    "ppo": ("reasoning_gym.cli.train_ppo", "step-level PPO with process rewards"),
    "star": ("reasoning_gym.cli.train_star", "STaR self-training with rationalization"),
    "grpo": ("reasoning_gym.cli.train_grpo", "TRL GRPOTrainer on a Reasoning environment"),
    "grpo-process": (
        "reasoning_gym.cli.train_grpo_process",
        "process-supervised GRPO (group-normalised step rewards)",
    ),
    "self-reinforced": (
        "reasoning_gym.cli.train_self_reinforced",
        "alternate PRM learning and policy improvement",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_lazy_subcommands(
        parser, ALGORITHMS, getattr(parser, "remaining_argv", []), dest="algorithm"
    )


def run(args: argparse.Namespace) -> int:
    return run_chosen(args)
