"""Built-in tasks and the registry that names them.

Built-in tasks are listed once, in ``BUILTIN_TASKS``, and imported lazily; user tasks
are added with :func:`register_task`.
"""

from __future__ import annotations

import importlib

from reasoning_gym.tasks.base import (
    Problem,
    Task,
    make_task,
    problem_rng,
    register_task,
    registered_tasks,
)

#: Task name -> (environment id suffix, "module:factory").
BUILTIN_TASKS: dict[str, tuple[str, str]] = {
    "arithmetic": ("Arithmetic", "reasoning_gym.tasks.arithmetic:ArithmeticTask"),
    "gsm8k": ("GSM8K", "reasoning_gym.tasks.gsm8k:GSM8KTask"),
    "jsonl": ("JSONL", "reasoning_gym.tasks.jsonl:JsonlTask"),
    "linear_equation": ("LinearEquation", "reasoning_gym.tasks.linear_equation:LinearEquationTask"),
    "countdown": ("Countdown", "reasoning_gym.tasks.countdown:CountdownTask"),
    "fractions": ("Fractions", "reasoning_gym.tasks.fractions:FractionsTask"),
    "unit_conversion": ("UnitConversion", "reasoning_gym.tasks.unit_conversion:UnitConversionTask"),
    "boolean_logic": ("BooleanLogic", "reasoning_gym.tasks.boolean_logic:BooleanLogicTask"),
    "sorting": ("Sorting", "reasoning_gym.tasks.sorting:SortingTask"),
    "shortest_path": ("ShortestPath", "reasoning_gym.tasks.shortest_path:ShortestPathTask"),
    "modular": ("Modular", "reasoning_gym.tasks.modular:ModularTask"),
    "distractor_word": ("DistractorWord", "reasoning_gym.tasks.distractor_word:DistractorWordTask"),
    "mixture": ("Mixture", "reasoning_gym.tasks.mixture:MixtureTask"),
}

_builtins_registered = False


def _lazy_factory(target: str):
    module_name, attribute = target.split(":")

    def resolve():
        return getattr(importlib.import_module(module_name), attribute)

    def factory(**kwargs):
        return resolve()(**kwargs)

    factory.__qualname__ = f"lazy[{target}]"
    # make_task checks options against the real class's signature before calling.
    factory.resolve = resolve
    return factory


def ensure_builtin_tasks() -> None:
    """Register every entry of ``BUILTIN_TASKS`` once (idempotent)."""
    global _builtins_registered
    if _builtins_registered:
        return
    _builtins_registered = True
    for name, (_, target) in BUILTIN_TASKS.items():
        register_task(name, _lazy_factory(target), overwrite=True)


__all__ = [
    "BUILTIN_TASKS",
    "Problem",
    "Task",
    "ensure_builtin_tasks",
    "make_task",
    "problem_rng",
    "register_task",
    "registered_tasks",
]
