"""LearnedPRM prefix cache: cached ids, scores and keys/values give full-forward scores."""

from __future__ import annotations

import numpy as np
import pytest

from reasoning_gym.prm.base import StepQuery
from reasoning_gym.prm.learned import LearnedPRM, build_prm_inputs
from reasoning_gym.tasks.base import Problem
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

TOLERANCE = 1e-5

PROBLEMS = [
    Problem(
        id=f"cache/{index}", question=f"What is {index} plus {3 * index}?", answer=str(4 * index)
    )
    for index in range(5)
]
SOLUTIONS = [
    [f"{index} + {step} = {index + step}" for step in range(3 + index % 3)]
    + [f"The answer is \\boxed{{{4 * index}}}."]
    for index in range(5)
]


def make_prm(**kwargs) -> LearnedPRM:
    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), seed=1)
    return LearnedPRM.from_base(model, tokenizer, seed=0, **kwargs)


def full_scores(prm: LearnedPRM, problem: Problem, steps: list[str]) -> np.ndarray:
    """Score a whole solution in one forward pass, without any cache."""
    sequence = build_prm_inputs(prm.tokenizer, problem.question, steps, prm.step_tag)
    return prm.score_sequences([sequence])[0]


def score_step_by_step(prm: LearnedPRM) -> list[list[float]]:
    """Score all solutions one step per call, all problems batched in each call."""
    scores: list[list[float]] = [[] for _ in PROBLEMS]
    for step_index in range(max(len(steps) for steps in SOLUTIONS)):
        queries, owners = [], []
        for index, (problem, steps) in enumerate(zip(PROBLEMS, SOLUTIONS, strict=True)):
            if step_index < len(steps):
                queries.append(StepQuery(problem, tuple(steps[:step_index]), steps[step_index]))
                owners.append(index)
        for owner, value in zip(owners, prm.score(queries), strict=True):
            scores[owner].append(float(value))
    return scores


def test_step_by_step_equals_full_forward():
    prm = make_prm(batch_size=2)
    scores = score_step_by_step(prm)
    for problem, steps, got in zip(PROBLEMS, SOLUTIONS, scores, strict=True):
        np.testing.assert_allclose(got, full_scores(prm, problem, steps), rtol=0, atol=TOLERANCE)
    assert prm.kv_hits > 0
    assert prm.kv_hits == prm.prefix_hits


def test_branches_after_shared_prefix():
    prm = make_prm()
    problem, steps = PROBLEMS[0], SOLUTIONS[0]
    prefix = tuple(steps[:2])
    prm.score([StepQuery(problem, prefix[:1], prefix[1])])
    branches = ["2 * 3 = 6", "a different step"]
    before = prm.kv_hits
    got = prm.score([StepQuery(problem, prefix, branch) for branch in branches])
    assert prm.kv_hits == before + 2
    for branch, value in zip(branches, got, strict=True):
        expected = full_scores(prm, problem, [*prefix, branch])[-1]
        assert value == pytest.approx(expected, abs=TOLERANCE)


def test_new_solution_reuses_question_keys_values():
    prm = make_prm()
    problem = PROBLEMS[3]
    prm.score([StepQuery(problem, (), "a first step")])
    assert prm.kv_hits == 0
    steps = ["another first step", "1 + 2 = 3"]
    got = prm.score_solution(problem, steps)
    assert prm.kv_hits == 1
    assert prm.prefix_hits == 0
    np.testing.assert_allclose(got, full_scores(prm, problem, steps), rtol=0, atol=TOLERANCE)


def test_score_solution_after_cached_prefix():
    prm = make_prm()
    problem, steps = PROBLEMS[1], SOLUTIONS[1]
    prm.score([StepQuery(problem, tuple(steps[:1]), steps[1])])
    prm._cache.clear()  # drop only the score cache, so every step goes to the model
    got = prm.score_solution(problem, steps)
    assert prm.prefix_hits == 1
    np.testing.assert_allclose(got, full_scores(prm, problem, steps), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    ("prefix_cache_size", "kv_cache_mb"),
    [(2, 256.0), (4096, 0.01), (4096, 0.15), (4096, 0.0), (0, 256.0)],
    ids=["entry-limit", "byte-limit-below-one-entry", "byte-limit", "ids-only", "off"],
)
def test_eviction_and_limits_keep_scores(prefix_cache_size, kv_cache_mb):
    prm = make_prm(prefix_cache_size=prefix_cache_size, kv_cache_mb=kv_cache_mb)
    scores = score_step_by_step(prm)
    for problem, steps, got in zip(PROBLEMS, SOLUTIONS, scores, strict=True):
        np.testing.assert_allclose(got, full_scores(prm, problem, steps), rtol=0, atol=TOLERANCE)
    assert len(prm._prefixes) <= prefix_cache_size
    assert prm._prefix_bytes <= kv_cache_mb * 2**20
    if kv_cache_mb == 0.0:
        assert prm.kv_hits == 0


def test_byte_limit_keeps_recent_keys_values():
    prm = make_prm(kv_cache_mb=0.15)
    score_step_by_step(prm)
    entry_bytes = [prefix.nbytes for prefix in prm._prefixes.values()]
    assert 0 < sum(entry_bytes) == prm._prefix_bytes <= 0.15 * 2**20
    # Some prefixes were evicted before their next step and some were reused.
    steps_after_first = sum(len(steps) - 1 for steps in SOLUTIONS)
    assert 0 < prm.kv_hits < steps_after_first


def test_entry_limit_evicts_least_recent():
    prm = make_prm(prefix_cache_size=2)
    score_step_by_step(prm)
    # Room for two entries: each call of three or more solutions evicts the prefixes the
    # next call needs. Only PROBLEMS[2] has a sixth step, so the last call scored it from
    # the question and kept its question ids and its six-step prefix.
    problem, steps = PROBLEMS[2], tuple(SOLUTIONS[2])
    assert len(steps) == 6
    expected = {(problem.id, problem.question, ()), (problem.id, problem.question, steps)}
    assert set(prm._prefixes) == expected


def test_weight_update_drops_prefix_cache():
    import torch

    prm = make_prm()
    problem, steps = PROBLEMS[2], SOLUTIONS[2]
    prm.score([StepQuery(problem, (), steps[0])])
    with torch.no_grad():
        for parameter in prm.model.parameters():
            parameter.mul_(1.5)
    got = prm.score([StepQuery(problem, tuple(steps[:1]), steps[1])])[0]
    assert got == pytest.approx(full_scores(prm, problem, steps[:2])[-1], abs=TOLERANCE)
    assert prm.prefix_hits == 0


def test_clear_cache_drops_prefixes():
    prm = make_prm()
    score_step_by_step(prm)
    prm.clear_cache()
    assert len(prm._prefixes) == 0
    assert prm._prefix_bytes == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prefix_cache_size": -1}, ValueError),
        ({"prefix_cache_size": 1.5}, TypeError),
        ({"kv_cache_mb": -1.0}, ValueError),
        ({"kv_cache_mb": "256"}, TypeError),
    ],
)
def test_invalid_cache_settings_raise(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        make_prm(**kwargs)


def test_vector_env_rewards_match_sync():
    import gymnasium as gym

    from reasoning_gym.env import ReasoningEnv
    from reasoning_gym.tasks.base import Task
    from reasoning_gym.vector import ReasoningVectorEnv

    class ListTask(Task):
        name = "cache-list"

        @property
        def num_problems(self) -> int:
            return len(PROBLEMS)

        def problem(self, index: int, seed: int = 0) -> Problem:
            return PROBLEMS[index]

    task = ListTask()
    prm = make_prm()
    # Each environment draws its problems from its own seeded generator, the same in
    # both modes; the actions are texts, so they fit any problem.
    actions = [[steps[t % len(steps)] for steps in SOLUTIONS[:4]] for t in range(8)]
    totals = {}
    for mode in ("native", "sync"):
        prm.clear_cache()
        if mode == "native":
            envs = ReasoningVectorEnv(num_envs=4, task=task, prm=prm, max_steps=4)
        else:
            envs = gym.vector.SyncVectorEnv(
                [lambda: ReasoningEnv(task=task, prm=prm, max_steps=4) for _ in range(4)]
            )
        envs.reset(seed=0)
        rewards = [envs.step(row)[1] for row in actions]
        totals[mode] = np.asarray(rewards)
        envs.close()
    np.testing.assert_allclose(totals["native"], totals["sync"], rtol=0, atol=TOLERANCE)
