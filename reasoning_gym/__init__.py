"""reasoning_gym: reasoning as a Markov decision process over token ids.

``import reasoning_gym`` registers ``Reasoning-v0`` and one ``Reasoning-<Task>-v0`` id
per built-in task with Gymnasium.
"""

from __future__ import annotations

import logging
from importlib import metadata

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

DISTRIBUTION_NAME = "reasoning-gym-rl"
CONFLICTING_DISTRIBUTION = "reasoning-gym"


def _warn_if_conflicting_distribution() -> None:
    """Warn when PyPI's ``reasoning-gym`` is installed too: both install ``reasoning_gym``."""
    try:
        other = metadata.distribution(CONFLICTING_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return
    logger.warning(
        "both %s and %s %s are installed, and both install the import package "
        "'reasoning_gym', so one overwrites the other's files; uninstall one "
        "(pip uninstall %s) or use separate virtual environments",
        DISTRIBUTION_NAME,
        CONFLICTING_DISTRIBUTION,
        other.version,
        CONFLICTING_DISTRIBUTION,
    )


_warn_if_conflicting_distribution()

from reasoning_gym.registration import register_envs  # noqa: E402

register_envs()

from reasoning_gym.env import ReasoningEnv  # noqa: E402
from reasoning_gym.errors import (  # noqa: E402
    InvalidActionError,
    ReasoningGymError,
    ResetNeededError,
    UnknownNameError,
)
from reasoning_gym.tasks import Problem, Task, make_task, register_task  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "InvalidActionError",
    "Problem",
    "ReasoningEnv",
    "ReasoningGymError",
    "ResetNeededError",
    "Task",
    "UnknownNameError",
    "make_task",
    "register_task",
]
