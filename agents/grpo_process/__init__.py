"""Process-supervised GRPO: group-normalised PRM step rewards, clipped objective, no critic."""

from agents.grpo_process.advantages import GroupAdvantages, group_step_advantages
from agents.grpo_process.config import GRPOProcessConfig

__all__ = ["GRPOProcessConfig", "GRPOProcessTrainer", "GroupAdvantages", "group_step_advantages"]


def __getattr__(name: str):
    # The trainer imports torch and transformers; load it only when it is asked for.
    if name == "GRPOProcessTrainer":
        from agents.grpo_process.trainer import GRPOProcessTrainer

        return GRPOProcessTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
