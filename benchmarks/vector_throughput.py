"""Environment steps per second: ReasoningVectorEnv (one PRM call per vector step) against
SyncVectorEnv over single ReasoningEnvs (one PRM call per environment step).

The PRM is ``reasoning_gym.prm.learned.LearnedPRM`` on a tiny randomly initialised
Llama (``reasoning_gym.testing.tiny_causal_lm``, hidden size 64, 2 layers) with the
tiny test tokenizer. Each PRM call runs at most two padded forward passes: one over the
new steps of trajectories whose prefix keys and values are cached, one over the whole
sequence of the others (first steps of episodes). With
``--call-latency-ms X`` every PRM call also sleeps X ms before scoring, which stands for
the fixed cost of a call to a PRM served elsewhere or on a GPU; that case is simulated
and labelled as such in the results. Both modes replay the same actions from the same
seeds, so they take the same steps; the summed rewards of the two modes are compared.

Run: .venv/bin/python -m benchmarks.vector_throughput [--sizes 1 8 64 256]
     [--call-latency-ms 0 5] [--env-steps 512] [--repeats 3] [--resume]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks._common import RESULTS_DIR, write_results
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.tasks.base import Problem, Task
from reasoning_gym.vector import ReasoningVectorEnv

NAME = "vector_throughput"
JSONL_PATH = RESULTS_DIR / f"{NAME}.jsonl"
WARMUP_VECTOR_STEPS = 2
MIN_VECTOR_STEPS = 4


class AdditionTask(Task):
    """Procedural two-term additions; the task only sets prompts and gold answers here."""

    name = "bench-addition"

    def problem(self, index: int, seed: int = 0) -> Problem:
        rng = random.Random(f"{seed}:{index}")
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        return Problem(
            id=f"bench-addition/{seed}/{index}",
            question=f"A shop has {a} apples and receives {b} more. How many apples now?",
            answer=str(a + b),
        )


class LatencyPRM(ProcessRewardModel):
    """Wraps a PRM and sleeps a fixed time per call (a simulated remote or GPU call cost)."""

    def __init__(self, inner: ProcessRewardModel, latency_s: float):
        super().__init__()
        self.inner = inner
        self.latency_s = latency_s
        self.name = f"{inner.name}+{latency_s * 1000:g}ms"

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self.inner._score_batch(queries)

    def clear_cache(self) -> None:
        """Clear this wrapper's score cache and the inner PRM's caches (its prefix cache)."""
        super().clear_cache()
        self.inner.clear_cache()


def build_learned_prm(batch_size: int) -> ProcessRewardModel:
    """Build a LearnedPRM on a tiny random Llama; one forward pass scores up to ``batch_size``."""
    from reasoning_gym.prm.learned import LearnedPRM
    from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), seed=0)
    return LearnedPRM.from_base(model, tokenizer=tokenizer, batch_size=batch_size, seed=0)


def make_actions(num_envs: int, vector_steps: int, seed: int) -> list[list[str]]:
    """Draw random arithmetic steps per environment; a quarter of them are final answers."""
    rng = random.Random(seed)
    actions = []
    for _ in range(vector_steps):
        row = []
        for _ in range(num_envs):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            if rng.random() < 0.25:
                row.append(f"The answer is \\boxed{{{a + b}}}.")
            else:
                row.append(f"{a} + {b} = {a + b}")
        actions.append(row)
    return actions


def run_mode(
    mode: str,
    num_envs: int,
    prm: ProcessRewardModel,
    actions: list[list[str]],
    seed: int,
    max_steps: int,
) -> dict[str, Any]:
    """Step one vector environment through ``actions``; time all but the warm-up steps."""
    import gymnasium as gym

    task = AdditionTask()
    prm.clear_cache()
    if mode == "native":
        envs = ReasoningVectorEnv(num_envs=num_envs, task=task, prm=prm, max_steps=max_steps)
    else:
        envs = gym.vector.SyncVectorEnv(
            [
                lambda: ReasoningEnv(task=task, prm=prm, max_steps=max_steps)
                for _ in range(num_envs)
            ],
            copy=False,
        )
    envs.reset(seed=seed)
    for t in range(WARMUP_VECTOR_STEPS):
        envs.step(actions[t])
    calls_before = prm.calls
    total_reward = 0.0
    start = time.perf_counter()
    for row in actions[WARMUP_VECTOR_STEPS:]:
        _, rewards, _, _, _ = envs.step(row)
        total_reward += float(np.sum(rewards))
    seconds = time.perf_counter() - start
    envs.close()
    timed_steps = len(actions) - WARMUP_VECTOR_STEPS
    return {
        "seconds": seconds,
        "env_steps": timed_steps * num_envs,
        "steps_per_s": timed_steps * num_envs / seconds,
        "prm_calls_per_vector_step": (prm.calls - calls_before) / timed_steps,
        "total_reward": total_reward,
    }


def measure(
    num_envs: int, latency_ms: float, args: argparse.Namespace, learned: ProcessRewardModel
) -> dict[str, Any]:
    vector_steps = max(MIN_VECTOR_STEPS, -(-args.env_steps // num_envs)) + WARMUP_VECTOR_STEPS
    actions = make_actions(num_envs, vector_steps, seed=args.seed)
    # The modes alternate and each reports its median rate, so a burst of load from
    # another process on the shared machine slows one run of one mode, not a whole mode.
    runs: dict[str, list[dict[str, Any]]] = {"native": [], "sync": []}
    for _ in range(args.repeats):
        for mode in ("native", "sync"):
            prm = LatencyPRM(learned, latency_ms / 1000.0)
            runs[mode].append(run_mode(mode, num_envs, prm, actions, args.seed, args.max_steps))
    native, sync = runs["native"][0], runs["sync"][0]
    native_rate = float(np.median([run["steps_per_s"] for run in runs["native"]]))
    sync_rate = float(np.median([run["steps_per_s"] for run in runs["sync"]]))
    prm_label = (
        "learned-tiny" if not latency_ms else f"learned-tiny + {latency_ms:g} ms/call (simulated)"
    )
    return {
        "prm": prm_label,
        "call_latency_ms": latency_ms,
        "num_envs": num_envs,
        "env_steps_timed": native["env_steps"],
        "native_steps_per_s": native_rate,
        "sync_steps_per_s": sync_rate,
        "speedup": native_rate / sync_rate,
        "native_prm_calls_per_step": native["prm_calls_per_vector_step"],
        "sync_prm_calls_per_step": sync["prm_calls_per_vector_step"],
        "reward_sum_diff": abs(native["total_reward"] - sync["total_reward"]),
    }


def load_done(resume: bool) -> dict[tuple[float, int], dict[str, Any]]:
    if not resume or not JSONL_PATH.exists():
        return {}
    done = {}
    for line in JSONL_PATH.read_text().splitlines():
        row = json.loads(line)
        done[(row["call_latency_ms"], row["num_envs"])] = row
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64, 256], help="num_envs")
    parser.add_argument(
        "--call-latency-ms",
        type=float,
        nargs="+",
        default=[0.0, 5.0],
        help="simulated fixed cost added to every PRM call, in milliseconds (0: none)",
    )
    parser.add_argument(
        "--env-steps", type=int, default=512, help="environment steps timed per measurement"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each mode per measurement, alternating; the median rate is reported",
    )
    parser.add_argument("--max-steps", type=int, default=6, help="max_steps of each episode")
    parser.add_argument("--seed", type=int, default=0, help="seed of resets and actions")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1, which keeps timings stable on a shared machine)",
    )
    parser.add_argument("--resume", action="store_true", help="reuse rows of an earlier run")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} is invalid; use 1 or more")

    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(args.torch_threads)
    learned = build_learned_prm(batch_size=max(args.sizes))
    done = load_done(args.resume)
    if not args.resume:
        JSONL_PATH.unlink(missing_ok=True)
    JSONL_PATH.parent.mkdir(parents=True, exist_ok=True)

    rows = []
    configs = [(latency, size) for latency in args.call_latency_ms for size in args.sizes]
    for latency, size in tqdm(configs, desc=NAME, unit="config"):
        row = done.get((latency, size))
        if row is None:
            row = measure(size, latency, args, learned)
            with JSONL_PATH.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
        rows.append(row)
        print(
            f"{row['prm']:>40} N={size:>4}: native {row['native_steps_per_s']:8.1f} steps/s, "
            f"sync {row['sync_steps_per_s']:8.1f} steps/s, x{row['speedup']:.2f}"
        )

    notes = (
        "native = ReasoningVectorEnv (one PRM call per vector step); sync = "
        "gymnasium.vector.SyncVectorEnv over single ReasoningEnvs sharing the same PRM "
        "object (one PRM call per environment step). speedup = native / sync steps per "
        f"second, measured in the same run: the modes alternate, {args.repeats} runs each, and "
        "each rate is the median of its runs. PRM: LearnedPRM on tiny_causal_lm (hidden 64, "
        "2 layers, random weights) with the tiny test tokenizer and its default prefix cache: "
        "a step after a cached prefix runs the model on that step's tokens only, attending "
        "to the cached keys and values, and the first step of an episode also runs on the "
        "question. Both modes share one PRM object, and its caches are cleared before each "
        "mode. Rows with a call latency add a simulated sleep per PRM call. Actions: random "
        "'a + b = c' steps and 25% final answers, whose plain numbers the verifier compares "
        "in-process (no math-verify call). Episodes end at "
        f"max_steps={args.max_steps}. torch threads: {args.torch_threads}. The machine is "
        "shared, so timings are noisy. reward_sum_diff compares the summed rewards of the "
        "two modes (float differences of batched against single forward passes)."
    )
    meta = {
        "torch_threads": args.torch_threads,
        "max_steps": args.max_steps,
        "seed": args.seed,
        "repeats": args.repeats,
    }
    json_path, md_path = write_results(NAME, rows, meta=meta, notes=notes)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
