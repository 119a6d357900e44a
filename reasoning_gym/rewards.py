"""Reward modes of the reasoning MDP.

With PRM score ``v_t = PRM(s_t, a_t)`` in [0, 1], verifier score ``o`` in [0, 1] for a
final answer, ``w_p = process_weight`` and ``w_o = outcome_weight``:

- ``outcome``:          ``r_t = 0`` for intermediate steps, ``r_T = w_o * o``.
- ``process``:          ``r_t = w_p * v_t`` for every step, the final one included.
- ``process+outcome``:  ``r_t = w_p * v_t``, and the final step adds ``w_o * o``.
- ``potential``:        ``r_t = gamma * Phi(s_{t+1}) - Phi(s_t)`` with ``Phi(s) = w_p * v``
  of the last step in ``s`` (``Phi(s_0) = 0``, ``Phi`` of a terminal state = 0), and the
  final step adds ``w_o * o``. Potential-based shaping leaves the optimal policy
  unchanged (Ng, Harada and Russell, 1999, "Policy invariance under reward
  transformations").

An invalid step (empty, whitespace-only, or only separators) is not scored by the PRM:
it gets ``invalid_step_reward`` and leaves ``Phi`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

REWARD_MODES = ("outcome", "process", "process+outcome", "potential")


@dataclass(frozen=True)
class RewardConfig:
    """Reward settings of a Reasoning environment.

    Attributes:
        mode: One of ``REWARD_MODES``.
        process_weight: Weight ``w_p`` of the PRM score.
        outcome_weight: Weight ``w_o`` of the verifier score.
        gamma: Discount used by potential-based shaping (use the learner's gamma).
        invalid_step_reward: Reward of an empty or whitespace-only step.
    """

    mode: str = "process+outcome"
    process_weight: float = 1.0
    outcome_weight: float = 1.0
    gamma: float = 1.0
    invalid_step_reward: float = -0.1

    def __post_init__(self) -> None:
        if self.mode not in REWARD_MODES:
            from reasoning_gym.errors import UnknownNameError

            raise UnknownNameError("reward mode", self.mode, REWARD_MODES)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma={self.gamma} is outside [0, 1]")

    @property
    def needs_prm(self) -> bool:
        return self.mode != "outcome"


@dataclass(frozen=True)
class StepOutcome:
    """Scores and flags of one transition, the input of a reward mode."""

    prm_score: float | None  # v_t, None when unscored
    outcome_score: float | None  # o, set on a final answer only
    potential_before: float  # Phi(s_t)
    terminal: bool  # s_{t+1} is terminal (final answer)
    invalid: bool


def _outcome_part(config: RewardConfig, outcome: StepOutcome) -> float:
    if outcome.outcome_score is None:
        return 0.0
    return config.outcome_weight * outcome.outcome_score


def _process_part(config: RewardConfig, outcome: StepOutcome) -> float:
    return config.process_weight * (outcome.prm_score or 0.0)


def potential_after(config: RewardConfig, outcome: StepOutcome) -> float:
    """``Phi(s_{t+1})``: 0 at a terminal state, unchanged after an invalid step."""
    if outcome.terminal:
        return 0.0
    if outcome.invalid or outcome.prm_score is None:
        return outcome.potential_before
    return config.process_weight * outcome.prm_score


def _potential_reward(config: RewardConfig, outcome: StepOutcome) -> float:
    shaping = config.gamma * potential_after(config, outcome) - outcome.potential_before
    return shaping + _outcome_part(config, outcome)


_MODES: dict[str, Callable[[RewardConfig, StepOutcome], float]] = {
    "outcome": _outcome_part,
    "process": _process_part,
    "process+outcome": lambda c, o: _process_part(c, o) + _outcome_part(c, o),
    "potential": _potential_reward,
}


def compute_reward(config: RewardConfig, outcome: StepOutcome) -> float:
    """Reward of one transition under ``config.mode``."""
    reward = _MODES[config.mode](config, outcome)
    if outcome.invalid:
        reward += config.invalid_step_reward
    return float(reward)
