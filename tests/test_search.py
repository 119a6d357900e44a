"""Search agents on a toy task whose oracle PRM is exact, with scripted and tiny HF policies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from agents.base import SearchContext
from agents.search import SEARCH_AGENTS, group_answers, make_search_agent
from agents.search.beam import BeamSearchAgent
from agents.search.best_of_n import BestOfNAgent
from agents.search.mcts import MCTSAgent
from agents.search.self_consistency import SelfConsistencyAgent
from agents.search.single import GreedyAgent
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.errors import UnknownNameError
from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal
from reasoning_gym.prm.base import CallablePRM
from reasoning_gym.tasks.base import Problem, Task
from reasoning_gym.tokenizers import ByteTokenizer

GOLD_STEPS = ("1 + 2 = 3", "3 + 3 = 6", "6 + 4 = 10", "The answer is \\boxed{10}.")

# Previous steps -> candidate next steps, in the order a scripted policy returns them.
# Only the first step's list starts with a wrong step, so greedy decoding fails while a
# single sample continued from the right first step succeeds.
CHAIN_SCRIPT: dict[tuple[str, ...], list[str]] = {
    (): ["1 + 2 = 4", "1 + 2 = 3", "1 + 2 = 5"],
    GOLD_STEPS[:1]: ["3 + 3 = 6", "3 + 3 = 7", "3 + 3 = 6"],
    GOLD_STEPS[:2]: ["6 + 4 = 10", "6 + 4 = 11", "6 + 4 = 9"],
    GOLD_STEPS[:3]: ["The answer is \\boxed{10}.", "The answer is \\boxed{11}."],
}


class ChainTask(Task):
    """Add 2, 3 and 4 to 1; the step checker compares each step with the gold steps."""

    name = "toy_chain"

    def problem(self, index: int, seed: int = 0) -> Problem:
        return Problem(
            id=f"toy_chain/{index}",
            question="Start at 1, add 2, then 3, then 4.",
            answer="10",
            gold_steps=GOLD_STEPS,
        )

    def check_step(self, problem: Problem, previous_steps: Sequence[str], step: str) -> float:
        depth = len(previous_steps)
        on_track = tuple(previous_steps) == GOLD_STEPS[:depth] and depth < len(GOLD_STEPS)
        return 1.0 if on_track and step == GOLD_STEPS[depth] else 0.0


class ScriptedPolicy(StepPolicy):
    """Returns scripted steps for each context, cycling through the candidate list.

    The context's steps are read back from the plain prompt that the byte tokenizer gets.
    """

    name = "scripted"

    def __init__(self, script: Mapping[tuple[str, ...], list[str]], fallback: str):
        super().__init__(SamplingConfig(temperature=1.0))
        self.script = script
        self.fallback = fallback
        self.tokenizer = ByteTokenizer()
        self.calls = 0

    def steps_of(self, context: np.ndarray) -> tuple[str, ...]:
        text = self.tokenizer.decode(context.tolist())
        body = text.split("Solution:\n", 1)[1]
        return tuple(body.split("\n")[:-1])

    def propose(self, contexts, n=1, sampling=None):
        self.calls += 1
        out = []
        for context in contexts:
            candidates = self.script.get(self.steps_of(np.asarray(context)), [self.fallback])
            group = []
            for i in range(n):
                text = candidates[i % len(candidates)]
                ids = np.asarray(self.tokenizer.encode(text), dtype=np.int64)
                group.append(
                    StepProposal(ids, text, np.full(len(ids), -1.0, dtype=np.float32), False)
                )
            out.append(group)
        return out


def chain_env(prm="auto", task: Task | None = None, max_steps: int = 8) -> ReasoningEnv:
    return ReasoningEnv(task=task or ChainTask(), prm=prm, max_steps=max_steps)


def chain_policy() -> ScriptedPolicy:
    return ScriptedPolicy(CHAIN_SCRIPT, fallback="The answer is \\boxed{0}.")


def test_beam_solves_what_greedy_fails():
    env = chain_env()
    greedy = GreedyAgent(chain_policy()).run(env, {"index": 0})
    assert not greedy.correct
    assert greedy.answer == "0"

    policy = chain_policy()
    record = BeamSearchAgent(policy, beam_width=2, expansion=3).run(env, {"index": 0})
    assert record.correct
    assert record.steps == GOLD_STEPS
    assert record.answer == "10"
    assert record.score == 1.0
    assert env.get_state().step_texts == GOLD_STEPS
    assert env.get_state().terminated


def test_beam_batches_policy_and_prm_calls():
    env = chain_env()
    policy = chain_policy()
    record = BeamSearchAgent(policy, beam_width=2, expansion=3).run(env, {"index": 0})
    rounds = record.details["rounds"]
    assert rounds == 4
    assert record.compute.policy_calls == rounds
    assert policy.calls == rounds
    # One batched PRM call per round.
    assert record.compute.prm_calls == rounds
    assert record.compute.generated_tokens > 0


def test_beam_merges_duplicate_steps():
    env = chain_env()
    record = BeamSearchAgent(chain_policy(), beam_width=8, expansion=3).run(env, {"index": 0})
    assert record.correct
    assert record.details["rounds"] == 4
    # Distinct (parent, step) pairs per round: 3; 1 + 2 + 1; 3 + 1; 2 + 1 + 1. A wrong
    # parent gets the fallback step three times and the gold parents repeat one step.
    assert record.compute.prm_items == 15
    assert record.compute.generated_tokens > 0


def test_mcts_visits_sum_to_budget():
    for rollout in (False, True):
        env = chain_env()
        agent = MCTSAgent(chain_policy(), simulations=12, expansion=3, rollout=rollout)
        record = agent.run(env, {"index": 0})
        assert sum(record.details["root_visits"]) == 12
        assert record.correct
        assert record.steps == GOLD_STEPS


def test_mcts_commits_most_visited_child():
    env = chain_env()
    record = MCTSAgent(chain_policy(), simulations=10, expansion=3).run(env, {"index": 0})
    visits = record.details["root_visits"]
    assert record.details["root_steps"] == CHAIN_SCRIPT[()]
    assert record.steps[0] == record.details["root_steps"][int(np.argmax(visits))]
    assert visits[1] > visits[0]
    assert json.loads(json.dumps(record.to_dict()))["steps"] == list(GOLD_STEPS)


def test_mcts_expands_one_node_per_simulation():
    env = chain_env()
    record = MCTSAgent(chain_policy(), simulations=5, expansion=3).run(env, {"index": 0})
    # Each simulation expands at most one node with one propose call.
    assert record.compute.policy_calls <= 5
    assert record.details["tree_nodes"] >= 1 + 3


def test_best_of_n_picks_highest_prm_score():
    script = {(): ["The answer is \\boxed{7}.", "The answer is \\boxed{10}."]}
    policy = ScriptedPolicy(script, fallback="The answer is \\boxed{0}.")

    def final_is_ten(query):
        return 1.0 if "{10}" in query.step else 0.2

    env = chain_env(prm=CallablePRM(final_is_ten))
    record = BestOfNAgent(policy, n=2, score="last").run(env, {"index": 0})
    assert record.details["scores"] == [0.2, 1.0]
    assert record.details["chosen"] == 1
    assert record.correct


def test_group_answers_merges_equivalent_forms():
    groups = group_answers(["0.5", "3", "1/2", None, "\\frac{1}{2}"])
    assert [g.members for g in groups] == [[0, 2, 4], [1]]
    assert groups[0].weight == 3.0
    weighted = group_answers(["0.5", "3", "1/2"], weights=[0.1, 0.9, 0.1])
    assert [g.weight for g in weighted] == [pytest.approx(0.2), pytest.approx(0.9)]


def test_self_consistency_votes_equivalent_answers():
    finals = ["\\boxed{0.5}", "\\boxed{3}", "\\boxed{1/2}", "\\boxed{3}", "\\boxed{\\frac{1}{2}}"]
    policy = ScriptedPolicy({(): [f"The answer is {f}." for f in finals]}, fallback="x")
    env = chain_env(task=HalfTask(), prm=None)
    record = SelfConsistencyAgent(policy, n=5).run(env, {"index": 0})
    votes = record.details["votes"]
    assert [v["members"] for v in votes] == [[0, 2, 4], [1, 3]]
    assert record.score == 3.0
    assert record.correct
    assert record.compute.prm_calls == 0


def test_plain_vote_spends_no_prm_calls():
    finals = ["\\boxed{0.5}", "\\boxed{3}", "\\boxed{1/2}"]
    policy = ScriptedPolicy({(): [f"The answer is {f}." for f in finals]}, fallback="x")
    env = chain_env(task=HalfTask(), prm=CallablePRM(lambda query: 0.5))
    record = SelfConsistencyAgent(policy, n=3).run(env, {"index": 0})
    # The environment scores the committed step for its reward; the vote itself used no PRM.
    assert env.prm.calls == 1
    assert record.compute.prm_calls == 0
    assert record.compute.prm_items == 0
    assert record.correct


def test_self_consistency_prm_weighting_can_flip_vote():
    finals = ["\\boxed{0.5}", "\\boxed{3}", "\\boxed{1/2}", "\\boxed{3}", "\\boxed{\\frac{1}{2}}"]
    policy = ScriptedPolicy({(): [f"The answer is {f}." for f in finals]}, fallback="x")

    def prefers_three(query):
        return 0.9 if "{3}" in query.step else 0.1

    env = chain_env(task=HalfTask(), prm=CallablePRM(prefers_three))
    record = SelfConsistencyAgent(policy, n=5, weighting="prm").run(env, {"index": 0})
    assert record.answer == "3"
    assert record.score == pytest.approx(1.8)
    assert not record.correct


class HalfTask(ChainTask):
    name = "toy_half"

    def problem(self, index: int, seed: int = 0) -> Problem:
        return Problem(id=f"toy_half/{index}", question="What is 1 divided by 2?", answer="1/2")


class GoldReadError(AssertionError):
    """The gold answer was read before the final verification."""


class GuardedProblem(Problem):
    """A Problem whose gold answer raises until the task's verifier releases it."""

    @property
    def answer(self) -> str:
        if not self.__dict__.get("released"):
            raise GoldReadError(f"gold answer of {self.id} read before the final verification")
        return self.__dict__["gold"]

    @answer.setter
    def answer(self, value: str) -> None:
        self.__dict__["gold"] = value


class GuardedChainTask(ChainTask):
    """ChainTask whose problems guard the gold answer; only ``verify`` releases it."""

    name = "toy_guarded"

    def problem(self, index: int, seed: int = 0) -> Problem:
        return GuardedProblem(id=f"toy_guarded/{index}", question="Start at 1.", answer="10")

    def check_step(self, problem, previous_steps, step):
        return None

    def verify(self, problem: Problem, answer_text: str) -> float:
        problem.__dict__["released"] = True
        return super().verify(problem, answer_text)


def surface_prm(query) -> float:
    """A PRM that reads only the step text: prefers steps that match the script's gold."""
    depth = len(query.previous_steps)
    return 1.0 if depth < len(GOLD_STEPS) and query.step == GOLD_STEPS[depth] else 0.0


AGENT_OPTIONS = {
    "greedy": {},
    "sample": {},
    "best_of_n": {"n": 3},
    "self_consistency": {"n": 3, "weighting": "prm"},
    "beam": {"beam_width": 2, "expansion": 3},
    "mcts": {"simulations": 8, "expansion": 3, "rollout": True},
}


def test_search_never_reads_gold_answer():
    assert set(AGENT_OPTIONS) == set(SEARCH_AGENTS)
    for name, options in AGENT_OPTIONS.items():
        env = chain_env(prm=CallablePRM(surface_prm), task=GuardedChainTask())
        record = make_search_agent(name, chain_policy(), **options).run(env, {"index": 0})
        assert record.terminated, name
        assert env.problem.__dict__.get("released"), name
        if name in ("beam", "mcts", "best_of_n", "self_consistency"):
            assert record.correct, name


def test_gold_guard_catches_leaking_prm():
    def leaking_prm(query) -> float:
        return 1.0 if query.problem.answer in query.step else 0.0

    env = chain_env(prm=None, task=GuardedChainTask())
    agent = BeamSearchAgent(chain_policy(), prm=CallablePRM(leaking_prm))
    with pytest.raises(GoldReadError):
        agent.run(env, {"index": 0})


def test_agent_options_are_validated():
    policy = chain_policy()
    with pytest.raises(ValueError, match="beam_width=0"):
        BeamSearchAgent(policy, beam_width=0)
    with pytest.raises(ValueError, match="simulations=0"):
        MCTSAgent(policy, simulations=0)
    with pytest.raises(UnknownNameError, match="median"):
        BestOfNAgent(policy, score="median")
    with pytest.raises(UnknownNameError, match="beem"):
        make_search_agent("beem", policy)
    with pytest.raises(ValueError, match="needs a PRM"):
        BeamSearchAgent(policy).run(chain_env(prm=None), {"index": 0})


def test_beam_with_tiny_hf_model(hf_tokenizer):
    from reasoning_gym.policies.hf import HFPolicy
    from reasoning_gym.testing import tiny_causal_lm

    model = tiny_causal_lm(len(hf_tokenizer), seed=0)
    sampling = SamplingConfig(temperature=1.0, max_step_tokens=6, seed=0)
    policy = HFPolicy(model, hf_tokenizer, sampling=sampling)
    env = ReasoningEnv(
        task=ChainTask(),
        tokenizer=hf_tokenizer,
        prm=CallablePRM(lambda q: len(q.step) / 100),
        max_steps=3,
    )
    record = BeamSearchAgent(policy, beam_width=2, expansion=2, seed=1).run(env, {"index": 0})
    rounds = record.details["rounds"]
    assert 1 <= rounds <= 3
    assert record.compute.policy_calls == rounds
    assert record.compute.prm_calls == rounds
    assert record.compute.generated_tokens > 0
    assert record.compute.wall_time_s > 0
    assert env.get_state().step_texts == record.steps
    assert len(record.rewards) == len(record.steps) <= 3
    assert record.terminated or record.truncated


def test_select_on_pool_prefixes():
    finals = ["\\boxed{3}", "\\boxed{0.5}", "\\boxed{1/2}", "\\boxed{3}", "\\boxed{3}"]
    policy = ScriptedPolicy({(): [f"The answer is {f}." for f in finals]}, fallback="x")

    def prefers_half(query):
        return 0.9 if "3" not in query.step else 0.2

    env = chain_env(task=HalfTask(), prm=CallablePRM(prefers_half))
    env.reset(options={"index": 0})
    context = SearchContext(env, policy, env.prm, None)
    pool = context.sample_solutions(5, max_depth=4)
    vote = SelfConsistencyAgent(policy)
    best = BestOfNAgent(policy, score="last")
    # One sample: both pick it.
    assert vote.select(pool[:1])[0] == 0
    assert best.select(pool[:1])[0] == 0
    # Three samples: "0.5" and "1/2" outvote "3", and the PRM prefers them too.
    chosen, weight, details = vote.select(pool[:3])
    assert chosen == 1
    assert weight == 2.0
    assert [v["members"] for v in details["votes"]] == [[0], [1, 2]]
    assert best.select(pool[:3])[:2] == (1, pytest.approx(0.9))
    # Five samples: "3" wins the plain vote, but not the best PRM score.
    assert vote.select(pool)[0] == 0
    assert vote.select(pool)[1] == 3.0
    assert best.select(pool)[0] == 1
    with pytest.raises(ValueError, match="solutions is empty"):
        best.select([])
