"""Greedy step-by-step SmolLM2-135M-Instruct on the first N GSM8K test problems.

Each problem is one episode of ``ReasoningEnv(task="gsm8k")`` (chat prompt with the
task's instruction, one step per line, final answer in ``\\boxed{}``) played by a greedy
:class:`HFPolicy` with KV-cache reuse. Outcome correctness comes from the environment's
verifier. Episodes are appended to ``results/gsm8k_smollm2_episodes.jsonl`` as they
finish, and a rerun skips the problems already there (delete the file to start over).

Usage:
    python benchmarks/gsm8k_smollm2.py --limit 200
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, data_dir, write_results  # noqa: E402

from reasoning_gym.env import ReasoningEnv  # noqa: E402
from reasoning_gym.episodes import JsonlWriter, read_episodes, run_episode, summarize  # noqa: E402
from reasoning_gym.models import load_model, pull  # noqa: E402
from reasoning_gym.policies.base import SamplingConfig  # noqa: E402
from reasoning_gym.policies.hf import HFPolicy  # noqa: E402
from reasoning_gym.tokenizers import load_tokenizer  # noqa: E402

#: Published GSM8K score of SmolLM2-135M-Instruct; None because the search tool did not
#: find the model card's evaluation table.
PUBLISHED_GSM8K = None
#: A third-party figure for the same model, stated beside ours for scale.
THIRD_PARTY_GSM8K = (
    "a third-party lm-eval run (0-shot, flexible answer extraction) lists 0.38% as the "
    "baseline of SmolLM2-135M-Instruct on the model page "
    "lldois/SmolLM2-135M-Reasoning-SLERP-Champion (seen through the mirror "
    "hface.pages.dev); its prompt and answer extraction differ from ours"
)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=200, help="number of test problems")
    parser.add_argument("--model", default="smollm2-135m", help="model short name or folder")
    parser.add_argument("--dtype", default="bf16", help="model dtype: bf16 or fp32")
    parser.add_argument("--max-steps", type=int, default=16, help="steps before truncation")
    parser.add_argument("--max-step-tokens", type=int, default=128, help="tokens per step")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    if args.limit < 1:
        raise ValueError(f"--limit {args.limit} must be at least 1")

    data_file = data_dir() / "gsm8k_test.jsonl"
    if not data_file.is_file():
        print(f"{data_file} not found; set REASONING_GYM_DATA to the data folder")
        return 2
    torch.set_num_threads(args.threads)
    if args.model == "smollm2-135m":
        pull(args.model)

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, dtype=args.dtype)
    env = ReasoningEnv(
        task="gsm8k",
        tokenizer=tokenizer,
        prm=None,
        max_steps=args.max_steps,
        max_step_tokens=args.max_step_tokens,
        task_kwargs={"path": str(data_file), "limit": args.limit},
    )
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=args.max_step_tokens))

    from tqdm.auto import tqdm

    episodes_path = RESULTS_DIR / "gsm8k_smollm2_episodes.jsonl"
    done = read_episodes(episodes_path) if episodes_path.exists() else []
    done = [record for record in done if record.index is not None and record.index < args.limit]
    done_indices = {record.index for record in done}
    todo = [index for index in range(args.limit) if index not in done_indices]
    records = list(done)
    interrupted = False
    # SIGTERM (for example from `timeout`) stops the loop like Ctrl-C, and the finished
    # episodes are still summarized.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    with JsonlWriter(episodes_path) as writer:
        progress = tqdm(todo, desc="gsm8k", unit="problem")
        try:
            for index in progress:
                record = run_episode(env, policy, index=index)
                writer.write(record)
                records.append(record)
                accuracy = sum(r.correct for r in records) / len(records)
                progress.set_postfix(acc=f"{accuracy:.3f}")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.close()
    if not records:
        print("no episode finished; nothing to summarize")
        return 130

    summary = summarize(records)
    row = {
        "model": args.model,
        "dtype": str(model.dtype),
        "problems": summary["episodes"],
        "accuracy": round(summary["accuracy"], 4),
        "correct": sum(r.correct for r in records),
        "mean_steps": round(summary["mean_steps"], 2),
        "answered_fraction": round(summary["terminated_fraction"], 4),
        "generated_tokens": summary["generated_tokens"],
        "tokens_per_s": round(summary["tokens_per_s"], 2),
        "wall_time_s": round(summary["wall_time_s"], 1),
    }
    published = (
        f"the model card's figure was not found with the search tool available here; "
        f"{THIRD_PARTY_GSM8K}"
        if PUBLISHED_GSM8K is None
        else f"{PUBLISHED_GSM8K}"
    )
    notes = (
        f"First {len(records)} problems of gsm8k_test.jsonl (requested --limit {args.limit}"
        f"{', interrupted before the end' if interrupted else ''}; "
        "zero-shot, chat template, greedy, "
        f"max {args.max_steps} steps of at most {args.max_step_tokens} tokens). "
        "answered_fraction = episodes that ended with a final answer. "
        "tokens_per_s = generated tokens / summed episode wall time "
        f"(torch threads: {args.threads}, on a shared machine, so it is a lower bound). "
        f"Published GSM8K figure for SmolLM2-135M-Instruct: {published}. "
        "The model was de-quantized from a Q4_1 GGUF file, so its accuracy may differ "
        "from the original bf16 checkpoint."
    )
    write_results(
        "gsm8k_smollm2", [row], meta={"limit": args.limit, "data": str(data_file)}, notes=notes
    )
    print(row)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
