"""``reasoning-gym list``: environments, tasks, agents, process reward models and models."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger(__name__)

SECTIONS = ("envs", "tasks", "agents", "prms", "models")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``reasoning-gym list``."""
    parser.add_argument(
        "section",
        nargs="?",
        choices=SECTIONS,
        default=None,
        help="list only this section (default: all)",
    )
    parser.add_argument(
        "--tasks",
        action="store_true",
        help="show each task's difficulty knobs and whether it has a step checker",
    )


def _envs() -> list[str]:
    import gymnasium as gym

    import reasoning_gym  # noqa: F401  (registers the environment ids)

    return sorted(env_id for env_id in gym.registry if env_id.startswith("Reasoning"))


def _task_lines(details: bool) -> list[str]:
    from reasoning_gym.tasks import make_task, registered_tasks

    lines = []
    for name in registered_tasks():
        if not details:
            lines.append(name)
            continue
        try:
            task = make_task(name)
        except (TypeError, ValueError, OSError, ImportError) as exc:
            # Dataset tasks may need a data file; show why instead of failing the listing.
            lines.append(f"{name}  (not built without options: {exc})")
            continue
        knobs = ", ".join(
            f"{knob} in [{low:g}, {high:g}]" for knob, (low, high) in task.difficulty_ranges.items()
        )
        checker = "step checker" if task.has_step_checker else "no step checker"
        size = task.num_problems
        count = "unbounded" if size is None else f"{size} problems"
        lines.append(f"{name}  ({checker}; {count}; difficulty: {knobs or 'none'})")
    return lines


def _agents() -> list[str]:
    from reasoning_gym.cli.agents_registry import AGENTS

    return [
        f"{name}  {'(needs --model) ' if spec.needs_model else ''}{spec.description}"
        for name, spec in sorted(AGENTS.items())
    ]


def _prms() -> list[str]:
    from reasoning_gym.prm.registry import PRM_FACTORIES

    return ["none", "auto", *sorted(PRM_FACTORIES)]


def _models() -> list[str]:
    from reasoning_gym.models import MODELS, is_pulled

    return [
        f"{name}  ({'pulled' if is_pulled(name) else 'not pulled'}) {spec.description}"
        for name, spec in sorted(MODELS.items())
    ]


def run(args: argparse.Namespace) -> int:
    """Print the requested sections; returns the exit status."""
    producers = {
        "envs": ("Environments", _envs),
        "tasks": ("Tasks", lambda: _task_lines(args.tasks)),
        "agents": ("Agents", _agents),
        "prms": ("Process reward models", _prms),
        "models": ("Models", _models),
    }
    chosen = [args.section] if args.section else list(SECTIONS)
    if args.tasks and args.section is None:
        chosen = ["tasks"]
    for key in chosen:
        title, produce = producers[key]
        print(f"{title}:")
        for line in produce():
            print(f"  {line}")
    return 0
