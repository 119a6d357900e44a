"""Parallel episode rollouts: one driver function over a local and a Ray backend.

:func:`collect_rollouts` runs one episode per problem index and returns plain records
ordered like the indices. Both backends give equal records for equal arguments, because
every episode is seeded from its problem index (see
:func:`reasoning_gym.distributed.local.episode_seed`).

Command-line entry points add ``--backend``, ``--address`` and ``--num-workers`` with
:func:`add_backend_arguments` and pass them on with :func:`backend_kwargs`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from reasoning_gym.distributed.local import (
    EnvSpec,
    LocalRolloutPool,
    PolicySpec,
    RolloutJob,
    RolloutWorker,
    build_env,
    build_policy,
    episode_seed,
    make_jobs,
    run_episode,
)

BACKENDS = ("local", "ray")


def collect_rollouts(
    env_spec: EnvSpec,
    policy_spec: PolicySpec,
    problem_indices: Iterable[int],
    backend: str = "local",
    num_workers: int = 2,
    address: str | None = None,
    seed: int = 0,
    progress: bool = False,
    **backend_options: Any,
) -> list[dict[str, Any]]:
    """Run one episode per problem index and return the records in the same order.

    Args:
        env_spec: Environment spec: a mapping of ``ReasoningEnv`` keyword arguments, an
            environment id or task name, or a picklable callable returning the env.
        policy_spec: Policy spec: ``"random"``, ``"oracle"``, ``"hf:MODEL"``, a mapping
            ``{"name": ..., **kwargs}``, or a picklable ``factory(env) -> StepPolicy``.
        problem_indices: Problem indices; a repeated index runs again with a new seed.
        backend: ``"local"`` runs the episodes in this process; ``"ray"`` runs them on
            ``num_workers`` Ray actors.
        num_workers: Number of Ray actors (the local backend uses one).
        address: Ray cluster address (``"auto"``, ``"HOST:PORT"``); None starts a local
            Ray instance unless Ray is already initialised in this process.
        seed: Base seed of the per-episode seeds.
        progress: Whether to show a tqdm progress bar.
        **backend_options: Extra options of the Ray backend (``chunk_size``,
            ``num_cpus_per_worker``).

    A Ray instance or a pool started here is shut down before returning. To run many
    batches, keep a pool from :func:`make_rollout_pool` instead.

    Returns:
        One dict per index (see :func:`reasoning_gym.distributed.local.run_episode`).
    """
    jobs = make_jobs(problem_indices, seed=seed)  # invalid indices raise before any start-up
    with make_rollout_pool(
        env_spec,
        policy_spec,
        backend=backend,
        num_workers=num_workers,
        address=address,
        **backend_options,
    ) as pool:
        return pool.run_jobs(jobs, progress=progress)


def make_rollout_pool(
    env_spec: EnvSpec,
    policy_spec: PolicySpec,
    backend: str = "local",
    num_workers: int = 2,
    address: str | None = None,
    **backend_options: Any,
) -> LocalRolloutPool | Any:
    """Build a rollout pool to keep across iterations; see :func:`collect_rollouts`.

    Returns:
        A :class:`LocalRolloutPool` or a ``RayRolloutPool``; both have
        ``collect(problem_indices, seed=0, progress=False)`` and ``close()`` and work as
        context managers.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid; use one of {BACKENDS}")
    if backend == "local":
        if backend_options:
            raise ValueError(
                f"options {sorted(backend_options)} apply only to backend='ray'; remove them"
            )
        return LocalRolloutPool(env_spec, policy_spec)
    from reasoning_gym.distributed.ray import RayRolloutPool

    return RayRolloutPool(
        env_spec, policy_spec, num_workers=num_workers, address=address, **backend_options
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--backend``, ``--address`` and ``--num-workers`` to a command's parser."""
    group = parser.add_argument_group("parallel rollouts")
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where episodes run: 'local' in this process, 'ray' on Ray actors (default: local)",
    )
    group.add_argument(
        "--address",
        default=None,
        help="Ray cluster address, e.g. 'auto' on a node of a cluster started with "
        "'ray start', or HOST:6379; without it --backend ray starts a local Ray instance",
    )
    group.add_argument(
        "--num-workers",
        type=int,
        default=2,
        help="number of Ray rollout workers, each holding one environment and one policy "
        "copy and reserving one CPU (default: 2)",
    )


def backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Return ``backend``, ``num_workers`` and ``address`` from parsed arguments.

    Raises:
        ValueError: When ``--address`` is given without ``--backend ray`` or
            ``--num-workers`` is below 1.
    """
    if args.num_workers < 1:
        raise ValueError(f"--num-workers={args.num_workers} must be at least 1")
    if args.address is not None and args.backend != "ray":
        raise ValueError(f"--address {args.address} needs --backend ray")
    return {"backend": args.backend, "num_workers": args.num_workers, "address": args.address}


__all__ = [
    "BACKENDS",
    "EnvSpec",
    "PolicySpec",
    "LocalRolloutPool",
    "RolloutJob",
    "RolloutWorker",
    "add_backend_arguments",
    "backend_kwargs",
    "build_env",
    "build_policy",
    "collect_rollouts",
    "episode_seed",
    "make_jobs",
    "make_rollout_pool",
    "run_episode",
]
