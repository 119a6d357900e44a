"""The ReasoningEnv contract: MDP transitions, rewards, snapshots, errors."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reasoning_gym
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.errors import InvalidActionError, ResetNeededError, UnknownNameError
from reasoning_gym.tasks.base import Problem, Task


class SumTask(Task):
    """Add two numbers; a step is correct when it contains the right sum."""

    name = "sum"

    def problem(self, index: int, seed: int = 0) -> Problem:
        a, b = index % 7 + 1, index % 5 + 2
        return Problem(
            id=f"sum/{index}",
            question=f"What is {a} + {b}?",
            answer=str(a + b),
            gold_steps=(f"{a} + {b} = {a + b}", f"The answer is \\boxed{{{a + b}}}."),
            metadata={"task": "sum", "index": index},
        )

    def check_step(self, problem: Problem, previous_steps: Sequence[str], step: str) -> float:
        return 1.0 if problem.answer in step else 0.0


def make_env(**kwargs) -> ReasoningEnv:
    kwargs.setdefault("task", SumTask())
    return ReasoningEnv(**kwargs)


def test_observation_is_prompt_plus_steps():
    env = make_env()
    obs0, info = env.reset(seed=3)
    prompt = env.prompt_ids(env.problem)
    np.testing.assert_array_equal(obs0, prompt)
    assert info["context_tokens"] == len(prompt)
    obs1, *_ = env.step("first step")
    obs2, *_ = env.step(np.array(env.tokenizer.encode("second"), dtype=np.int64))
    expected = np.concatenate(
        [
            prompt,
            env.tokenizer.encode("first step"),
            env.separator_ids,
            env.tokenizer.encode("second"),
            env.separator_ids,
        ]
    )
    np.testing.assert_array_equal(obs2, expected)
    assert obs2.dtype == np.int64
    assert obs2.ndim == 1
    np.testing.assert_array_equal(obs2[: len(obs1)], obs1)


def test_observations_never_share_memory():
    env = make_env()
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step("a step")
    assert not np.shares_memory(obs0, obs1)
    obs0[0] = -1  # the caller owns its copy
    assert env.state.ids[0] != -1


def test_zero_copy_observations_are_read_only_views():
    env = make_env(copy_observations=False)
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step("a step")
    assert np.shares_memory(obs0, obs1)
    with pytest.raises(ValueError):
        obs1[0] = 1


def test_hf_tokenizer_chat_prompt(hf_tokenizer):
    env = make_env(tokenizer=hf_tokenizer)
    obs, _ = env.reset(seed=0)
    text = hf_tokenizer.decode(obs)
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>assistant\n")
    assert env.problem.question in text
    obs, *_ = env.step("7 + 2 = 9")
    assert hf_tokenizer.decode(obs).endswith("7 + 2 = 9\n")


def test_plain_prompt_without_template(hf_tokenizer_plain):
    env = make_env(tokenizer=hf_tokenizer_plain)
    obs, _ = env.reset(seed=0)
    assert hf_tokenizer_plain.decode(obs).endswith("Solution:\n")
    with pytest.raises(ValueError, match="no chat template"):
        make_env(tokenizer=hf_tokenizer_plain, prompt_style="chat").reset(seed=0)


def test_final_answer_terminates_with_outcome():
    env = make_env()
    env.reset(options={"index": 0})  # 1 + 2 = 3
    _, reward, terminated, truncated, info = env.step("1 + 2 = 3")
    assert reward == pytest.approx(1.0)  # oracle PRM score of a correct step
    assert not terminated and not truncated
    assert info["prm_score"] == 1.0
    assert info["is_final"] is False
    _, reward, terminated, truncated, info = env.step("The answer is \\boxed{3}.")
    assert terminated and not truncated
    assert info["correct"] is True
    assert info["answer"] == "3"
    assert info["gold_answer"] == "3"
    assert info["outcome_score"] == 1.0
    assert reward == pytest.approx(2.0)  # PRM 1.0 + outcome 1.0


def test_wrong_answer_rewards():
    env = make_env(reward_mode="outcome")
    env.reset(options={"index": 0})
    _, reward, *_ = env.step("1 + 2 = 4")
    assert reward == 0.0
    _, reward, terminated, _, info = env.step("\\boxed{4}")
    assert terminated
    assert reward == 0.0
    assert info["correct"] is False


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("outcome", [0.0, 0.0, 1.0]),
        ("process", [1.0, 0.0, 1.0]),
        ("process+outcome", [1.0, 0.0, 2.0]),
        # Phi: 0 -> 1 -> 0 -> terminal 0; gamma 0.9.
        ("potential", [0.9 * 1.0 - 0.0, 0.9 * 0.0 - 1.0, 0.0 - 0.0 + 1.0]),
    ],
)
def test_reward_modes(mode, expected):
    env = make_env(reward_mode=mode, gamma=0.9)
    env.reset(options={"index": 0})
    rewards = [env.step(action)[1] for action in ("1 + 2 = 3", "so what", "\\boxed{3}")]
    assert rewards == pytest.approx(expected)


def test_truncation_is_not_termination():
    env = make_env(max_steps=2)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step("a")
    assert (terminated, truncated) == (False, False)
    _, _, terminated, truncated, info = env.step("b")
    assert (terminated, truncated) == (False, True)
    assert info["correct"] is False
    assert info["answer"] is None
    with pytest.raises(ResetNeededError):
        env.step("c")


def test_context_limit_truncates_and_cuts():
    env = make_env(max_context_tokens=220, max_step_tokens=500)
    obs, _ = env.reset(seed=0)
    obs, _, terminated, truncated, info = env.step("x" * 400)
    assert truncated and not terminated
    assert info["step_truncated"] is True
    assert len(obs) <= 220


def test_long_step_is_cut():
    env = make_env(max_step_tokens=5)
    env.reset(seed=0)
    _, _, _, _, info = env.step("abcdefghij")
    assert info["step_truncated"] is True
    assert env.state.last_step.text == "abcde"


@pytest.mark.parametrize("junk", ["", "   ", "\n\n\n", np.zeros(0, dtype=np.int64)])
def test_junk_steps_get_penalty(junk):
    env = make_env(invalid_step_reward=-0.5)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(junk)
    assert info["invalid_step"] is True
    assert info["prm_score"] is None
    assert reward == pytest.approx(-0.5)
    assert not terminated and not truncated
    env.step("continues")  # the episode goes on


def test_invalid_utf8_ids_do_not_crash():
    env = make_env()
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0xFF, 0xFE, 0x41], dtype=np.int64))
    assert "\ufffd" in env.state.last_step.text
    assert info["invalid_step"] is False


def test_programming_errors_raise():
    env = make_env()
    with pytest.raises(ResetNeededError, match="reset"):
        env.step("too early")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="str or a 1-D array"):
        env.step(3.5)
    with pytest.raises(InvalidActionError, match="outside the vocabulary"):
        env.step(np.array([1, 100000]))
    with pytest.raises(InvalidActionError, match="1-D integer"):
        env.step(np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": -1})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"idx": 1})


def test_same_seed_same_problem_and_rewards():
    first, second = make_env(), make_env()
    obs_a, _ = first.reset(seed=42)
    obs_b, _ = second.reset(seed=42)
    np.testing.assert_array_equal(obs_a, obs_b)
    for action in ("3 + 4 = 7", "hmm", "\\boxed{7}"):
        out_a, out_b = first.step(action), second.step(action)
        np.testing.assert_array_equal(out_a[0], out_b[0])
        assert out_a[1:4] == out_b[1:4]
    assert make_env().reset(seed=1)[1]["problem_id"] != make_env().reset(seed=2)[1]["problem_id"]


def test_env_owns_its_rng():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    make_env().reset(seed=5)
    assert np.random.random() == before


def test_snapshot_restores_exactly_and_shares_prefix():
    env = make_env()
    env.reset(options={"index": 0})
    env.step("1 + 2 = 3")
    snapshot = env.get_state()
    obs_a, reward_a, *_ = env.step("branch A")
    state_a = env.get_state()
    env.set_state(snapshot)
    obs_b, reward_b, *_ = env.step("branch B, longer")
    np.testing.assert_array_equal(obs_a[: len(snapshot.ids)], snapshot.ids)
    assert env.tokenizer.decode(obs_b).endswith("branch B, longer\n")
    assert env.tokenizer.decode(state_a.ids).endswith("branch A\n")  # untouched by branch B
    assert snapshot.buffer is state_a.buffer  # shared storage, nothing copied per step
    env.set_state(state_a)
    np.testing.assert_array_equal(env.state.ids, obs_a)
    assert env.state.step_texts == ("1 + 2 = 3", "branch A")


def test_render_ansi():
    env = make_env(render_mode="ansi")
    env.reset(options={"index": 0})
    env.step("1 + 2 = 3")
    env.step("\\boxed{3}")
    text = env.render()
    assert "Question: What is 1 + 2?" in text
    assert "prm=1.000" in text
    assert "Outcome: correct" in text


def test_check_env_passes():
    check_env(make_env(task="arithmetic").unwrapped, skip_render_check=True)


def test_registered_ids_and_unknown_task():
    env = gym.make("Reasoning-v0")
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.int64
    assert "arithmetic" in info["problem_id"]
    assert "Reasoning-Arithmetic-v0" in gym.registry
    assert "Reasoning-GSM8K-v0" in gym.registry
    with pytest.raises(UnknownNameError, match="(?i)did you mean 'arithmetic'"):
        gym.make("Reasoning-v0", task="arithmetc")


def test_make_with_module_prefix_in_subprocess():
    import subprocess
    import sys

    code = (
        "import gymnasium as gym; env = gym.make('reasoning_gym:Reasoning-v0'); "
        "obs, _ = env.reset(seed=0); print(len(obs))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) > 10


@pytest.mark.parametrize(
    ("vector_cls", "kwargs"),
    [
        (gym.vector.SyncVectorEnv, {}),
        # Variable-length observations cannot live in fixed shared memory.
        (gym.vector.AsyncVectorEnv, {"shared_memory": False}),
    ],
)
def test_vector_envs_over_four(vector_cls, kwargs):
    envs = vector_cls([lambda: gym.make("Reasoning-v0") for _ in range(4)], **kwargs)
    try:
        obs, _ = envs.reset(seed=0)
        assert len(obs) == 4
        obs, rewards, terminated, truncated, _ = envs.step(("1 + 1 = 2",) * 4)
        assert rewards.shape == (4,)
        assert all(len(o) > 0 for o in obs)
    finally:
        envs.close()


def test_conflict_warning_when_other_distribution(monkeypatch, caplog):
    from importlib import metadata

    class FakeDistribution:
        version = "0.1.19"

    def fake_distribution(name):
        if name == "reasoning-gym":
            return FakeDistribution()
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", fake_distribution)
    with caplog.at_level("WARNING", logger="reasoning_gym"):
        reasoning_gym._warn_if_conflicting_distribution()
    assert "overwrites" in caplog.text
    assert "reasoning-gym 0.1.19" in caplog.text


def test_set_state_rejects_other_task():
    arithmetic = make_env(task="arithmetic")
    arithmetic.reset(seed=0)
    snapshot = arithmetic.get_state()
    with pytest.raises(ValueError, match="same task"):
        make_env().set_state(snapshot)  # a SumTask environment
    other_seed = make_env(task="arithmetic")
    other_seed.set_state(snapshot)  # same task: allowed
    assert other_seed.state is snapshot
