"""Agents that ``reasoning-gym eval`` can run, by name.

An agent turns an environment and a problem index into an :class:`EpisodeRecord`.
Register a new one by adding an :class:`AgentSpec` to :data:`AGENTS`; its factory gets
an :class:`AgentContext` and returns a callable ``runner(env, index) -> EpisodeRecord``.
Search agents (best-of-n, beam search, MCTS) plug in the same way and read their typed
settings (``--n``, ``--beam-width``, ...) from ``context.search_options``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reasoning_gym.episodes import EpisodeRecord, run_episode
from reasoning_gym.policies.base import SamplingConfig, StepPolicy

EpisodeRunner = Callable[[Any, int], EpisodeRecord]


@dataclass
class AgentContext:
    """Inputs of an agent factory: the environment, the model and the run settings.

    Attributes:
        env: The environment (a Gymnasium env whose ``unwrapped`` is a ReasoningEnv).
        model: Model spec of the policy, or None for agents without a model.
        tokenizer: The environment's tokenizer.
        seed: Seed for sampling and any other randomness of the agent.
        dtype: Model dtype (``auto``, ``bf16``, ``fp32``).
        device: Torch device.
        temperature: Sampling temperature for sampling agents.
        top_p: Nucleus-sampling mass for sampling agents.
        max_step_tokens: Maximum tokens per generated step.
        search_options: Typed settings of a search agent (``--n``, ``--beam-width``, ...).
    """

    env: Any
    model: str | None
    tokenizer: Any
    seed: int = 0
    dtype: str = "auto"
    device: str = "cpu"
    temperature: float = 0.7
    top_p: float = 1.0
    max_step_tokens: int = 128
    search_options: dict[str, Any] = field(default_factory=dict)
    _policy: StepPolicy | None = field(default=None, repr=False)

    def sampling(self, greedy: bool) -> SamplingConfig:
        """Return the sampling settings of this run, greedy or at ``temperature``."""
        return SamplingConfig(
            temperature=0.0 if greedy else self.temperature,
            top_p=self.top_p,
            max_step_tokens=self.max_step_tokens,
            seed=self.seed,
        )

    def load_policy(self) -> StepPolicy:
        """Load the model into an HFPolicy once and return it (later calls reuse it).

        The policy's default sampling is greedy; pass ``self.sampling(greedy=False)`` to
        ``propose`` or ``run_episode`` to sample.
        """
        from reasoning_gym.policies import make_hf_policy

        if self.model is None:
            raise ValueError("this agent needs a model; pass --model NAME")
        if self._policy is None:
            self._policy = make_hf_policy(
                self.model,
                tokenizer=self.tokenizer,
                sampling=self.sampling(greedy=True),
                separator=self.env.unwrapped.step_separator,
                device=self.device,
                dtype=self.dtype,
            )
        return self._policy


@dataclass(frozen=True)
class AgentSpec:
    """A registered agent.

    Attributes:
        factory: Builds the episode runner from an :class:`AgentContext`.
        needs_model: Whether the agent runs a language model (``--model``).
        description: One line for ``reasoning-gym list``.
    """

    factory: Callable[[AgentContext], EpisodeRunner]
    needs_model: bool
    description: str


def _policy_runner(policy: StepPolicy, sampling: SamplingConfig | None = None) -> EpisodeRunner:
    def runner(env: Any, index: int) -> EpisodeRecord:
        return run_episode(env, policy, index=index, sampling=sampling)

    return runner


def _greedy(context: AgentContext) -> EpisodeRunner:
    return _policy_runner(context.load_policy(), context.sampling(greedy=True))


def _sample(context: AgentContext) -> EpisodeRunner:
    return _policy_runner(context.load_policy(), context.sampling(greedy=False))


def _oracle(context: AgentContext) -> EpisodeRunner:
    from reasoning_gym.policies.baselines import OraclePolicy

    return _policy_runner(OraclePolicy(context.env))


def _random(context: AgentContext) -> EpisodeRunner:
    from reasoning_gym.policies.baselines import RandomPolicy

    return _policy_runner(RandomPolicy(context.tokenizer, seed=context.seed))


def _search(name: str) -> Callable[[AgentContext], EpisodeRunner]:
    def factory(context: AgentContext) -> EpisodeRunner:
        from reasoning_gym.cli.search_agents import make_search_runner

        return make_search_runner(name, context)

    return factory


#: Agent name -> spec.
AGENTS: dict[str, AgentSpec] = {
    "greedy": AgentSpec(_greedy, True, "one greedy-decoded step at a time"),
    "sample": AgentSpec(_sample, True, "one sampled step at a time (--temperature, --top-p)"),
    "oracle": AgentSpec(_oracle, False, "replays the gold steps (an upper bound; reads gold)"),
    "random": AgentSpec(_random, False, "random digit/operator steps (smoke tests)"),
    "best_of_n": AgentSpec(
        _search("best_of_n"), True, "N solutions, the best by PRM aggregate (--n, --score)"
    ),
    "self_consistency": AgentSpec(
        _search("self_consistency"), True, "N solutions, majority vote (--n, --weighting)"
    ),
    "beam": AgentSpec(
        _search("beam"), True, "step-level PRM beam search (--beam-width, --expansion)"
    ),
    "mcts": AgentSpec(
        _search("mcts"), True, "MCTS over steps with PUCT (--simulations, --c-puct, --rollout)"
    ),
}
