"""Search agents (best-of-N, self-consistency, beam search, MCTS) for ``reasoning-gym eval``.

The agents live in the top-level ``agents`` package, which imports ``reasoning_gym``;
this module imports them only inside the factory, so the library never depends on them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from reasoning_gym.episodes import EpisodeRecord

#: eval option -> (agent keyword, type, help). Each agent takes the keywords it knows.
SEARCH_OPTIONS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "--n": ("n", int, "solutions sampled by best_of_n and self_consistency"),
    "--beam-width": ("beam_width", int, "beams kept per step by beam"),
    "--expansion": ("expansion", int, "steps proposed per beam (beam) or per node (mcts)"),
    "--simulations": ("simulations", int, "simulation budget of mcts"),
    "--c-puct": ("c_puct", float, "exploration constant of mcts's PUCT rule"),
    "--rollout": (
        "rollout",
        lambda text: text.lower() in ("1", "true", "yes", "on"),
        "mcts: also value leaves by a PRM-scored rollout (true/false)",
    ),
    "--aggregation": ("aggregation", str, "PRM step-score aggregation: min, last, product, mean"),
    "--score": ("score", str, "best_of_n selection: min, last, product, mean or logprob"),
    "--weighting": ("weighting", str, "self_consistency vote: count or prm"),
    "--max-depth": ("max_depth", int, "maximum steps of a searched solution"),
}

#: Keywords each search agent accepts from SEARCH_OPTIONS.
AGENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "best_of_n": ("n", "score", "max_depth"),
    "self_consistency": ("n", "weighting", "aggregation", "max_depth"),
    "beam": ("beam_width", "expansion", "aggregation", "max_depth"),
    "mcts": ("simulations", "c_puct", "expansion", "aggregation", "rollout", "max_depth"),
}


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the search agents' options to ``reasoning-gym eval``."""
    group = parser.add_argument_group("search agents (best_of_n, self_consistency, beam, mcts)")
    for flag, (_, kind, help_text) in SEARCH_OPTIONS.items():
        group.add_argument(flag, type=kind, default=None, help=help_text)


def search_options(args: argparse.Namespace, agent: str) -> dict[str, Any]:
    """Return the keywords of ``agent`` that were set on the command line.

    Raises:
        ValueError: when an option was set that ``agent`` does not take.
    """
    accepted = AGENT_KEYWORDS.get(agent, ())
    options: dict[str, Any] = {}
    for flag, (keyword, _, _) in SEARCH_OPTIONS.items():
        value = getattr(args, keyword, None)
        if value is None:
            continue
        if keyword not in accepted:
            takes = ", ".join(f"--{k.replace('_', '-')}" for k in accepted) or "none"
            raise ValueError(f"agent {agent!r} does not take {flag}; it takes: {takes}")
        options[keyword] = value
    return options


def make_search_runner(name: str, context: Any) -> Callable[[Any, int], EpisodeRecord]:
    """Build ``runner(env, index) -> EpisodeRecord`` for search agent ``name``."""
    from agents.search import make_search_agent

    policy = context.load_policy()
    keywords = dict(context.search_options)
    agent = make_search_agent(
        name, policy, sampling=context.sampling(greedy=False), seed=context.seed, **keywords
    )

    def runner(env: Any, index: int) -> EpisodeRecord:
        start = time.perf_counter()
        result = agent.run(env.unwrapped, {"index": index})
        state = env.unwrapped.state
        return EpisodeRecord(
            index=index,
            problem_id=result.problem_id,
            question=state.problem.question,
            steps=list(result.steps),
            step_rewards=[float(r) for r in result.rewards],
            prm_scores=[step.score for step in state.steps],
            answer=result.answer,
            gold=state.problem.answer,
            correct=bool(result.correct),
            episode_return=float(sum(result.rewards)),
            num_steps=len(result.steps),
            generated_tokens=int(result.compute.generated_tokens),
            wall_time_s=time.perf_counter() - start,
            terminated=bool(result.terminated),
            truncated=bool(result.truncated),
            compute=result.compute.to_dict(),
        )

    return runner
