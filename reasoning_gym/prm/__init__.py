"""Process reward models: one batched interface, several kinds, and their evaluation."""

from reasoning_gym.prm.base import (
    AGGREGATIONS,
    CallablePRM,
    ProcessRewardModel,
    StepQuery,
    aggregate,
)


def make_prm(spec, task=None, **kwargs):
    """Build a PRM from a name, an instance or a callable; see ``registry.make_prm``."""
    from reasoning_gym.prm.registry import make_prm as _make_prm

    return _make_prm(spec, task=task, **kwargs)


__all__ = [
    "AGGREGATIONS",
    "CallablePRM",
    "ProcessRewardModel",
    "StepQuery",
    "aggregate",
    "make_prm",
]
