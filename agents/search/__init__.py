"""Inference-time search agents that run on any ReasoningEnv through its state snapshots.

``SEARCH_AGENTS`` maps an agent name to its factory ``factory(policy, **options)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.base import Agent, Compute, EpisodeRecord, SearchResult
from agents.search.beam import BeamSearchAgent
from agents.search.best_of_n import BestOfNAgent
from agents.search.mcts import MCTSAgent
from agents.search.self_consistency import SelfConsistencyAgent, group_answers
from agents.search.single import GreedyAgent, SampleAgent

#: Agent name -> factory(policy, **options) returning an Agent.
SEARCH_AGENTS: dict[str, Callable[..., Any]] = {
    "greedy": GreedyAgent,
    "sample": SampleAgent,
    "best_of_n": BestOfNAgent,
    "self_consistency": SelfConsistencyAgent,
    "beam": BeamSearchAgent,
    "mcts": MCTSAgent,
}


def make_search_agent(name: str, policy: Any, **options: Any) -> Agent:
    """Build the search agent registered as ``name`` with ``policy`` and ``options``."""
    if name not in SEARCH_AGENTS:
        from reasoning_gym.errors import UnknownNameError

        raise UnknownNameError("search agent", name, SEARCH_AGENTS)
    return SEARCH_AGENTS[name](policy, **options)


__all__ = [
    "SEARCH_AGENTS",
    "Agent",
    "BeamSearchAgent",
    "BestOfNAgent",
    "Compute",
    "EpisodeRecord",
    "GreedyAgent",
    "MCTSAgent",
    "SampleAgent",
    "SearchResult",
    "SelfConsistencyAgent",
    "group_answers",
    "make_search_agent",
]
