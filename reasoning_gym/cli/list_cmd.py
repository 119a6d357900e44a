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
    from reasoning_gym.tasks import registered_tasks

    if not details:
        return registered_tasks()
    return [_describe_task(name) for name in registered_tasks()]


def _describe_task(name: str) -> str:
    """One line on a task: step checker, size and difficulty knobs.

    Built-in tasks are described from their class, so dataset tasks load no data and
    never reach for a hub; user tasks are built with their default options.
    """
    import importlib

    from reasoning_gym.tasks import BUILTIN_TASKS, Task, make_task

    if name in BUILTIN_TASKS:
        module_name, attribute = BUILTIN_TASKS[name][1].split(":")
        task_class = getattr(importlib.import_module(module_name), attribute)
        has_checker = task_class.check_step is not Task.check_step
        size = "unbounded" if task_class.num_problems is Task.num_problems else "dataset"
        ranges = task_class.difficulty_ranges
    else:
        try:
            task = make_task(name)
        except (TypeError, ValueError, OSError) as error:
            return f"{name}  (cannot be built without options: {error})"
        has_checker = task.has_step_checker
        size = "unbounded" if task.num_problems is None else f"{task.num_problems} problems"
        ranges = task.difficulty_ranges
    knobs = ", ".join(f"{knob} in [{low:g}, {high:g}]" for knob, (low, high) in ranges.items())
    checker = "step checker" if has_checker else "no step checker"
    return f"{name}  ({checker}; {size}; difficulty: {knobs or 'none'})"


def _agents() -> list[str]:
    from reasoning_gym.cli.agents_registry import AGENTS

    return [
        f"{name}  {'(runs a model, --model) ' if spec.needs_model else ''}{spec.description}"
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
