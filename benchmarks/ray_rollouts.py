"""Episodes per second of ``collect_rollouts``: the local backend against Ray with 2 workers.

Each episode is an ``arithmetic`` problem solved by a greedy HFPolicy on a tiny
randomly initialised Llama (``reasoning_gym.testing.tiny_causal_lm``) with the tiny
test tokenizer, so the work per episode is model generation, as in real rollouts. The
``random`` policy rows show the backends' overhead on near-free episodes. Each process
uses one torch thread. Ray itself is started once before timing (its start-up time is
in the notes). For each backend the table gives the time to build a rollout pool
(for Ray: start the actors, import, build the env and model in each). It also gives the
time of one ``collect`` on the ready pool, the cost per iteration of a training loop
that keeps its pool. Both backends must return equal records.

Run: .venv/bin/python -m benchmarks.ray_rollouts [--episodes 24] [--num-workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from benchmarks._common import write_results
from reasoning_gym.distributed import make_rollout_pool
from reasoning_gym.env import ReasoningEnv

NAME = "ray_rollouts"
MAX_STEPS = 4
MAX_STEP_TOKENS = 16


def make_env() -> ReasoningEnv:
    """Build the episode environment (runs in each worker)."""
    import torch

    from reasoning_gym.testing import tiny_tokenizer

    torch.set_num_threads(1)
    return ReasoningEnv(
        task="arithmetic",
        tokenizer=tiny_tokenizer(),
        max_steps=MAX_STEPS,
        max_step_tokens=MAX_STEP_TOKENS,
        max_context_tokens=1024,
    )


def make_tiny_policy(env: ReasoningEnv) -> Any:
    """Build a greedy HFPolicy on a tiny random Llama (runs in each worker)."""
    from reasoning_gym.policies.base import SamplingConfig
    from reasoning_gym.policies.hf import HFPolicy
    from reasoning_gym.testing import tiny_causal_lm

    model = tiny_causal_lm(env.tokenizer.vocab_size, seed=0)
    return HFPolicy(model, env.tokenizer, sampling=SamplingConfig(max_step_tokens=MAX_STEP_TOKENS))


def time_backend(backend: str, policy: Any, indices: list[int], num_workers: int) -> dict:
    """Time building a pool (workers, env, policy) and then collecting ``indices`` with it."""
    start = time.perf_counter()
    with make_rollout_pool(make_env, policy, backend=backend, num_workers=num_workers) as pool:
        startup = time.perf_counter() - start
        start = time.perf_counter()
        records = pool.collect(indices, progress=True)
        seconds = time.perf_counter() - start
    return {"records": records, "startup": startup, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=24, help="episodes per measurement")
    parser.add_argument("--num-workers", type=int, default=2, help="Ray rollout workers")
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    # Ray workers cannot import this script, so its factories are pickled by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    start = time.perf_counter()
    ray.init(num_cpus=args.num_workers, include_dashboard=False, log_to_driver=False)
    ray_startup = time.perf_counter() - start

    indices = list(range(args.episodes))
    rows = []
    try:
        for label, policy in (("tiny-llama greedy", make_tiny_policy), ("random", "random")):
            local = time_backend("local", policy, indices, args.num_workers)
            remote = time_backend("ray", policy, indices, args.num_workers)
            if remote["records"] != local["records"]:
                raise RuntimeError(f"Ray records differ from local records for policy {label!r}")
            steps = sum(record["num_steps"] for record in local["records"])
            for backend, result in (("local", local), ("ray", remote)):
                rows.append(
                    {
                        "policy": label,
                        "backend": backend,
                        "workers": 1 if backend == "local" else args.num_workers,
                        "episodes": args.episodes,
                        "steps": steps,
                        "pool_startup_s": result["startup"],
                        "collect_s": result["seconds"],
                        "episodes_per_s": args.episodes / result["seconds"],
                        "speedup_vs_local": local["seconds"] / result["seconds"],
                        "episodes_per_s_with_startup": args.episodes
                        / (result["seconds"] + result["startup"]),
                        "records_equal_local": True,
                    }
                )
                rate = args.episodes / result["seconds"]
                print(f"{label:>18} {backend:>5}: {rate:.2f} episodes/s")
    finally:
        ray.shutdown()

    notes = (
        f"Ray start-up (ray.init with num_cpus={args.num_workers}, not timed above): "
        f"{ray_startup:.1f} s. pool_startup_s: building the pool (Ray: {args.num_workers} "
        "actors, each importing torch and transformers and building the env and policy). "
        "episodes_per_s and speedup_vs_local: one collect() on the ready pool. "
        f"Episodes: arithmetic problems 0..{args.episodes - 1}, max_steps={MAX_STEPS}, "
        f"max_step_tokens={MAX_STEP_TOKENS}; one torch thread per process. The machine's 2 "
        "cores are shared with other users, so timings are noisy. records_equal_local: the "
        "Ray records equal the local ones."
    )
    meta = {"ray_startup_s": ray_startup, "num_workers": args.num_workers}
    json_path, md_path = write_results(NAME, rows, meta=meta, notes=notes)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
