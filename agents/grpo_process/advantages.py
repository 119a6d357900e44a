"""Step advantages of process-supervised GRPO.

For one problem, a group of ``G`` solutions is sampled and every step is scored by a
PRM. All step rewards of the group are normalised together,
``r~_{i,j} = (r_{i,j} - mean) / std`` over every step of every solution in the group,
and the advantage of every token of step ``j`` of solution ``i`` is the return of the
normalised rewards from that step on, ``A_{i,j} = sum_{k >= j} r~_{i,k}``
(Shao et al., 2024, "DeepSeekMath", section 4.1.3, process supervision).

Numerical safety: a group whose rewards are all equal, or whose standard deviation is
below ``eps``, gets zero advantages, so float32 residue is never divided into noise.
NaN or infinite rewards are excluded from the statistics and their steps get a
normalised reward of 0; the count is returned so callers can report it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupAdvantages:
    """Per-step advantages of one group.

    Attributes:
        advantages: One array per solution, of shape (num_steps_i,).
        normalized_rewards: One array per solution, ``r~`` of each step.
        num_nonfinite: Rewards that were NaN or infinite and were excluded.
        degenerate: True when the spread was below ``eps`` (all advantages are 0).
    """

    advantages: list[np.ndarray]
    normalized_rewards: list[np.ndarray]
    num_nonfinite: int
    degenerate: bool


def group_step_advantages(
    step_rewards: Sequence[Sequence[float] | np.ndarray], eps: float = 1e-6
) -> GroupAdvantages:
    """Normalise a group's step rewards together and accumulate them into advantages.

    Args:
        step_rewards: For each solution of the group, the PRM reward of each step.
        eps: Standard deviations below this count as zero.

    Returns:
        The advantages of every step of every solution.
    """
    if eps <= 0:
        raise ValueError(f"eps={eps} must be positive")
    rewards = [np.asarray(r, dtype=np.float64).reshape(-1) for r in step_rewards]
    flat = np.concatenate(rewards) if rewards else np.zeros(0)
    finite = np.isfinite(flat)
    num_nonfinite = int((~finite).sum())
    values = flat[finite]
    degenerate = values.size < 2 or float(values.std()) < eps
    mean = float(values.mean()) if values.size else 0.0
    std = float(values.std()) if values.size else 0.0

    normalized, advantages = [], []
    for r in rewards:
        if degenerate:
            z = np.zeros_like(r)
        else:
            z = np.where(np.isfinite(r), (r - mean) / std, 0.0)
        normalized.append(z)
        # Reverse cumulative sum: A_j = sum_{k >= j} z_k.
        advantages.append(np.cumsum(z[::-1])[::-1].copy())
    return GroupAdvantages(advantages, normalized, num_nonfinite, degenerate)
