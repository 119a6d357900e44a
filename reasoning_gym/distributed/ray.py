"""Episode rollouts on Ray: one actor per worker, each holding an environment and a policy.

Ray is an optional dependency (``pip install 'reasoning-gym-rl[ray]'``) and is imported
only when this backend runs. The driver connects to a running cluster with
``ray.init(address=...)`` or, without an address, starts a local Ray instance. An
instance that was already initialised in this process is used as it is.

Each actor builds its environment and policy from the picklable specs described in
:mod:`reasoning_gym.distributed.local`, so model weights are loaded on the worker and
never pickled. Jobs are handed out in small chunks to whichever actor is free, and the
records come back ordered by the caller's problem list. A :class:`RayRolloutPool` keeps
its actors across calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from reasoning_gym.distributed.local import (
    EnvSpec,
    PolicySpec,
    RolloutJob,
    RolloutWorker,
    make_jobs,
)

logger = logging.getLogger(__name__)


def require_ray() -> Any:
    """Import and return the ``ray`` module, or raise ImportError saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            "the 'ray' backend needs Ray, which is not installed; install it with "
            "pip install 'reasoning-gym-rl[ray]' (or pip install 'ray[default]'), or use "
            "--backend local"
        ) from error
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None, **kwargs: Any) -> bool:
    """Connect to a Ray cluster at ``address`` or start a local instance.

    Args:
        address: ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:10001"`` to join a running
            cluster; None starts a local instance with ``num_cpus`` CPUs.
        num_cpus: CPUs of a local instance (None lets Ray count them); ignored with an
            address, because a cluster's resources are set by ``ray start``.
        **kwargs: Passed to ``ray.init``.

    Returns:
        True when this call initialised Ray, False when it was initialised before (the
        caller then leaves it running).
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    if address is not None:
        logger.info("connecting to the Ray cluster at %s", address)
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as error:
            raise ValueError(
                f"no Ray cluster found at --address {address!r} ({error}); start one with "
                "`ray start --head`, pass the head node's HOST:PORT, or leave out --address "
                "to start a local instance"
            ) from error
    else:
        kwargs.setdefault("include_dashboard", False)
        logger.info("starting a local Ray instance with num_cpus=%s", num_cpus)
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


class RayRolloutPool:
    """Ray actors that each hold an environment and a policy, kept across ``collect`` calls.

    Creating the actors (worker processes, imports, model loading) takes seconds, so a
    training loop should keep one pool and call :meth:`collect` once per iteration.

    Args:
        env_spec: Spec of each worker's environment.
        policy_spec: Spec of each worker's policy.
        num_workers: Number of actors.
        address: Cluster address for ``ray.init``; None starts a local instance with
            ``num_workers * num_cpus_per_worker`` CPUs unless Ray is already initialised.
        num_cpus_per_worker: CPUs Ray reserves for each actor.
        chunk_size: Episodes per task sent to an actor; None picks about four chunks
            per worker, which balances load while keeping the per-call overhead small.

    Raises:
        ImportError: When Ray is not installed.
        ray.exceptions.RayActorError: When an actor fails to build its env or policy.
    """

    def __init__(
        self,
        env_spec: EnvSpec,
        policy_spec: PolicySpec,
        num_workers: int = 2,
        address: str | None = None,
        num_cpus_per_worker: float = 1.0,
        chunk_size: int | None = None,
    ):
        if num_workers < 1:
            raise ValueError(f"num_workers={num_workers} must be at least 1")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size} must be at least 1 or None")
        if num_cpus_per_worker <= 0:
            raise ValueError(f"num_cpus_per_worker={num_cpus_per_worker} must be positive")
        self._ray = require_ray()
        self.num_workers = num_workers
        self.chunk_size = chunk_size
        local_cpus = max(1, int(round(num_workers * num_cpus_per_worker)))
        self._started_ray = init_ray(address=address, num_cpus=local_cpus)
        self._actors: list[Any] = []
        try:
            actor_class = self._ray.remote(num_cpus=num_cpus_per_worker)(RolloutWorker)
            self._actors = [actor_class.remote(env_spec, policy_spec) for _ in range(num_workers)]
            # Surface errors of building the env or the policy here, not in collect().
            self._ray.get([actor.ready.remote() for actor in self._actors])
        except BaseException:
            self.close()
            raise
        logger.info("started %d Ray rollout workers", num_workers)

    def collect(
        self, problem_indices: Iterable[int], seed: int = 0, progress: bool = False
    ) -> list[dict[str, Any]]:
        """Run one episode per problem index; return the records in the same order."""
        return self.run_jobs(make_jobs(problem_indices, seed=seed), progress=progress)

    def run_jobs(self, jobs: Sequence[RolloutJob], progress: bool = False) -> list[dict[str, Any]]:
        """Run ``jobs`` on the actors and return the records in the order of ``jobs``."""
        if not self._actors:
            raise RuntimeError("the RayRolloutPool is closed; create a new one")
        if not jobs:
            return []
        ray = self._ray
        chunk_size = self.chunk_size or max(1, len(jobs) // (4 * len(self._actors)))
        chunks = [list(jobs[i : i + chunk_size]) for i in range(0, len(jobs), chunk_size)]

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc=f"rollouts (ray, {len(self._actors)} workers)")
        records: list[dict[str, Any]] = []
        next_chunk = 0
        running: dict[Any, Any] = {}  # object ref -> actor
        try:
            for actor in self._actors[: len(chunks)]:
                running[actor.run.remote(chunks[next_chunk])] = actor
                next_chunk += 1
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(done[0])
                chunk_records = ray.get(done[0])
                records.extend(chunk_records)
                if bar is not None:
                    bar.update(len(chunk_records))
                if next_chunk < len(chunks):
                    running[actor.run.remote(chunks[next_chunk])] = actor
                    next_chunk += 1
        finally:
            if bar is not None:
                bar.close()
            for ref in running:
                ray.cancel(ref)
        records.sort(key=lambda record: record["position"])
        return records

    def close(self) -> None:
        """Stop the actors, and Ray itself when this pool started it."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayRolloutPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
