"""Monte-Carlo tree search over reasoning steps with PUCT selection and PRM values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass(eq=False)
class TreeNode:
    """A node of the search tree: the root (no candidate) or one step after its parent.

    Attributes:
        candidate: The step this node adds, or None for the root.
        prior: PUCT prior: the share of the parent's proposals that produced this step.
        visits: Simulations that passed through the node.
        value_sum: Sum of the values backed up through the node.
        children: Child nodes, empty until the node is expanded.
        expanded: Whether the node has been expanded.
        static_value: PRM aggregate of the path to this node (known when it is created).
        rollout: Best rollout end found from this node, when rollouts are on.
        rollout_value: Value of ``rollout``.
    """

    candidate: Candidate | None
    prior: float = 1.0
    visits: int = 0
    value_sum: float = 0.0
    children: list[TreeNode] = field(default_factory=list)
    expanded: bool = False
    static_value: float = 0.0
    rollout: Candidate | None = None
    rollout_value: float = -math.inf

    @property
    def q(self) -> float:
        """Mean backed-up value; the static PRM value before the first visit."""
        return self.value_sum / self.visits if self.visits else self.static_value

    def is_terminal(self, max_depth: int) -> bool:
        """Return True when the node ends the episode or sits at the depth limit."""
        c = self.candidate
        return c is not None and (c.ends or c.depth >= max_depth)


class MCTSAgent(SearchAgent):
    """PUCT tree search whose node values come from the PRM alone, never from the verifier.

    One simulation selects children by ``Q + c_puct * P * sqrt(N_parent) / (1 + N_child)``
    down to a leaf, expands the leaf with ``expansion`` proposals (one policy call, one
    PRM call), steps into the best new child by the same rule and evaluates it: its value
    is the PRM aggregate of its path, or with ``rollout=True`` the PRM aggregate of the
    path completed by a rollout to a final answer. The value is added to every node on the
    path, so each simulation adds exactly one visit to one child of the root. The
    committed trajectory follows the most visited child from the root; when that walk stops
    before the episode ends, it is completed by the best rollout found there or, without
    one, by sampling to the end.

    Args:
        policy: Step policy; sample with a temperature above 0 so the proposals differ.
        simulations: Number of simulations (the search budget).
        c_puct: Exploration constant of PUCT.
        expansion: Steps proposed when a node is expanded; identical ones are merged and
            their count becomes the prior.
        aggregation: PRM aggregation giving a path's value (``"min"``, ``"last"``, ...).
        rollout: Whether to value a new node by a rollout to the end.
        prm: ``"env"`` (the environment's PRM) or a ProcessRewardModel.
        sampling: Sampling settings; None uses the policy's.
        max_depth: Maximum tree depth and trajectory length; None uses ``env.max_steps``.
        seed: Base seed of the per-problem sampling seed.
    """

    name = "mcts"
    needs_prm = True

    def __init__(
        self,
        policy: StepPolicy,
        simulations: int = 16,
        c_puct: float = 1.0,
        expansion: int = 4,
        aggregation: str = "min",
        rollout: bool = False,
        prm: ProcessRewardModel | str | None = "env",
        sampling: SamplingConfig | None = None,
        max_depth: int | None = None,
        seed: int | None = None,
    ):
        super().__init__(policy, prm=prm, sampling=sampling, max_depth=max_depth, seed=seed)
        if simulations < 1:
            raise ValueError(f"simulations={simulations} must be at least 1")
        if not c_puct >= 0:
            raise ValueError(f"c_puct={c_puct} must be a non-negative number")
        if expansion < 1:
            raise ValueError(f"expansion={expansion} must be at least 1")
        self.simulations = int(simulations)
        self.c_puct = float(c_puct)
        self.expansion = int(expansion)
        self.aggregation = validate_score_method(aggregation)
        self.rollout = bool(rollout)

    def search(self, context: SearchContext, max_depth: int) -> EpisodeRecord:
        root = TreeNode(candidate=None)
        for _ in range(self.simulations):
            node = root
            path = [root]
            while node.expanded and node.children:
                node = self._select(node)
                path.append(node)
            if not node.is_terminal(max_depth) and not node.expanded:
                self._expand(context, node)
                node = self._select(node)
                path.append(node)
            value = self._evaluate(context, node, max_depth)
            for visited in path:
                visited.visits += 1
                visited.value_sum += value

        leaf = root
        while leaf.children:
            leaf = max(leaf.children, key=lambda c: (c.visits, c.q))
        chosen = leaf.candidate
        if chosen is not None and not leaf.is_terminal(max_depth):
            if leaf.rollout is not None:
                chosen = leaf.rollout
            else:
                (chosen,) = context.complete([chosen], max_depth)
        score = trajectory_score(chosen, self.aggregation) if chosen is not None else None
        details = {
            "simulations": self.simulations,
            "root_steps": [child.candidate.text for child in root.children],
            "root_visits": [child.visits for child in root.children],
            "root_values": [child.q for child in root.children],
            "tree_nodes": _count_nodes(root),
        }
        return context.finish(self.name, chosen, score, details)

    def _select(self, node: TreeNode) -> TreeNode:
        scale = self.c_puct * math.sqrt(max(node.visits, 1))

        def puct(index: int) -> tuple[float, int]:
            child = node.children[index]
            return (child.q + scale * child.prior / (1 + child.visits), -index)

        return node.children[max(range(len(node.children)), key=puct)]

    def _expand(self, context: SearchContext, node: TreeNode) -> None:
        state = context.root if node.candidate is None else node.candidate.state
        proposals = context.propose([state], n=self.expansion)
        (children,) = context.expand([node.candidate], proposals, merge_duplicates=True)
        node.children = [
            TreeNode(
                candidate=child,
                prior=child.copies / self.expansion,
                static_value=trajectory_score(child, self.aggregation),
            )
            for child in children
        ]
        node.expanded = True

    def _evaluate(self, context: SearchContext, node: TreeNode, max_depth: int) -> float:
        if not self.rollout or node.is_terminal(max_depth) or node.candidate is None:
            return node.static_value
        if node.rollout is None:
            (end,) = context.complete([node.candidate], max_depth)
            node.rollout = end
            node.rollout_value = trajectory_score(end, self.aggregation)
        return node.rollout_value


def _count_nodes(node: TreeNode) -> int:
    return 1 + sum(_count_nodes(child) for child in node.children)
