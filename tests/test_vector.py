"""ReasoningVectorEnv: equivalence with SyncVectorEnv, batched PRM calls, autoreset, resets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import reasoning_gym  # noqa: F401  (registers the environment ids)
from reasoning_gym.batching import pad_batch, unpad_batch
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.errors import InvalidActionError, ResetNeededError
from reasoning_gym.prm.base import CallablePRM, StepQuery
from reasoning_gym.tasks.base import Problem, Task
from reasoning_gym.vector import ReasoningVectorEnv

NUM_ENVS = 4


class SumTask(Task):
    """Add two numbers; 50 problems."""

    name = "vector-sum"

    @property
    def num_problems(self) -> int:
        return 50

    def problem(self, index: int, seed: int = 0) -> Problem:
        a, b = index % 7 + 1, index % 5 + 2
        return Problem(
            id=f"vector-sum/{index}",
            question=f"What is {a} + {b}?",
            answer=str(a + b),
            gold_steps=(f"{a} + {b} = {a + b}", f"The answer is \\boxed{{{a + b}}}."),
            metadata={"index": index},
        )


class BatchVerifySumTask(SumTask):
    """SumTask with a batched verifier that counts its calls."""

    def __init__(self) -> None:
        self.batch_calls = 0

    def verify_batch(self, problems: Sequence[Problem], texts: Sequence[str]) -> list[float]:
        self.batch_calls += 1
        return [self.verify(problem, text) for problem, text in zip(problems, texts, strict=True)]


def step_score(query: StepQuery) -> float:
    """A deterministic PRM: 1.0 when the step contains the gold sum, else a length-based score."""
    if query.problem.answer in query.step:
        return 1.0
    return min(len(query.step) / 40.0, 0.9) * (1 + len(query.previous_steps)) / 8


def make_prm() -> CallablePRM:
    return CallablePRM(step_score, name="step-score")


ENV_KWARGS: dict[str, Any] = {"max_steps": 3}

# Per vector step, one action per environment: plain steps, right and wrong answers,
# token-id actions (built in the test) and steps that run into max_steps=3.
SCRIPT: list[list[Any]] = [
    ["1 + 2 = 3", "The answer is \\boxed{9}.", "think", "x = 4"],
    ["The answer is \\boxed{5}.", "after final (ignored)", "more", "y = 2 * x"],
    ["ignored", "new episode step", "The answer is \\boxed{7}.", "third step truncates"],
    ["fresh", "The answer is \\boxed{3}.", "ignored", "ignored"],
    ["a", "b", "c", "d"],
    ["The answer is \\boxed{8}.", "e", "f", "The answer is \\boxed{6}."],
]


def make_pair(autoreset_mode: AutoresetMode) -> tuple[ReasoningVectorEnv, SyncVectorEnv]:
    native = ReasoningVectorEnv(
        num_envs=NUM_ENVS,
        autoreset_mode=autoreset_mode,
        task=SumTask(),
        prm=make_prm(),
        **ENV_KWARGS,
    )
    sync = SyncVectorEnv(
        [
            lambda: ReasoningEnv(task=SumTask(), prm=make_prm(), **ENV_KWARGS)
            for _ in range(NUM_ENVS)
        ],
        autoreset_mode=autoreset_mode,
    )
    return native, sync


def assert_values_equal(native: Any, expected: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(native, dict), where
        assert sorted(native) == sorted(expected), where
        for key in expected:
            assert_values_equal(native[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, np.ndarray) and expected.dtype == object:
        assert native.shape == expected.shape, where
        for index, (a, b) in enumerate(zip(native, expected, strict=True)):
            assert_values_equal(a, b, f"{where}[{index}]")
    elif isinstance(expected, (np.ndarray, list, tuple)):
        assert len(native) == len(expected), where
        for index, (a, b) in enumerate(zip(native, expected, strict=True)):
            np.testing.assert_array_equal(a, b, err_msg=f"{where}[{index}]")
    else:
        assert native == expected, where


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_matches_sync_vector_env(mode):
    native, sync = make_pair(mode)
    obs_native, info_native = native.reset(seed=11)
    obs_sync, info_sync = sync.reset(seed=11)
    assert_values_equal(obs_native, obs_sync, "reset obs")
    assert_values_equal(info_native, info_sync, "reset info")
    tokenizer = native.tokenizer
    ended = 0
    for t, actions in enumerate(SCRIPT):
        # Environment 3 sends token ids instead of text.
        actions = [*actions[:3], np.asarray(tokenizer.encode(actions[3]), dtype=np.int64)]
        results_native = native.step(actions)
        results_sync = sync.step(actions)
        for name, a, b in zip(
            ("obs", "reward", "terminated", "truncated", "info"),
            results_native,
            results_sync,
            strict=True,
        ):
            assert_values_equal(a, b, f"step {t} {name}")
        ended += int(np.sum(results_native[2] | results_native[3]))
    assert ended >= 4  # the script ends episodes by answers and by truncation
    native.close()
    sync.close()


def test_prm_called_once_per_vector_step():
    prm = make_prm()
    envs = ReasoningVectorEnv(num_envs=8, task=SumTask(), prm=prm, max_steps=10)
    envs.reset(seed=0)
    for t in range(4):
        calls = prm.calls
        items = prm.items_scored
        envs.step([f"step {t} of env {i}" for i in range(8)])
        assert prm.calls == calls + 1
        assert prm.items_scored == items + 8
    assert all(env.prm is prm for env in envs.envs)
    assert all(env.tokenizer is envs.tokenizer for env in envs.envs)
    assert all(env.task is envs.task for env in envs.envs)


def test_next_step_autoreset_keeps_final_obs_and_info():
    envs = ReasoningVectorEnv(num_envs=2, task=SumTask(), prm=make_prm())
    obs, _ = envs.reset(seed=0, options={"index": [3, 4]})
    answer = envs.envs[0].problem.answer
    prompt_0 = obs[0]

    obs, rewards, terminated, truncated, info = envs.step(
        [f"The answer is \\boxed{{{answer}}}.", "keep going"]
    )
    assert terminated.tolist() == [True, False]
    assert truncated.tolist() == [False, False]
    assert rewards[0] == pytest.approx(2.0)  # PRM 1.0 plus outcome 1.0
    assert envs.tokenizer.decode(obs[0][len(prompt_0) :]).startswith("The answer is")
    assert info["_correct"].tolist() == [True, False]
    assert info["correct"][0]
    assert info["answer"][0] == answer
    assert "final_obs" not in info

    obs, rewards, terminated, truncated, info = envs.step(["ignored action", "second step"])
    assert rewards[0] == 0.0
    assert not terminated[0]
    assert info["_problem_id"].tolist() == [True, False]  # reset info of env 0 only
    np.testing.assert_array_equal(obs[0], envs.envs[0].prompt_ids(envs.envs[0].problem))
    assert envs.envs[0].get_state().num_steps == 0
    assert envs.envs[1].get_state().num_steps == 2


def test_same_step_autoreset_reports_final_obs():
    envs = ReasoningVectorEnv(num_envs=2, autoreset_mode="SameStep", task=SumTask(), prm=make_prm())
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    envs.reset(seed=0, options={"index": [3, 4]})
    answer = envs.envs[1].problem.answer
    obs, rewards, terminated, _, info = envs.step(["a step", f"The answer is \\boxed{{{answer}}}."])
    assert terminated.tolist() == [False, True]
    assert info["_final_obs"].tolist() == [False, True]
    final_obs = info["final_obs"][1]
    assert envs.tokenizer.decode(final_obs).endswith(f"\\boxed{{{answer}}}.\n")
    assert info["final_info"]["correct"][1]
    assert info["final_info"]["_correct"].tolist() == [False, True]
    # The returned observation is already the prompt of the next episode.
    np.testing.assert_array_equal(obs[1], envs.envs[1].prompt_ids(envs.envs[1].problem))
    assert rewards[1] == pytest.approx(2.0)


def test_disabled_autoreset_needs_partial_reset():
    envs = ReasoningVectorEnv(num_envs=2, autoreset_mode=AutoresetMode.DISABLED, task=SumTask())
    envs.reset(seed=0, options={"index": [1, 2]})
    answer = envs.envs[0].problem.answer
    envs.step([f"\\boxed{{{answer}}}", "x"])
    with pytest.raises(ResetNeededError):
        envs.step(["y", "z"])
    assert envs.envs[1].get_state().num_steps == 1  # the failed step changed nothing
    envs.reset(options={"reset_mask": np.array([True, False]), "index": 9})
    envs.step(["y", "z"])
    assert envs.envs[0].problem.id == "vector-sum/9"
    assert envs.envs[1].get_state().num_steps == 2


def test_partial_reset_with_mask_and_indices():
    envs = ReasoningVectorEnv(num_envs=3, task=SumTask(), prm=make_prm())
    obs, _ = envs.reset(options={"index": [5, 6, 7]})
    obs, *_ = envs.step(["s0", "s1", "s2"])
    kept = obs[1]
    obs, info = envs.reset(
        seed=[100, None, None],
        options={"reset_mask": np.array([True, False, True]), "index": [10, 11, None]},
    )
    assert envs.envs[0].problem.id == "vector-sum/10"
    assert envs.envs[1].problem.id == "vector-sum/6"
    np.testing.assert_array_equal(obs[1], kept)
    assert envs.envs[1].get_state().num_steps == 1
    assert envs.envs[2].get_state().num_steps == 0
    assert info["_problem_id"].tolist() == [True, False, True]
    assert info["problem_id"][0] == "vector-sum/10"


def test_int_seed_gives_env_i_seed_plus_i():
    envs = ReasoningVectorEnv(num_envs=3, task=SumTask())
    obs, _ = envs.reset(seed=20)
    for i in range(3):
        single = ReasoningEnv(task=SumTask())
        single_obs, _ = single.reset(seed=20 + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        assert envs.envs[i].problem.id == single.problem.id


def test_invalid_actions_change_nothing():
    envs = ReasoningVectorEnv(num_envs=2, task=SumTask())
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match="got 1 actions for num_envs=2"):
        envs.step(["only one"])
    with pytest.raises(InvalidActionError, match="sequence of 2 actions"):
        envs.step("a single string")
    with pytest.raises(InvalidActionError, match="outside the vocabulary"):
        envs.step(["fine", np.array([1, 10**6])])
    assert [env.get_state().num_steps for env in envs.envs] == [0, 0]


def test_none_prm_score_next_to_float_is_merged():
    envs = ReasoningVectorEnv(num_envs=2, task=SumTask(), prm=make_prm())
    envs.reset(seed=0)
    _, rewards, _, _, info = envs.step(["2 + 2", "   "])  # env 1 sends a blank step
    assert info["prm_score"][1] is None
    assert info["prm_score"][0] == pytest.approx(step_score_for(envs, 0, "2 + 2"))
    assert info["invalid_step"].tolist() == [False, True]
    assert rewards[1] == pytest.approx(-0.1)


def step_score_for(envs: ReasoningVectorEnv, index: int, step: str) -> float:
    problem = envs.envs[index].problem
    return step_score(StepQuery(problem=problem, previous_steps=(), step=step))


def test_task_verify_batch_called_once():
    task = BatchVerifySumTask()
    envs = ReasoningVectorEnv(num_envs=3, task=task, prm=None)
    envs.reset(options={"index": [1, 2, 3]})
    answers = [env.problem.answer for env in envs.envs]
    _, rewards, terminated, _, info = envs.step(
        [f"\\boxed{{{answers[0]}}}", "\\boxed{0}", "not yet"]
    )
    assert task.batch_calls == 1
    assert terminated.tolist() == [True, True, False]
    assert info["correct"][:2].tolist() == [True, False]
    assert rewards.tolist() == [1.0, 0.0, 0.0]


def test_reset_option_errors():
    envs = ReasoningVectorEnv(num_envs=2, task=SumTask())
    with pytest.raises(ValueError, match="shape"):
        envs.reset(options={"reset_mask": np.array([True])})
    with pytest.raises(TypeError, match="bool array"):
        envs.reset(options={"reset_mask": [True, False]})
    with pytest.raises(ValueError, match="selects no environment"):
        envs.reset(options={"reset_mask": np.array([False, False])})
    with pytest.raises(ValueError, match="3 entries but num_envs=2"):
        envs.reset(options={"index": [1, 2, 3]})
    with pytest.raises(ValueError, match="1 entries but num_envs=2"):
        envs.reset(seed=[1])


def test_from_envs_rejects_different_prms():
    task = SumTask()
    envs = [ReasoningEnv(task=task, prm=make_prm()) for _ in range(2)]
    with pytest.raises(ValueError, match="different PRM object"):
        ReasoningVectorEnv.from_envs(envs)
    prm = make_prm()
    vector = ReasoningVectorEnv.from_envs([ReasoningEnv(task=task, prm=prm) for _ in range(2)])
    assert vector.num_envs == 2
    assert vector.prm is prm


def test_make_vec_uses_vector_entry_point():
    envs = gym.make_vec(
        "Reasoning-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        task=SumTask(),
        max_steps=4,
    )
    assert isinstance(envs.unwrapped, ReasoningVectorEnv)
    assert envs.num_envs == 3
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert all(env.max_steps == 4 for env in envs.unwrapped.envs)
    obs, _ = envs.reset(seed=0)
    assert len(obs) == 3
    assert all(o.dtype == np.int64 and o.ndim == 1 for o in obs)
    envs.close()


def test_pad_batch_right_left_and_torch():
    rows = (np.array([5, 6, 7]), np.array([8]), np.array([], dtype=np.int64))
    ids, mask = pad_batch(rows, pad_id=0)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    ids, mask = pad_batch(rows, pad_id=9, side="left", pad_to_multiple_of=4)
    np.testing.assert_array_equal(ids, [[9, 5, 6, 7], [9, 9, 9, 8], [9, 9, 9, 9]])
    np.testing.assert_array_equal(mask, [[0, 1, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    restored = unpad_batch(ids, mask)
    for original, row in zip(rows, restored, strict=True):
        np.testing.assert_array_equal(original, row)

    torch = pytest.importorskip("torch")
    ids, mask = pad_batch(rows, return_tensors="pt")
    assert ids.dtype == torch.long
    assert tuple(mask.shape) == (3, 3)


def test_pad_batch_errors():
    with pytest.raises(ValueError, match="side='middle'"):
        pad_batch([[1]], side="middle")
    with pytest.raises(ValueError, match="max_length=2"):
        pad_batch([[1, 2, 3]], max_length=2)
    with pytest.raises(ValueError, match="row 1 has shape"):
        pad_batch([[1], [[2]]])
    with pytest.raises(TypeError, match="dtype float"):
        pad_batch([[1.5]])
    ids, mask = pad_batch([])
    assert ids.shape == (0, 0)


def test_pad_batch_of_vector_observations():
    envs = ReasoningVectorEnv(num_envs=3, task=SumTask())
    obs, _ = envs.reset(options={"index": [1, 22, 3]})
    obs, *_ = envs.step(["a", "a longer step", "b"])
    ids, mask = pad_batch(obs, pad_id=envs.tokenizer.pad_token_id, side="left")
    assert ids.shape == (3, max(len(o) for o in obs))
    assert mask.sum(axis=1).tolist() == [len(o) for o in obs]
    np.testing.assert_array_equal(ids[1, -len(obs[1]) :], obs[1])
