"""Step-level beam search guided by a process reward model."""

from __future__ import annotations

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


class BeamSearchAgent(SearchAgent):
    """Keep the ``beam_width`` best partial solutions, extending each by ``expansion`` steps.

    Each round, every unfinished beam proposes ``expansion`` next steps in one batched
    ``policy.propose`` call and all new steps are scored in one batched PRM call.
    Identical steps proposed for the same parent are merged. The new children and the
    finished beams kept so far compete for the ``beam_width`` places by their aggregated
    PRM score, so a finished beam stays until better candidates push it out. The search
    stops when every kept beam has finished or ``max_depth`` rounds have run, and commits
    the best kept beam (finished answers first).

    The first round starts from the root alone, so it proposes ``expansion`` first steps,
    not ``beam_width * expansion``; when the PRM cannot rank first steps, the search
    explores fewer of them than best-of-N with the same budget.

    Args:
        policy: Step policy; sample with a temperature above 0 so the proposals differ.
        beam_width: Number of beams kept (B).
        expansion: Steps proposed per beam and round (k).
        aggregation: How a beam's step scores are ranked (``"min"``, ``"last"``, ...).
        prm: ``"env"`` (the environment's PRM) or a ProcessRewardModel.
        sampling: Sampling settings; None uses the policy's.
        max_depth: Maximum number of steps; None uses ``env.max_steps``.
        seed: Base seed of the per-problem sampling seed.
    """

    name = "beam"
    needs_prm = True

    def __init__(
        self,
        policy: StepPolicy,
        beam_width: int = 4,
        expansion: int = 4,
        aggregation: str = "min",
        prm: ProcessRewardModel | str | None = "env",
        sampling: SamplingConfig | None = None,
        max_depth: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(policy, prm=prm, sampling=sampling, max_depth=max_depth, seed=seed)
        if beam_width < 1:
            raise ValueError(f"beam_width={beam_width} must be at least 1")
        if expansion < 1:
            raise ValueError(f"expansion={expansion} must be at least 1")
        self.beam_width = int(beam_width)
        self.expansion = int(expansion)
        self.aggregation = validate_score_method(aggregation)

    def search(self, context: SearchContext, max_depth: int) -> EpisodeRecord:
        beams: list[Candidate | None] = [None]  # None stands for the root
        rounds = 0
        for _ in range(max_depth):
            active = [b for b in beams if b is None or not b.ends]
            if not active:
                break
            states = [context.root if b is None else b.state for b in active]
            proposals = context.propose(states, n=self.expansion)
            groups = context.expand(active, proposals, merge_duplicates=True)
            rounds += 1
            finished = [b for b in beams if b is not None and b.ends]
            pool = finished + [child for group in groups for child in group]
            # sorted() is stable, so ties keep finished beams first, then proposal order.
            pool = sorted(pool, key=lambda c: trajectory_score(c, self.aggregation), reverse=True)
            beams = list(pool[: self.beam_width])

        final_beams = [b for b in beams if b is not None]
        best = max(
            range(len(final_beams)),
            key=lambda i: (
                final_beams[i].is_final,
                trajectory_score(final_beams[i], self.aggregation),
                -i,
            ),
        )
        chosen = final_beams[best]
        score = trajectory_score(chosen, self.aggregation)
        details = {
            "rounds": rounds,
            "beams": [
                {
                    "steps": b.depth,
                    "final": b.is_final,
                    "score": trajectory_score(b, self.aggregation),
                }
                for b in final_beams
            ],
        }
        return context.finish(self.name, chosen, score, details)
