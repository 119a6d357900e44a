"""Build a process reward model from a spec string, an instance or a callable.

Specs: ``None``/``"none"`` (no PRM), ``"auto"`` (the oracle when the task has a step
checker, else none), ``"oracle"``, ``"mc"`` or ``"mc:K"`` (Monte-Carlo rollouts with K
samples; needs ``policy=``), ``"learned:PATH"`` (a folder saved by
:meth:`LearnedPRM.save_pretrained`) and ``"judge:MODEL"`` (an LLM asked whether each step
is correct).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasoning_gym.errors import UnknownNameError
from reasoning_gym.prm.base import CallablePRM, ProcessRewardModel
from reasoning_gym.tasks.base import Task


def _require_task(name: str, task: Task | str | None) -> Task:
    if task is None:
        raise ValueError(
            f"PRM {name!r} needs a task; pass task= (a Task or a task name), or --task on "
            "the command line"
        )
    from reasoning_gym.tasks.base import make_task

    return make_task(task)


def _make_oracle(argument: str | None, task: Task | str | None, **kwargs: Any):
    from reasoning_gym.prm.oracle import OraclePRM

    if argument:
        raise ValueError(f"'oracle' takes no argument, got 'oracle:{argument}'")
    return OraclePRM(_require_task("oracle", task), **kwargs)


def _make_monte_carlo(argument: str | None, task: Task | str | None, **kwargs: Any):
    from reasoning_gym.prm.monte_carlo import MonteCarloPRM

    if argument:
        try:
            kwargs["k"] = int(argument)
        except ValueError:
            raise ValueError(
                f"'mc:{argument}' is invalid: the argument is the number of rollouts, e.g. 'mc:8'"
            ) from None
    policy = kwargs.pop("policy", None)
    if policy is None:
        raise ValueError("PRM 'mc' needs a rollout policy; pass policy=<StepPolicy>")
    if isinstance(policy, str):
        try:
            from reasoning_gym.policies import make_policy
        except ImportError as error:
            raise ValueError(
                f"policy {policy!r} is a name but reasoning_gym.policies.make_policy is not "
                "available; pass a StepPolicy instance"
            ) from error
        policy = make_policy(policy)
    return MonteCarloPRM(policy, _require_task("mc", task), **kwargs)


def _make_learned(argument: str | None, task: Task | str | None, **kwargs: Any):
    from reasoning_gym.prm.learned import LearnedPRM

    if not argument:
        raise ValueError("'learned' needs a folder: 'learned:PATH' (saved by save_pretrained)")
    return LearnedPRM.from_pretrained(argument, **kwargs)


def _make_judge(argument: str | None, task: Task | str | None, **kwargs: Any):
    from reasoning_gym.prm.judge import JudgePRM

    if not argument:
        raise ValueError("'judge' needs a model: 'judge:MODEL' (a short name, folder or hub id)")
    return JudgePRM.from_name(argument, **kwargs)


#: PRM name -> factory(argument after the colon or None, task, **kwargs).
PRM_FACTORIES: dict[str, Callable[..., ProcessRewardModel | None]] = {
    "oracle": _make_oracle,
    "mc": _make_monte_carlo,
    "learned": _make_learned,
    "judge": _make_judge,
}


def make_prm(spec: Any, task: Task | str | None = None, **kwargs: Any) -> ProcessRewardModel | None:
    """Build a PRM from a spec.

    Args:
        spec: None or ``"none"``; ``"auto"``; ``"oracle"``; ``"mc"``/``"mc:K"``;
            ``"learned:PATH"``; ``"judge:MODEL"``; a ProcessRewardModel (returned as is);
            or a callable ``fn(StepQuery) -> float`` (wrapped in CallablePRM, and keyword
            arguments such as ``batched=True`` go to it).
        task: The task (or its name); needed by ``auto``, ``oracle`` and ``mc``.
        **kwargs: Passed to the PRM's constructor (``policy=`` for ``mc``).

    Returns:
        The PRM, or None for no process reward.
    """
    if spec is None:
        return None
    if isinstance(spec, ProcessRewardModel):
        return spec
    if isinstance(spec, str):
        name, _, argument = spec.partition(":")
        name = name.strip().lower()
        if name == "none" and not argument:
            return None
        if name == "auto" and not argument:
            resolved = _require_task("auto", task)
            return _make_oracle(None, resolved, **kwargs) if resolved.has_step_checker else None
        if name not in PRM_FACTORIES:
            raise UnknownNameError("PRM", spec, [*PRM_FACTORIES, "none", "auto"])
        return PRM_FACTORIES[name](argument or None, task, **kwargs)
    if callable(spec):
        return CallablePRM(spec, **kwargs)
    raise TypeError(
        f"cannot build a PRM from {spec!r}: pass None, a spec string such as 'oracle' or "
        "'mc:8', a ProcessRewardModel, or a callable fn(StepQuery) -> float"
    )
