"""Rollouts on Ray equal local rollouts; backend arguments; specs and seeds.

The Ray tests start a local Ray instance with 2 CPUs once per module and skip when Ray
is not installed or fails to start.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest

from reasoning_gym.distributed import (
    add_backend_arguments,
    backend_kwargs,
    build_env,
    collect_rollouts,
    episode_seed,
    make_jobs,
    make_rollout_pool,
)
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.tasks.base import Problem, Task

PROBLEMS = [4, 0, 7, 2, 9, 4]  # index 4 twice: the second episode gets its own seed


class RolloutSumTask(Task):
    """Add two numbers; the step checker accepts a step containing the sum."""

    name = "rollout-sum"

    @property
    def num_problems(self) -> int:
        return 20

    def problem(self, index: int, seed: int = 0) -> Problem:
        a, b = index % 7 + 1, index % 5 + 2
        return Problem(
            id=f"rollout-sum/{index}",
            question=f"What is {a} + {b}?",
            answer=str(a + b),
            gold_steps=(f"{a} + {b} = {a + b}", f"The answer is \\boxed{{{a + b}}}."),
        )

    def check_step(self, problem, previous_steps, step) -> float:
        return 1.0 if problem.answer in step else 0.0


def make_sum_env() -> ReasoningEnv:
    return ReasoningEnv(task=RolloutSumTask(), max_steps=4)


def make_tiny_env() -> ReasoningEnv:
    from reasoning_gym.testing import tiny_tokenizer

    return ReasoningEnv(
        task=RolloutSumTask(), tokenizer=tiny_tokenizer(), max_steps=2, max_step_tokens=8
    )


def make_tiny_policy(env: ReasoningEnv):
    """Build a greedy policy on a tiny random Llama model (runs in each worker)."""
    from reasoning_gym.policies.base import SamplingConfig
    from reasoning_gym.policies.hf import HFPolicy
    from reasoning_gym.testing import tiny_causal_lm

    model = tiny_causal_lm(env.tokenizer.vocab_size, seed=0)
    return HFPolicy(model, env.tokenizer, sampling=SamplingConfig(max_step_tokens=8))


@pytest.fixture(scope="module")
def ray_instance():
    try:
        import ray
    except ImportError:
        pytest.skip("ray is not installed; pip install 'reasoning-gym-rl[ray]'")
    # Workers unpickle this module's task and factories by value, since they cannot
    # import the test module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # Ray raises several types when it cannot start
        pytest.skip(f"a local Ray instance failed to start: {error}")
    yield ray
    ray.shutdown()


def test_local_records_ordered_and_complete():
    records = collect_rollouts(make_sum_env, "oracle", PROBLEMS, backend="local")
    assert [record["problem_index"] for record in records] == PROBLEMS
    assert [record["position"] for record in records] == list(range(len(PROBLEMS)))
    first = records[0]
    assert first["problem_id"] == "rollout-sum/4"
    assert first["steps"] == ["5 + 6 = 11", "The answer is \\boxed{11}."]
    assert first["correct"] is True
    assert first["terminated"] is True
    assert first["answer"] == "11"
    assert first["rewards"] == pytest.approx([1.0, 2.0])
    assert first["return"] == pytest.approx(3.0)
    tokenizer = make_sum_env().tokenizer
    assert first["step_ids"][0] == tokenizer.encode("5 + 6 = 11")


def test_random_policy_records_depend_on_index_only():
    spec = {"task": RolloutSumTask(), "max_steps": 4}
    forward = collect_rollouts(spec, "random", [3, 5, 8], backend="local", seed=1)
    backward = collect_rollouts(spec, "random", [8, 5, 3], backend="local", seed=1)
    assert forward[0]["steps"] == backward[2]["steps"]
    assert forward[2]["steps"] == backward[0]["steps"]
    assert forward[1]["seed"] == backward[1]["seed"]
    other_seed = collect_rollouts(spec, "random", [3, 5, 8], backend="local", seed=2)
    assert [r["steps"] for r in other_seed] != [r["steps"] for r in forward]


def test_repeated_index_gets_new_seed():
    jobs = make_jobs([4, 4, 1], seed=0)
    assert jobs[0].seed == episode_seed(0, 4, 0)
    assert jobs[1].seed == episode_seed(0, 4, 1)
    assert jobs[0].seed != jobs[1].seed
    with pytest.raises(ValueError, match="problem index -1 at position 0"):
        make_jobs([-1])


@pytest.mark.slow
def test_ray_tiny_model_policy_equals_local(ray_instance):
    indices = [1, 6, 2]
    local = collect_rollouts(make_tiny_env, make_tiny_policy, indices, backend="local")
    remote = collect_rollouts(
        make_tiny_env, make_tiny_policy, indices, backend="ray", num_workers=2, chunk_size=1
    )
    assert remote == local
    assert all(record["num_steps"] >= 1 for record in remote)
    assert all(np.all(np.isfinite(record["rewards"])) for record in remote)


@pytest.mark.slow
def test_ray_pool_equals_local_and_is_reused(ray_instance):
    local = collect_rollouts(make_sum_env, "random", PROBLEMS, seed=5)
    with make_rollout_pool(
        make_sum_env, "random", backend="ray", num_workers=2, chunk_size=1
    ) as pool:
        first = pool.collect(PROBLEMS, seed=5)
        second = pool.collect(PROBLEMS[::-1], seed=5)
    assert first == local
    assert [record["problem_index"] for record in second] == PROBLEMS[::-1]
    assert second[0]["steps"] == first[0]["steps"]  # index 4, first occurrence
    assert second[1]["steps"] == first[4]["steps"]  # index 9
    assert ray_instance.is_initialized()  # the pool left the test's Ray instance running
    with pytest.raises(RuntimeError, match="closed"):
        pool.collect([1])


def test_backend_arguments_parse():
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    args = parser.parse_args(["--backend", "ray", "--address", "auto", "--num-workers", "4"])
    assert backend_kwargs(args) == {"backend": "ray", "num_workers": 4, "address": "auto"}
    args = parser.parse_args([])
    assert backend_kwargs(args) == {"backend": "local", "num_workers": 2, "address": None}
    with pytest.raises(ValueError, match="needs --backend ray"):
        backend_kwargs(parser.parse_args(["--address", "auto"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--backend", "spark"])


def test_spec_errors():
    with pytest.raises(ValueError, match="backend='spark' is invalid"):
        collect_rollouts(make_sum_env, "oracle", [0], backend="spark")
    with pytest.raises(TypeError, match="env spec 42 is invalid"):
        build_env(42)
    with pytest.raises(ValueError, match="apply only to backend='ray'"):
        collect_rollouts(make_sum_env, "oracle", [0], chunk_size=2)
    with pytest.raises(ValueError, match="has no 'name'"):
        collect_rollouts(make_sum_env, {"temperature": 1.0}, [0])


def test_env_spec_forms():
    assert build_env("arithmetic").task.name == "arithmetic"
    env = build_env({"env_id": "Reasoning-Arithmetic-v0", "max_steps": 3})
    assert env.task.name == "arithmetic"
    assert env.max_steps == 3
    assert build_env(make_sum_env).task.name == "rollout-sum"


def test_eval_cli_ray_backend(ray_instance, tmp_path):
    import argparse
    import json

    from reasoning_gym.cli import eval_cmd
    from reasoning_gym.episodes import read_episodes

    def run_eval(agent: str, out) -> list:
        parser = argparse.ArgumentParser()
        eval_cmd.add_arguments(parser)
        argv = ["--agent", agent, "--limit", "3", "--max-steps", "4", "--out", str(out)]
        args = parser.parse_args([*argv, "--backend", "ray", "--num-workers", "2"])
        assert eval_cmd.run(args) == 0
        return read_episodes(out / "episodes.jsonl")

    oracle = run_eval("oracle", tmp_path / "oracle")
    assert [record.index for record in oracle] == [0, 1, 2]
    assert all(record.correct for record in oracle)
    summary = json.loads((tmp_path / "oracle" / "summary.json").read_text())
    assert summary["accuracy"] == 1.0

    random_records = run_eval("random", tmp_path / "random")
    local = collect_rollouts(
        {"env_id": "Reasoning-v0", "max_steps": 4, "max_step_tokens": 128, "prm": "auto"},
        {"name": "random"},
        [0, 1, 2],
        backend="local",
    )
    assert [record.steps for record in random_records] == [row["steps"] for row in local]
