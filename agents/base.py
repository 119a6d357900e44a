"""The search-agent interface, its result record, and snapshot-based expansion helpers.

Search agents explore an episode through :meth:`ReasoningEnv.get_state` snapshots. A
candidate step is prepared with ``env.prepare_step`` and scored by the agent's own PRM
call. A step that keeps the episode running is committed with
``env.commit_step(pending, score, outcome_score=None)`` to get the child snapshot. A step
that would end the episode (a final answer or a truncation) is never committed during the
search, because the environment reads the gold answer when an episode ends. Only the
single chosen trajectory is committed for real, by replaying its token ids through
``env.step`` from the root snapshot, so the environment's verifier is the only reader of
the gold answer and the environment's own reward model sets the rewards.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal
from reasoning_gym.prm.base import AGGREGATIONS, ProcessRewardModel, aggregate
from reasoning_gym.state import ReasoningState

logger = logging.getLogger(__name__)

# (agent name, PRM name) pairs already warned about a PRM that may read the gold answer.
_WARNED: set[tuple[str, str]] = set()

#: Ways to turn a trajectory's step scores into one number: the PRM aggregations plus
#: ``"logprob"``, the policy's mean token log-probability (needs no PRM).
SCORE_METHODS = (*AGGREGATIONS, "logprob")


@dataclass
class Compute:
    """Compute that one agent run spent on one problem.

    Attributes:
        generated_tokens: Tokens the policy generated, over all proposals (kept or not).
        policy_calls: Calls to ``policy.propose``.
        prm_calls: Batched calls of the agent's PRM during the search that reached the
            model (calls served entirely by the score cache are not counted). The
            environment's reward scoring of the committed trajectory is not counted.
        prm_items: Steps the agent's PRM actually scored during the search (cache misses).
        wall_time_s: Wall-clock seconds of the whole run, commit included.
    """

    generated_tokens: int = 0
    policy_calls: int = 0
    prm_calls: int = 0
    prm_items: int = 0
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpisodeRecord:
    """Result of one agent run: the committed trajectory, its outcome and its cost.

    Attributes:
        agent: Name of the agent.
        problem_id: Id of the problem.
        steps: Text of each committed step.
        rewards: Reward the environment returned for each committed step.
        answer: Extracted final answer, or None when the trajectory has none.
        correct: Whether the environment's verifier accepted the answer.
        terminated: Whether the trajectory ends with a final answer.
        truncated: Whether the environment truncated the trajectory.
        score: The agent's own score of the chosen trajectory (PRM aggregate, vote
            weight, ...), or None when the agent does not score.
        compute: Compute spent on the problem.
        details: Agent-specific diagnostics (candidates, votes, visit counts, ...).
    """

    agent: str
    problem_id: str
    steps: tuple[str, ...]
    rewards: tuple[float, ...]
    answer: str | None
    correct: bool
    terminated: bool
    truncated: bool
    score: float | None
    compute: Compute
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy."""
        out = asdict(self)
        out["steps"] = list(self.steps)
        out["rewards"] = list(self.rewards)
        return out


#: Alias of EpisodeRecord.
SearchResult = EpisodeRecord


@runtime_checkable
class Agent(Protocol):
    """Anything that solves one episode of a ReasoningEnv and reports what it cost."""

    name: str

    def run(self, env: Any, options: dict[str, Any] | None = None) -> EpisodeRecord:
        """Reset ``env`` with ``options``, solve the problem and commit one trajectory."""
        ...


@dataclass(frozen=True, eq=False)
class Candidate:
    """One scored step appended to a search snapshot, linked to the step before it.

    Attributes:
        parent: Snapshot before the step.
        state: Snapshot after the step, or None when the step ends the episode (a final
            answer or a truncation), because committing it would make the environment
            read the gold answer.
        ids: Token ids of the step as the environment cut them.  # (L,)
        text: Decoded step.
        score: PRM score of the step; None without a PRM, 0.0 for an invalid step.
        logprob: Sum of the policy's log-probabilities of the generated tokens.
        num_tokens: Tokens the policy generated for the step.
        is_final: Whether the environment treats the step as a final answer.
        ends: Whether the step ends the episode (final answer or truncation).
        previous: The candidate this one continues, or None for a first step.
        depth: Number of steps from the root up to and including this one.
        copies: How many proposals for the same parent produced this exact step
            (above 1 only when duplicates were merged).
    """

    parent: ReasoningState
    state: ReasoningState | None
    ids: np.ndarray
    text: str
    score: float | None
    logprob: float
    num_tokens: int
    is_final: bool
    ends: bool
    previous: Candidate | None
    depth: int
    copies: int = 1

    def path(self) -> list[Candidate]:
        """Return the candidates from the first step to this one."""
        out: list[Candidate] = []
        node: Candidate | None = self
        while node is not None:
            out.append(node)
            node = node.previous
        return out[::-1]

    def path_scores(self) -> list[float]:
        """PRM score of every step on the path (an unscored step counts as 0.0)."""
        return [0.0 if c.score is None else c.score for c in self.path()]

    def path_logprob(self) -> float:
        """Mean log-probability per generated token over the path."""
        path = self.path()
        tokens = sum(c.num_tokens for c in path)
        return sum(c.logprob for c in path) / max(tokens, 1)


def trajectory_score(candidate: Candidate, method: str) -> float:
    """Score a trajectory by a PRM aggregation of its step scores or by ``"logprob"``."""
    if method == "logprob":
        return candidate.path_logprob()
    return aggregate(candidate.path_scores(), method)


def validate_score_method(method: str) -> str:
    """Return ``method`` if it is one of SCORE_METHODS, else raise UnknownNameError."""
    if method not in SCORE_METHODS:
        from reasoning_gym.errors import UnknownNameError

        raise UnknownNameError("score method", method, SCORE_METHODS)
    return method


def step_key(ids: np.ndarray) -> bytes:
    """Hashable key of a step's token ids, used to merge duplicate proposals."""
    return np.ascontiguousarray(ids, dtype=np.int64).tobytes()


def problem_seed(seed: int | None, problem_id: str) -> int | None:
    """Seed of one problem's sampling, derived from the agent seed and the problem id.

    The result depends on nothing else, so a problem gets the same samples whatever
    problems ran before it.
    """
    if seed is None:
        return None
    digest = hashlib.blake2b(f"{seed}:{problem_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**62)


def would_end_episode(env: Any, pending: Any) -> bool:
    """Return True when committing ``pending`` would end the episode (answer or truncation).

    Mirrors the end conditions of ``ReasoningEnv.commit_step``.
    """
    state = pending.state
    length = state.length + len(pending.ids) + len(env.separator_ids)
    return bool(
        pending.is_final
        or state.num_steps + 1 >= env.max_steps
        or pending.context_full
        or length >= env.max_context_tokens
    )


class SearchContext:
    """Per-run bookkeeping: the environment, policy, PRM and the compute counters.

    Args:
        env: The ReasoningEnv, already reset.
        policy: Step policy that proposes steps.
        prm: PRM the agent scores steps with, or None.
        sampling: Sampling settings passed to every ``propose`` call.
    """

    def __init__(
        self,
        env: Any,
        policy: StepPolicy,
        prm: ProcessRewardModel | None,
        sampling: SamplingConfig | None,
    ):
        self.env = env
        self.policy = policy
        self.prm = prm
        self.sampling = sampling
        self.compute = Compute()
        self.root: ReasoningState = env.get_state()
        self._start = time.perf_counter()
        self._prm_calls_start = prm.calls if prm is not None else 0
        self._prm_items_start = prm.items_scored if prm is not None else 0

    def propose(self, states: Sequence[ReasoningState], n: int) -> list[list[StepProposal]]:
        """Propose ``n`` steps for every state in one batched policy call."""
        if not states:
            return []
        proposals = self.policy.propose([s.ids for s in states], n=n, sampling=self.sampling)
        if len(proposals) != len(states) or any(len(group) != n for group in proposals):
            raise ValueError(
                f"{type(self.policy).__name__}.propose returned "
                f"{[len(group) for group in proposals]} proposals for {len(states)} contexts "
                f"with n={n}; it must return len(contexts) lists of n proposals"
            )
        self.compute.policy_calls += 1
        self.compute.generated_tokens += sum(p.num_tokens for group in proposals for p in group)
        return proposals

    def expand(
        self,
        parents: Sequence[Candidate | None],
        proposals: Sequence[Sequence[StepProposal]],
        score: bool = True,
        merge_duplicates: bool = False,
    ) -> list[list[Candidate]]:
        """Turn proposals into scored child candidates without reading the gold answer.

        Args:
            parents: The candidate each group of proposals continues (None for the root).
            proposals: One group of proposals per parent.
            score: Whether to score the children with the PRM (one batched call for all).
            merge_duplicates: Whether to keep only the first of identical steps (same
                token ids after the environment's cutting) proposed for the same parent.

        Returns:
            One list of children per parent.
        """
        env = self.env
        pendings: list[list[Any]] = []
        kept_proposals: list[list[StepProposal]] = []
        copies: list[list[int]] = []
        for parent, group in zip(parents, proposals, strict=True):
            parent_state = self.root if parent is None else parent.state
            if parent_state is None:
                raise ValueError("cannot expand a candidate that ends the episode")
            env.set_state(parent_state)
            seen: dict[bytes, int] = {}
            row: list[Any] = []
            row_proposals: list[StepProposal] = []
            row_copies: list[int] = []
            for proposal in group:
                pending = env.prepare_step(proposal.token_ids)
                if merge_duplicates:
                    key = step_key(pending.ids)
                    if key in seen:
                        row_copies[seen[key]] += 1
                        continue
                    seen[key] = len(row)
                row.append(pending)
                row_proposals.append(proposal)
                row_copies.append(1)
            pendings.append(row)
            kept_proposals.append(row_proposals)
            copies.append(row_copies)

        flat = [pending for row in pendings for pending in row]
        scores = self.score_pendings(flat) if score else [None] * len(flat)

        children: list[list[Candidate]] = []
        position = 0
        rows = zip(parents, pendings, kept_proposals, copies, strict=True)
        for parent, row, row_proposals, row_copies in rows:
            parent_state = self.root if parent is None else parent.state
            out: list[Candidate] = []
            for pending, proposal, count in zip(row, row_proposals, row_copies, strict=True):
                step_score = scores[position]
                position += 1
                ends = would_end_episode(env, pending)
                state = None
                if not ends:
                    env.set_state(parent_state)
                    env.commit_step(pending, step_score, None)
                    state = env.get_state()
                out.append(
                    Candidate(
                        parent=parent_state,
                        state=state,
                        ids=pending.ids,
                        text=pending.text,
                        score=step_score,
                        logprob=float(np.sum(proposal.logprobs)),
                        num_tokens=proposal.num_tokens,
                        is_final=pending.is_final,
                        ends=ends,
                        previous=parent,
                        depth=1 if parent is None else parent.depth + 1,
                        copies=count,
                    )
                )
            children.append(out)
        env.set_state(self.root)
        return children

    def score_pendings(self, pendings: Sequence[Any]) -> list[float | None]:
        """PRM scores of pending steps in one batched call; invalid steps score 0.0."""
        if self.prm is None:
            return [None] * len(pendings)
        scores: list[float | None] = [0.0] * len(pendings)
        valid = [i for i, pending in enumerate(pendings) if not pending.invalid]
        if not valid:
            return scores
        values = self.prm.score([pendings[i].query() for i in valid])
        for i, value in zip(valid, values, strict=True):
            scores[i] = float(value)
        return scores

    def complete(
        self, candidates: Sequence[Candidate], max_depth: int, score: bool = True
    ) -> list[Candidate]:
        """Continue each candidate with one proposal per step until it ends or hits max_depth.

        All unfinished trajectories advance together: one policy call and one PRM call
        per depth. Returns the last candidate of each trajectory, in input order.
        """
        ends = list(candidates)
        while True:
            active = [i for i, c in enumerate(ends) if not c.ends and c.depth < max_depth]
            if not active:
                return ends
            parents = [ends[i] for i in active]
            proposals = self.propose([p.state for p in parents], n=1)
            children = self.expand(parents, proposals, score=score)
            for i, group in zip(active, children, strict=True):
                ends[i] = group[0]

    def sample_solutions(self, n: int, max_depth: int, score: bool = True) -> list[Candidate]:
        """Sample ``n`` full solutions: ``n`` first steps in one call, then advance together."""
        first = self.expand([None], self.propose([self.root], n=n), score=score)[0]
        return self.complete(first, max_depth, score=score)

    def finish(
        self, agent: str, chosen: Candidate | None, score: float | None, details: dict[str, Any]
    ) -> EpisodeRecord:
        """Commit the chosen trajectory through ``env.step`` and build the record."""
        if self.prm is not None:
            # Counted before the commit: the environment's reward scoring of the committed
            # trajectory is not search compute.
            self.compute.prm_calls = self.prm.calls - self._prm_calls_start
            self.compute.prm_items = self.prm.items_scored - self._prm_items_start
        env = self.env
        env.set_state(self.root)
        path = chosen.path() if chosen is not None else []
        rewards: list[float] = []
        info: dict[str, Any] = {}
        terminated = truncated = False
        for candidate in path:
            _, reward, terminated, truncated, info = env.step(candidate.ids)
            rewards.append(float(reward))
        self.compute.wall_time_s = time.perf_counter() - self._start
        return EpisodeRecord(
            agent=agent,
            problem_id=self.root.problem.id,
            steps=tuple(c.text for c in path),
            rewards=tuple(rewards),
            answer=info.get("answer"),
            correct=bool(info.get("correct", False)),
            terminated=bool(terminated),
            truncated=bool(truncated),
            score=score,
            compute=self.compute,
            details=details,
        )


class SearchAgent:
    """Shared settings and setup of the search agents.

    Args:
        policy: Step policy that proposes steps.
        prm: PRM used for search decisions; ``"env"`` (default) uses the environment's
            PRM at run time, None uses none.
        sampling: Sampling settings of every ``propose`` call; None uses the policy's.
        max_depth: Maximum number of steps of a trajectory; None uses ``env.max_steps``.
        seed: Base seed; each problem samples with a seed derived from it and the
            problem id. None leaves the policy's generator as it is.
    """

    name = "search"
    needs_prm = False

    def __init__(
        self,
        policy: StepPolicy,
        prm: ProcessRewardModel | str | None = "env",
        sampling: SamplingConfig | None = None,
        max_depth: int | None = None,
        seed: int | None = None,
    ):
        if not isinstance(policy, StepPolicy):
            raise TypeError(f"policy must be a StepPolicy, got {type(policy).__name__}")
        if isinstance(prm, str) and prm != "env":
            raise ValueError(f"prm={prm!r} is invalid; pass 'env', None or a ProcessRewardModel")
        if prm is not None and not isinstance(prm, (str, ProcessRewardModel)):
            raise TypeError(
                f"prm must be 'env', None or a ProcessRewardModel, got {type(prm).__name__}; "
                "wrap a function with reasoning_gym.prm.CallablePRM"
            )
        if max_depth is not None and max_depth < 1:
            raise ValueError(f"max_depth={max_depth} must be at least 1 (or None for max_steps)")
        self.policy = policy
        self.prm = prm
        self.sampling = sampling
        self.max_depth = max_depth
        self.seed = seed

    def run(self, env: Any, options: dict[str, Any] | None = None) -> EpisodeRecord:
        """Reset ``env`` with ``options``, search, and commit the chosen trajectory."""
        env.reset(options=options)
        self.policy.reset()
        prm = env.prm if self.prm == "env" else self.prm
        if self.needs_prm and prm is None:
            raise ValueError(
                f"agent {self.name!r} needs a PRM but none is set; pass prm= to the agent "
                "or create the environment with prm=..."
            )
        if prm is not None and prm.uses_gold_answer and (self.name, prm.name) not in _WARNED:
            _WARNED.add((self.name, prm.name))
            logger.warning(
                "agent %r searches with PRM %r, which may read the gold answer; use its "
                "accuracy as an upper bound, not a test-time result (logged once)",
                self.name,
                prm.name,
            )
        sampling = self.sampling or self.policy.sampling
        seed = problem_seed(self.seed, env.problem.id)
        if seed is not None:
            sampling = SamplingConfig(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_step_tokens=sampling.max_step_tokens,
                seed=seed,
            )
        context = SearchContext(env, self.policy, prm, sampling)
        depth = self.max_depth if self.max_depth is not None else env.max_steps
        return self.search(context, depth)

    def search(self, context: SearchContext, max_depth: int) -> EpisodeRecord:
        """Search from ``context.root`` and return ``context.finish(...)``."""
        raise NotImplementedError
