"""Gymnasium registration of the Reasoning environments.

``Reasoning-v0`` takes the task as a keyword argument; every built-in task also gets
its own id, ``Reasoning-<Name>-v0``. Registration happens once, from
``reasoning_gym/__init__.py``, so ``gym.make("reasoning_gym:Reasoning-v0")`` works
without importing the package first.
"""

from __future__ import annotations

import gymnasium as gym

from reasoning_gym.errors import UnknownNameError

ENTRY_POINT = "reasoning_gym.env:ReasoningEnv"
VECTOR_ENTRY_POINT = "reasoning_gym.vector:ReasoningVectorEnv"
GENERIC_ID = "Reasoning-v0"


def env_ids() -> dict[str, str]:
    """Map each environment id to its task name (``None`` for the generic id)."""
    from reasoning_gym.tasks import BUILTIN_TASKS

    ids = {GENERIC_ID: None}
    for task_name, (suffix, _) in BUILTIN_TASKS.items():
        ids[f"Reasoning-{suffix}-v0"] = task_name
    return ids


def register_envs() -> None:
    """Register every Reasoning environment id with Gymnasium (idempotent)."""
    for env_id, task_name in env_ids().items():
        if env_id in gym.registry:
            continue
        kwargs = {} if task_name is None else {"task": task_name}
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=kwargs,
        )


def resolve_env_id(name: str) -> str:
    """Return the registered id for ``name``, accepting a task name as a shorthand.

    Raises:
        UnknownNameError: listing the known ids and the nearest one.
    """
    ids = env_ids()
    if name in ids:
        return name
    if name.startswith("reasoning_gym:") and name.split(":", 1)[1] in ids:
        return name.split(":", 1)[1]
    for env_id, task_name in ids.items():
        if task_name is not None and name.lower() == task_name:
            return env_id
    raise UnknownNameError("environment", name, ids)
