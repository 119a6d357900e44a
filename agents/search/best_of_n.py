"""Best-of-N: sample N full solutions and keep the one with the highest score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.base import (
    Candidate,
    EpisodeRecord,
    SearchAgent,
    SearchContext,
    trajectory_score,
    validate_score_method,
)
from reasoning_gym.policies.base import SamplingConfig, StepPolicy
from reasoning_gym.prm.base import ProcessRewardModel


class BestOfNAgent(SearchAgent):
    """Sample ``n`` solutions and commit the best by a PRM aggregate or the policy logprob.

    The score never uses the gold answer: ``"last"`` (the PRM's score of the final step,
    an outcome score), ``"min"``, ``"product"`` or ``"mean"`` of the step scores, or
    ``"logprob"`` (mean token log-probability, no PRM). Solutions with a final answer
    beat solutions without one; ties go to the earlier sample.

    Args:
        policy: Step policy; sample with a temperature above 0 to get distinct solutions.
        n: Number of solutions.
        score: One of ``agents.base.SCORE_METHODS``.
        prm: ``"env"`` (the environment's PRM), None, or a ProcessRewardModel.
        sampling: Sampling settings; None uses the policy's.
        max_depth: Maximum number of steps; None uses ``env.max_steps``.
        seed: Base seed of the per-problem sampling seed.
    """

    name = "best_of_n"

    def __init__(
        self,
        policy: StepPolicy,
        n: int = 4,
        score: str = "last",
        prm: ProcessRewardModel | str | None = "env",
        sampling: SamplingConfig | None = None,
        max_depth: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(policy, prm=prm, sampling=sampling, max_depth=max_depth, seed=seed)
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        self.n = int(n)
        self.score = validate_score_method(score)
        self.needs_prm = score != "logprob"

    def search(self, context: SearchContext, max_depth: int) -> EpisodeRecord:
        solutions = context.sample_solutions(self.n, max_depth, score=self.needs_prm)
        best, score, details = self.select(solutions)
        return context.finish(self.name, solutions[best], score, details)

    def select(self, solutions: Sequence[Candidate]) -> tuple[int, float, dict[str, Any]]:
        """Pick the best of ``solutions`` (any number, for example a prefix of a larger pool).

        Returns:
            ``(index, score, details)`` of the chosen solution.
        """
        if not solutions:
            raise ValueError("solutions is empty; pass at least one solution")
        scores = [trajectory_score(s, self.score) for s in solutions]
        best = max(range(len(solutions)), key=lambda i: (solutions[i].is_final, scores[i], -i))
        details = {"scores": scores, "finals": [s.is_final for s in solutions], "chosen": best}
        return best, scores[best], details
