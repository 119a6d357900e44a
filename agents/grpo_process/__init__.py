"""Process-supervised GRPO: group-normalised PRM step rewards, clipped objective, no critic."""

from agents.grpo_process.advantages import GroupAdvantages, group_step_advantages

__all__ = ["GroupAdvantages", "group_step_advantages"]
