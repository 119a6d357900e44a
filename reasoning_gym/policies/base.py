"""The step-policy interface: propose next reasoning steps for a batch of contexts."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings of a step policy.

    Attributes:
        temperature: Softmax temperature; 0 means greedy decoding.
        top_p: Nucleus-sampling mass in (0, 1].
        max_step_tokens: Maximum number of tokens generated for one step.
        seed: Seed of the policy's own torch/numpy generator; None draws fresh entropy.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_step_tokens: int = 128
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} is negative; use 0 for greedy")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} is outside (0, 1]; use 1.0 to disable it")
        if self.max_step_tokens < 1:
            raise ValueError(f"max_step_tokens={self.max_step_tokens} must be at least 1")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class StepProposal:
    """One proposed next step.

    Attributes:
        token_ids: The step's token ids, without the step separator.  # (L,) int64
        text: The decoded step.
        logprobs: Log-probability of each token of ``token_ids`` under the policy.  # (L,)
        is_final: Whether the step is a final answer.
    """

    token_ids: np.ndarray
    text: str
    logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    is_final: bool = False

    @property
    def num_tokens(self) -> int:
        return int(len(self.token_ids))


class StepPolicy(abc.ABC):
    """Proposes next steps; owns its model, never the environment."""

    name: str = "policy"

    def __init__(self, sampling: SamplingConfig | None = None):
        self.sampling = sampling or SamplingConfig()

    @abc.abstractmethod
    def propose(
        self,
        contexts: Sequence[np.ndarray],
        n: int = 1,
        sampling: SamplingConfig | None = None,
    ) -> list[list[StepProposal]]:
        """Propose ``n`` next steps for every context.

        Args:
            contexts: Token ids of each state ``s_t`` (the environment's observations).
            n: Number of proposals per context.
            sampling: Overrides ``self.sampling`` for this call.

        Returns:
            ``len(contexts)`` lists of ``n`` proposals each.
        """

    def reset(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Forget per-episode caches (called by agents between episodes)."""
