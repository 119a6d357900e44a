"""Environment overhead per step (no PRM, no model) against context length.

Compares ReasoningEnv, which appends the ids of each step, with a baseline that keeps
the text and re-tokenizes the whole context every step. Both use the same Hugging Face
byte-level BPE tokenizer (built locally, no download).

Run: .venv/bin/python -m benchmarks.env_step [--steps 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks._common import write_results
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.testing import tiny_tokenizer

CONTEXT_SIZES = (64, 1024, 8192)  # tokens
ACTION = "Then 12 + 21 = 33 apples remain in the basket."


class RetokenizingEnv:
    """Baseline: the state is text, and every step re-encodes all of it."""

    def __init__(self, tokenizer, prompt: str):
        self.tokenizer = tokenizer
        self.text = prompt

    def step(self, action: str) -> np.ndarray:
        self.text += action + "\n"
        return np.asarray(self.tokenizer.encode(self.text, add_special_tokens=False))


def make_env(tokenizer) -> ReasoningEnv:
    return ReasoningEnv(
        task="arithmetic",
        tokenizer=tokenizer,
        prm=None,
        reward_mode="outcome",
        max_steps=10**6,
        max_context_tokens=10**6,
    )


def fill_to(env: ReasoningEnv, tokens: int) -> None:
    """Reset and step until the context holds at least ``tokens`` tokens."""
    obs, _ = env.reset(seed=0)
    while len(obs) < tokens:
        obs, *_ = env.step(ACTION)


def time_env(tokenizer, context: int, steps: int) -> float:
    """Mean seconds per step of ReasoningEnv starting at ``context`` tokens."""
    env = make_env(tokenizer)
    fill_to(env, context)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(ACTION)
    return (time.perf_counter() - start) / steps


def time_baseline(tokenizer, context: int, steps: int) -> float:
    """Mean seconds per step of the re-tokenizing baseline at ``context`` tokens."""
    env = make_env(tokenizer)
    fill_to(env, context)
    baseline = RetokenizingEnv(tokenizer, tokenizer.decode(env.state.ids))
    start = time.perf_counter()
    for _ in range(steps):
        baseline.step(ACTION)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps timed per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per cell (median)")
    args = parser.parse_args()
    tokenizer = tiny_tokenizer()

    rows = []
    for context in CONTEXT_SIZES:
        env_s = statistics.median(
            time_env(tokenizer, context, args.steps) for _ in range(args.repeats)
        )
        base_s = statistics.median(
            time_baseline(tokenizer, context, args.steps) for _ in range(args.repeats)
        )
        rows.append(
            {
                "context_tokens": context,
                "env_us_per_step": env_s * 1e6,
                "retokenize_us_per_step": base_s * 1e6,
                "baseline_over_env": base_s / env_s,
            }
        )
        print(rows[-1])

    flat_ratio = rows[-1]["env_us_per_step"] / rows[0]["env_us_per_step"]
    growth = rows[-1]["retokenize_us_per_step"] / rows[0]["retokenize_us_per_step"]
    notes = (
        f"8k-token step / 64-token step: env {flat_ratio:.2f}x (goal: at most 1.5x), "
        f"re-tokenizing baseline {growth:.1f}x.\n"
        f"Each cell is the median of {args.repeats} runs of {args.steps} steps with the action "
        f"{ACTION!r}; tokenizer: byte-level BPE from reasoning_gym.testing.tiny_tokenizer."
    )
    write_results(
        "env_step",
        rows,
        meta={"steps": args.steps, "repeats": args.repeats, "env_8k_over_64": flat_ratio},
        notes=notes,
    )
    print(notes)


if __name__ == "__main__":
    main()
