"""Process reward models: one batched interface, several kinds, and their evaluation."""

from reasoning_gym.prm.base import (
    AGGREGATIONS,
    CallablePRM,
    ProcessRewardModel,
    StepQuery,
    aggregate,
)
from reasoning_gym.prm.registry import PRM_FACTORIES, make_prm

__all__ = [
    "AGGREGATIONS",
    "CallablePRM",
    "PRM_FACTORIES",
    "ProcessRewardModel",
    "StepQuery",
    "aggregate",
    "make_prm",
]
