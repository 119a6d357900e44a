"""Self-consistency: sample N solutions and commit one from the largest group of
equivalent final answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


@dataclass
class AnswerGroup:
    """Answers judged equivalent to the group's first answer.

    Attributes:
        answer: The first answer of the group (its representative).
        members: Indices of the solutions in the group.
        weight: Total vote weight of the members.
    """

    answer: str
    members: list[int] = field(default_factory=list)
    weight: float = 0.0


def group_answers(
    answers: Sequence[str | None],
    weights: Sequence[float] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> list[AnswerGroup]:
    """Group answers by equivalence to each group's representative and sum their weights.

    Args:
        answers: Extracted answer of each solution; None (no answer) does not vote.
        weights: Vote weight of each solution; None gives every solution weight 1.
        equivalent: Equivalence test; defaults to
            ``reasoning_gym.verify.answers.answers_equivalent``, so ``0.5``, ``1/2`` and
            ``\\frac{1}{2}`` vote together.

    Returns:
        Groups in order of first appearance.
    """
    if weights is not None and len(weights) != len(answers):
        raise ValueError(
            f"weights has {len(weights)} entries but answers has {len(answers)}; "
            "pass one weight per answer"
        )
    if equivalent is None:
        from reasoning_gym.verify.answers import answers_equivalent as equivalent
    groups: list[AnswerGroup] = []
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        weight = 1.0 if weights is None else float(weights[index])
        for group in groups:
            if group.answer == answer or equivalent(group.answer, answer):
                break
        else:
            group = AnswerGroup(answer)
            groups.append(group)
        group.members.append(index)
        group.weight += weight
    return groups


class SelfConsistencyAgent(SearchAgent):
    """Majority vote over equivalent final answers of ``n`` sampled solutions.

    With ``weighting="prm"`` each solution votes with its PRM aggregate score instead of 1.
    The winning group is the heaviest, and ties go to the group seen first. The committed
    solution is the group's highest-scored member when weighting by the PRM, else its
    first member. When no solution has a final answer, the first solution is committed.

    Args:
        policy: Step policy; sample with a temperature above 0.
        n: Number of solutions.
        weighting: ``"count"`` (one vote each) or ``"prm"``.
        aggregation: PRM aggregation of the vote weight (``"min"``, ``"last"``, ...).
        prm: ``"env"`` (the environment's PRM), None, or a ProcessRewardModel.
        sampling: Sampling settings; None uses the policy's.
        max_depth: Maximum number of steps; None uses ``env.max_steps``.
        seed: Base seed of the per-problem sampling seed.
    """

    name = "self_consistency"

    def __init__(
        self,
        policy: StepPolicy,
        n: int = 4,
        weighting: str = "count",
        aggregation: str = "last",
        prm: ProcessRewardModel | str | None = "env",
        sampling: SamplingConfig | None = None,
        max_depth: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(policy, prm=prm, sampling=sampling, max_depth=max_depth, seed=seed)
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        if weighting not in ("count", "prm"):
            raise ValueError(f"weighting={weighting!r} is invalid; use 'count' or 'prm'")
        self.n = int(n)
        self.weighting = weighting
        self.aggregation = validate_score_method(aggregation)
        self.needs_prm = weighting == "prm" and aggregation != "logprob"

    def search(self, context: SearchContext, max_depth: int) -> EpisodeRecord:
        solutions = context.sample_solutions(self.n, max_depth, score=self.needs_prm)
        chosen, weight, details = self.select(solutions)
        return context.finish(self.name, solutions[chosen], weight, details)

    def select(self, solutions: Sequence[Candidate]) -> tuple[int, float | None, dict[str, Any]]:
        """Vote over ``solutions`` (any number, for example a prefix of a larger pool).

        Returns:
            ``(index, weight, details)``: the chosen solution and its group's vote weight;
            index 0 and weight None when no solution has a final answer.
        """
        from reasoning_gym.verify.answers import extract_answer

        if not solutions:
            raise ValueError("solutions is empty; pass at least one solution")
        answers = [extract_answer(s.text) if s.is_final else None for s in solutions]
        scores = None
        if self.weighting == "prm":
            scores = [trajectory_score(s, self.aggregation) for s in solutions]
        groups = group_answers(answers, scores)
        details: dict[str, Any] = {
            "answers": answers,
            "votes": [
                {"answer": g.answer, "members": g.members, "weight": g.weight} for g in groups
            ],
        }
        if not groups:
            return 0, None, details
        winner = max(range(len(groups)), key=lambda i: (groups[i].weight, -i))
        members = groups[winner].members
        chosen = members[0] if scores is None else max(members, key=lambda i: (scores[i], -i))
        details["chosen"] = chosen
        return chosen, groups[winner].weight, details
