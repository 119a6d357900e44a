"""One-trajectory agents: greedy decoding and a single sample."""

from __future__ import annotations

from typing import Any

from agents.base import EpisodeRecord, SearchAgent, SearchContext
from reasoning_gym.policies.base import SamplingConfig, StepPolicy
from reasoning_gym.prm.base import ProcessRewardModel


class SampleAgent(SearchAgent):
    """Generate one solution step by step and commit it (no PRM calls).

    Args:
        policy: Step policy.
        sampling: Sampling settings; None uses the policy's.
        max_depth: Maximum number of steps; None uses ``env.max_steps``.
        seed: Base seed of the per-problem sampling seed.
    """

    name = "sample"

    def __init__(
        self,
        policy: StepPolicy,
        sampling: SamplingConfig | None = None,
        max_depth: int | None = None,
        seed: int | None = None,
        prm: ProcessRewardModel | str | None = None,
    ):
        super().__init__(policy, prm=prm, sampling=sampling, max_depth=max_depth, seed=seed)

    def search(self, context: SearchContext, max_depth: int) -> EpisodeRecord:
        (last,) = context.sample_solutions(1, max_depth, score=context.prm is not None)
        return context.finish(self.name, last, None, {})


class GreedyAgent(SampleAgent):
    """Generate one solution with greedy decoding (temperature 0) and commit it."""

    name = "greedy"

    def __init__(
        self,
        policy: StepPolicy,
        max_step_tokens: int | None = None,
        max_depth: int | None = None,
        **kwargs: Any,
    ):
        step_tokens = max_step_tokens or policy.sampling.max_step_tokens
        greedy = SamplingConfig(temperature=0.0, max_step_tokens=step_tokens)
        super().__init__(policy, sampling=greedy, max_depth=max_depth, **kwargs)
