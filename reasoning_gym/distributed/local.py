"""Episode rollouts in this process: specs, per-episode seeds, records and the local backend.

A rollout runs one episode of a :class:`ReasoningEnv` with a step policy and returns a
plain record (a dict of str, int, float, bool, None and lists of them), so records
travel between processes and serialise to JSON unchanged.

Environments and policies are described by picklable specs and built where the episodes
run (this process, or a Ray worker):

- env spec: a mapping of ``ReasoningEnv`` keyword arguments, in which an optional
  ``"env_id"`` key names a registered id or task (``"Reasoning-Arithmetic-v0"``). It may
  also be a string (a registered id or a task name) or a picklable callable returning a
  ``ReasoningEnv``.
- policy spec: a name accepted by :func:`reasoning_gym.policies.make_policy`
  (``"random"``, ``"oracle"``, ``"hf:MODEL"``); a mapping ``{"name": NAME, **kwargs}``;
  or a picklable callable ``factory(env) -> StepPolicy``.

Every episode is reset with a seed derived from ``(seed, problem index, occurrence)``,
and the policy is reseeded with it, so a record depends only on its problem index and
never on which worker ran it or in which order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from reasoning_gym.env import ReasoningEnv

logger = logging.getLogger(__name__)

EnvSpec = Mapping[str, Any] | str | Callable[[], ReasoningEnv]
PolicySpec = Mapping[str, Any] | str | Callable[[ReasoningEnv], Any]


@dataclasses.dataclass(frozen=True)
class RolloutJob:
    """One episode to run.

    Attributes:
        position: Position of the episode in the caller's list of problem indices.
        problem_index: Index of the problem in the task.
        seed: Seed of the environment reset and of the policy for this episode.
    """

    position: int
    problem_index: int
    seed: int


def episode_seed(seed: int, problem_index: int, occurrence: int = 0) -> int:
    """Return the seed of episode ``occurrence`` of ``problem_index`` under ``seed`` (63 bits).

    The inputs are hashed, so neighbouring indices get unrelated seeds.
    """
    text = f"rollout:{seed}:{problem_index}:{occurrence}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def make_jobs(problem_indices: Iterable[int], seed: int = 0) -> list[RolloutJob]:
    """Turn problem indices into jobs; a repeated index gets a new seed each time it occurs."""
    jobs: list[RolloutJob] = []
    occurrences: dict[int, int] = {}
    for position, index in enumerate(problem_indices):
        if isinstance(index, bool) or not hasattr(index, "__index__") or int(index) < 0:
            raise ValueError(
                f"problem index {index!r} at position {position} is invalid; use a "
                "non-negative integer"
            )
        index = int(index)
        occurrence = occurrences.get(index, 0)
        occurrences[index] = occurrence + 1
        jobs.append(RolloutJob(position, index, episode_seed(seed, index, occurrence)))
    return jobs


def build_env(env_spec: EnvSpec) -> ReasoningEnv:
    """Build the environment that an env spec describes (see the module docstring)."""
    from reasoning_gym.registration import env_ids, resolve_env_id

    if isinstance(env_spec, str):
        env_spec = {"env_id": env_spec}
    if isinstance(env_spec, Mapping):
        kwargs = dict(env_spec)
        env_id = kwargs.pop("env_id", None)
        if env_id is not None:
            task_name = env_ids()[resolve_env_id(str(env_id))]
            if task_name is not None:
                kwargs.setdefault("task", task_name)
        return ReasoningEnv(**kwargs)
    if callable(env_spec):
        env = env_spec()
        env = getattr(env, "unwrapped", env)
        if not isinstance(env, ReasoningEnv):
            raise TypeError(
                f"env spec {env_spec!r} returned {type(env).__name__}, not a ReasoningEnv"
            )
        return env
    raise TypeError(
        f"env spec {env_spec!r} is invalid; pass a mapping of ReasoningEnv keyword arguments, "
        "an environment id or task name, or a callable returning a ReasoningEnv"
    )


def build_policy(policy_spec: PolicySpec, env: ReasoningEnv) -> Any:
    """Build the step policy that a policy spec describes, for episodes of ``env``.

    Named policies get the environment's tokenizer (``"random"``, models) or the
    environment itself (``"oracle"``) unless the spec sets them.
    """
    from reasoning_gym.policies import make_policy

    if isinstance(policy_spec, str):
        policy_spec = {"name": policy_spec}
    if isinstance(policy_spec, Mapping):
        kwargs = dict(policy_spec)
        name = kwargs.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"policy spec {policy_spec!r} has no 'name'; add e.g. 'random'")
        if name == "oracle":
            kwargs.setdefault("env", env)
        else:
            kwargs.setdefault("tokenizer", env.tokenizer)
            if name != "random":
                kwargs.setdefault("separator", env.step_separator)
        return make_policy(name, **kwargs)
    if callable(policy_spec):
        policy = policy_spec(env)
        if not hasattr(policy, "propose"):
            raise TypeError(
                f"policy factory {policy_spec!r} returned {type(policy).__name__}, which has no "
                "propose(); return a StepPolicy"
            )
        return policy
    raise TypeError(
        f"policy spec {policy_spec!r} is invalid; pass a policy name, a mapping with 'name', "
        "or a callable factory(env) -> StepPolicy"
    )


def _seed_policy(policy: Any, seed: int) -> Any:
    """Reseed ``policy`` for one episode; return the sampling settings to pass to propose()."""
    reseed = getattr(policy, "reseed", None)
    if callable(reseed):
        reseed(seed)
    else:
        from reasoning_gym.policies.baselines import RandomPolicy

        if isinstance(policy, RandomPolicy):
            # NOTE: RandomPolicy has no public reseed method yet, so its generator is replaced.
            policy._rng = random.Random(seed)
    sampling = getattr(policy, "sampling", None)
    if sampling is None:
        return None
    # HFPolicy reseeds its torch generator whenever the sampling seed changes.
    return dataclasses.replace(sampling, seed=seed)


def run_episode(env: ReasoningEnv, policy: Any, job: RolloutJob) -> dict[str, Any]:
    """Run one episode of ``job`` to its end and return its record.

    Returns:
        A dict with ``position``, ``problem_index``, ``problem_id``, ``seed``,
        ``steps`` (texts), ``step_ids`` (token ids of each step), ``rewards``,
        ``prm_scores``, ``return``, ``answer``, ``gold_answer``, ``correct``,
        ``terminated``, ``truncated`` and ``num_steps``.
    """
    observation, _ = env.reset(seed=job.seed, options={"index": job.problem_index})
    if hasattr(policy, "reset"):
        policy.reset()
    sampling = _seed_policy(policy, job.seed)
    rewards: list[float] = []
    info: dict[str, Any] = {}
    terminated = truncated = False
    while not (terminated or truncated):
        proposal = policy.propose([observation], n=1, sampling=sampling)[0][0]
        observation, reward, terminated, truncated, info = env.step(proposal.token_ids)
        rewards.append(float(reward))
    state = env.get_state()
    steps = state.steps
    return {
        "position": job.position,
        "problem_index": job.problem_index,
        "problem_id": state.problem.id,
        "seed": job.seed,
        "steps": [step.text for step in steps],
        "step_ids": [[int(i) for i in step.ids] for step in steps],
        "rewards": rewards,
        "prm_scores": [None if step.score is None else float(step.score) for step in steps],
        "return": float(sum(rewards)),
        "answer": info.get("answer"),
        "gold_answer": info.get("gold_answer"),
        "correct": bool(info.get("correct", False)),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "num_steps": len(steps),
    }


class RolloutWorker:
    """An environment and a policy built from specs; runs jobs one episode at a time.

    The Ray backend wraps this class in an actor, and the local backend uses it directly.
    """

    def __init__(self, env_spec: EnvSpec, policy_spec: PolicySpec):
        self.env = build_env(env_spec)
        self.policy = build_policy(policy_spec, self.env)

    def ready(self) -> bool:
        """Return True; a Ray driver calls it to wait until the worker is built."""
        return True

    def run(self, jobs: Sequence[RolloutJob]) -> list[dict[str, Any]]:
        """Run ``jobs`` in order and return their records."""
        return [run_episode(self.env, self.policy, job) for job in jobs]


class LocalRolloutPool:
    """Runs episodes in this process with one environment and one policy.

    It has the interface of :class:`reasoning_gym.distributed.ray.RayRolloutPool`
    (``collect``, ``close``, use as a context manager), so a training loop can keep
    either pool across iterations.
    """

    def __init__(self, env_spec: EnvSpec, policy_spec: PolicySpec):
        self.worker = RolloutWorker(env_spec, policy_spec)

    def collect(
        self, problem_indices: Iterable[int], seed: int = 0, progress: bool = False
    ) -> list[dict[str, Any]]:
        """Run one episode per problem index; return the records in the same order."""
        return self.run_jobs(make_jobs(problem_indices, seed=seed), progress=progress)

    def run_jobs(self, jobs: Sequence[RolloutJob], progress: bool = False) -> list[dict[str, Any]]:
        """Run ``jobs`` and return their records in the order of ``jobs``."""
        iterator: Iterable[RolloutJob] = jobs
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(jobs, desc="rollouts (local)", unit="episode")
        return [run_episode(self.worker.env, self.worker.policy, job) for job in iterator]

    def close(self) -> None:
        """Release nothing: the environment and policy are garbage-collected."""

    def __enter__(self) -> LocalRolloutPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
