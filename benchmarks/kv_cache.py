"""Step-by-step generation with and without KV-cache reuse in HFPolicy.

Each episode feeds a growing context to ``HFPolicy.propose`` one step at a time, as the
environment does (context = previous context + step ids + separator ids). With reuse the
policy crops its cache to the common prefix and feeds only the new tokens; without it
every step re-encodes the whole context. Both runs decode greedily, so the benchmark also
checks that their steps are identical token for token.

Every step is cut at ``--step-tokens`` tokens with the separator ``"@@"`` (which the model
does not write), so both runs do the same amount of decoding work per step.

Usage:
    python benchmarks/kv_cache.py --model smollm2-135m --steps 4 16 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir, write_results  # noqa: E402

from reasoning_gym.models import load_model  # noqa: E402
from reasoning_gym.policies.base import SamplingConfig  # noqa: E402
from reasoning_gym.policies.hf import HFPolicy  # noqa: E402
from reasoning_gym.tokenizers import load_tokenizer  # noqa: E402

INSTRUCTION = (
    "Solve the problem step by step. Write one step per line. "
    "End with the final answer in the form \\boxed{ANSWER}."
)


def first_question() -> str:
    path = data_dir() / "gsm8k_test.jsonl"
    if path.is_file():
        return json.loads(path.read_text().splitlines()[0])["question"]
    return "Tom has 12 apples. He buys 3 bags with 7 apples each. How many apples does he have?"


def run_episode(policy: HFPolicy, prompt: np.ndarray, separator: np.ndarray, steps: int):
    """Generate ``steps`` steps; return (seconds, step token lists, final context length)."""
    policy.reset()
    context = prompt
    step_ids = []
    started = time.perf_counter()
    for _ in range(steps):
        proposal = policy.propose([context])[0][0]
        step_ids.append(proposal.token_ids.tolist())
        context = np.concatenate([context, proposal.token_ids, separator])
    return time.perf_counter() - started, step_ids, len(context)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="model short name or folder")
    parser.add_argument("--dtype", default="auto", help="auto, bf16 or fp32")
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 16, 64], help="episode lengths")
    parser.add_argument("--step-tokens", type=int, default=16, help="tokens generated per step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, dtype=args.dtype)
    prompt = np.asarray(tokenizer.chat_prompt(INSTRUCTION, first_question()), dtype=np.int64)
    separator = np.asarray(tokenizer.encode("\n"), dtype=np.int64)
    sampling = SamplingConfig(max_step_tokens=args.step_tokens)

    rows = []
    for steps in args.steps:
        results = {}
        for reuse in (True, False):
            policy = HFPolicy(model, tokenizer, sampling, separator="@@", cache_reuse=reuse)
            seconds, step_ids, length = run_episode(policy, prompt, separator, steps)
            results[reuse] = (seconds, step_ids, length, policy.prefill_tokens)
            print(f"steps={steps} reuse={reuse}: {seconds:.2f} s, context {length} tokens")
        (with_s, with_steps, length, with_prefill) = results[True]
        (without_s, without_steps, _, without_prefill) = results[False]
        generated = sum(len(step) for step in with_steps)
        rows.append(
            {
                "steps": steps,
                "final_context_tokens": length,
                "generated_tokens": generated,
                "reuse_s": round(with_s, 3),
                "no_reuse_s": round(without_s, 3),
                "speedup": round(without_s / with_s, 3),
                "reuse_prefill_tokens": with_prefill,
                "no_reuse_prefill_tokens": without_prefill,
                "identical_steps": with_steps == without_steps,
            }
        )

    fp32_identical = None
    if model.dtype != torch.float32:
        # Low-precision logits can tie exactly, and the cached and the full forward pass
        # round differently, so the equality check is repeated in fp32.
        fp32_model = load_model(args.model, dtype="fp32")
        steps = min(16, max(args.steps))
        fp32_runs = []
        for reuse in (True, False):
            policy = HFPolicy(fp32_model, tokenizer, sampling, separator="@@", cache_reuse=reuse)
            fp32_runs.append(run_episode(policy, prompt, separator, steps)[1])
        fp32_identical = fp32_runs[0] == fp32_runs[1]
        print(f"fp32 check over {steps} steps: identical={fp32_identical}")

    notes = (
        "Speedup = time without reuse / time with reuse, measured in the same process. "
        "identical_steps compares the greedy steps of both runs token for token. "
        f"fp32 equality check over min(16, max steps) steps: {fp32_identical} "
        "(None when the timed runs were already fp32); in bf16 a greedy choice between two "
        "tokens with exactly equal logits can go either way. "
        f"Each step generates {args.step_tokens} tokens; dtype {model.dtype}; "
        f"{args.threads} torch threads on a shared machine, so absolute times are noisy."
    )
    write_results(
        "kv_cache",
        rows,
        meta={
            "model": args.model,
            "dtype": str(model.dtype),
            "step_tokens": args.step_tokens,
            "fp32_identical_steps": fp32_identical,
        },
        notes=notes,
    )
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
