"""``reasoning-gym prm label|train|eval``: make step-labelled data, train and evaluate PRMs.

Examples::

    reasoning-gym prm label --env Reasoning-Arithmetic-v0 --policy smollm2-135m \\
        --method oracle --n 100 --out labels.jsonl
    reasoning-gym prm train --data corrupted:arithmetic:2000 --model tiny --out prm-out
    reasoning-gym prm eval --prm learned:prm-out/final --data processbench_gsm8k.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``label``, ``train`` and ``eval`` sub-subcommands."""
    actions = parser.add_subparsers(dest="prm_action", required=True, metavar="ACTION")

    label = actions.add_parser(
        "label", help="generate solutions with a policy and label every step (JSONL)"
    )
    label.add_argument("--env", required=True, help="environment id or task name")
    label.add_argument(
        "--policy", required=True, help="policy: 'random', a model short name, folder or hub id"
    )
    label.add_argument("--method", choices=("oracle", "mc"), default="oracle", help="labeller")
    label.add_argument("--n", type=int, default=100, help="number of solutions to generate")
    label.add_argument("--out", required=True, help="output JSONL file")
    label.add_argument("--k", type=int, default=8, help="Monte-Carlo rollouts per step")
    label.add_argument(
        "--label", choices=("soft", "hard"), default="soft", help="Monte-Carlo label kind"
    )
    label.add_argument("--temperature", type=float, default=0.7, help="sampling temperature")
    label.add_argument("--max-steps", type=int, default=12, help="maximum steps per solution")
    label.add_argument("--start-index", type=int, default=0, help="index of the first problem")
    label.add_argument("--seed", type=int, default=0, help="sampling seed")
    label.add_argument(
        "--resume", action="store_true", help="skip problem indices already in --out"
    )

    train = actions.add_parser("train", help="train a learned PRM on step-labelled data")
    train.add_argument(
        "--data", required=True, help="JSONL file, ProcessBench .json, or corrupted:TASK:N"
    )
    train.add_argument(
        "--model",
        required=True,
        help="backbone: a short name, folder or hub id, or 'tiny' (random test-size Llama)",
    )
    train.add_argument("--out", required=True, help="output folder (checkpoints, final model)")
    train.add_argument("--steps", type=int, default=300, help="optimizer steps")
    train.add_argument("--batch-size", type=int, default=8, help="solutions per optimizer step")
    train.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate")
    train.add_argument("--step-tag", default="<|step|>", help="single-token tag after each step")
    train.add_argument(
        "--checkpoint-every", type=int, default=100, help="steps between checkpoints"
    )
    train.add_argument(
        "--max-length", type=int, default=2048, help="skip solutions longer than this (tokens)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed of head init and data order")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")

    evaluate = actions.add_parser("eval", help="ProcessBench-style F1 of a PRM")
    evaluate.add_argument(
        "--prm", required=True, help="PRM spec: oracle, learned:PATH, judge:MODEL, ..."
    )
    evaluate.add_argument(
        "--data",
        required=True,
        help="ProcessBench .json, JSONL file, or corrupted:TASK:N[:SEED]",
    )
    evaluate.add_argument("--task", help="task for oracle/mc PRMs (default: from corrupted:TASK)")
    evaluate.add_argument("--limit", type=int, help="evaluate at most this many solutions")
    evaluate.add_argument(
        "--threshold", type=float, help="fixed threshold (default: chosen on a calibration split)"
    )
    evaluate.add_argument(
        "--calibration-fraction", type=float, default=0.5, help="fraction used to pick threshold"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the calibration split")
    evaluate.add_argument("--batch-steps", type=int, default=64, help="steps per PRM call")
    evaluate.add_argument("--out", help="write the report as JSON to this file")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; returns the exit status."""
    handlers = {"label": _run_label, "train": _run_train, "eval": _run_eval}
    try:
        return handlers[args.prm_action](args)
    except (ValueError, FileNotFoundError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


# label


def _run_label(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from reasoning_gym.env import ReasoningEnv
    from reasoning_gym.episodes import run_episode
    from reasoning_gym.policies import SamplingConfig, make_policy
    from reasoning_gym.prm.data import LabeledSolution, read_jsonl, write_jsonl
    from reasoning_gym.registration import env_ids, resolve_env_id
    from reasoning_gym.tokenizers import load_tokenizer

    if args.n < 1:
        raise ValueError(f"--n {args.n} must be at least 1")
    task_name = env_ids()[resolve_env_id(args.env)]
    if task_name is None:
        raise ValueError(f"{args.env!r} names no task; use a task id such as Reasoning-GSM8K-v0")
    sampling = SamplingConfig(temperature=args.temperature, seed=args.seed)
    if args.policy == "random":
        tokenizer = load_tokenizer(None)
        policy = make_policy("random", tokenizer=tokenizer, seed=args.seed)
    else:
        policy = make_policy(args.policy, sampling=sampling)
        tokenizer = policy.tokenizer
    env = ReasoningEnv(task=task_name, tokenizer=tokenizer, prm=None, max_steps=args.max_steps)
    labeller = _make_labeller(args, env, policy)

    out = Path(args.out)
    done: set[int] = set()
    if args.resume and out.is_file():
        done = {int(solution.meta["index"]) for solution in read_jsonl(out)}
    elif out.exists():
        out.unlink()
    indices = [i for i in range(args.start_index, args.start_index + args.n) if i not in done]
    correct = 0
    for index in tqdm(indices, desc=f"labelling with {args.method}", unit="solution"):
        record = run_episode(env, policy, index=index, sampling=sampling)
        state = env.get_state()
        labels = labeller(state).tolist() if state.steps else []
        correct += int(record.correct)
        meta = {
            "index": index,
            "id": record.problem_id,
            "correct": record.correct,
            "gold_answer": record.gold,
            "method": args.method,
        }
        solution = LabeledSolution(record.question, list(state.step_texts), labels, meta)
        write_jsonl(out, [solution], append=True)
    print(f"wrote {len(indices)} labelled solutions to {out} ({correct} with a correct answer)")
    return 0


def _make_labeller(args: argparse.Namespace, env: Any, policy: Any):
    """Return ``label(state) -> scores`` that scores every step of a finished episode."""
    from reasoning_gym.prm.base import StepQuery
    from reasoning_gym.prm.registry import make_prm

    if args.method == "oracle":
        prm = make_prm("oracle", env.task)
    else:
        prm = make_prm(
            f"mc:{args.k}",
            env.task,
            policy=policy,
            label=args.label,
            separator_ids=env.separator_ids,
            tokenizer=env.tokenizer,
            max_steps=args.max_steps,
        )

    def label(state: Any) -> np.ndarray:
        context = env.prompt_ids(state.problem)
        texts = state.step_texts
        queries = []
        for i, record in enumerate(state.steps):
            step_ids = np.asarray(record.ids, dtype=np.int64)
            queries.append(StepQuery(state.problem, texts[:i], texts[i], context, step_ids))
            context = np.concatenate([context, step_ids, env.separator_ids])
        return prm.score(queries)

    return label


# train


def _run_train(args: argparse.Namespace) -> int:
    from reasoning_gym.prm.data import load_labeled_data
    from reasoning_gym.prm.learned import LearnedPRM
    from reasoning_gym.prm.training import PRMTrainConfig, train_prm

    config = PRMTrainConfig(
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        checkpoint_every=args.checkpoint_every,
        max_length=args.max_length,
        seed=args.seed,
    )
    data = load_labeled_data(args.data)
    print(f"training on {len(data)} solutions from {args.data}")
    if args.model == "tiny":
        from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

        tokenizer = tiny_tokenizer()
        base: Any = tiny_causal_lm(len(tokenizer), max_positions=4096, seed=args.seed)
    else:
        base, tokenizer = args.model, None
    prm = LearnedPRM.from_base(base, tokenizer, step_tag=args.step_tag, seed=args.seed)
    result = train_prm(prm, data, config, out_dir=args.out, resume=args.resume)
    first = float(np.mean(result.losses[:10])) if result.losses else float("nan")
    last = float(np.mean(result.losses[-10:])) if result.losses else float("nan")
    print(
        f"trained to step {result.step} in {result.seconds:.1f} s; mean loss of the first 10 "
        f"steps {first:.4f}, last 10 {last:.4f}; model saved to {Path(args.out) / 'final'}"
    )
    return 0


# eval


def _run_eval(args: argparse.Namespace) -> int:
    from reasoning_gym.prm.data import load_labeled_data
    from reasoning_gym.prm.evaluate import evaluate_prm
    from reasoning_gym.prm.registry import make_prm

    data = load_labeled_data(args.data, limit=args.limit)
    if args.limit is not None:
        data = data[: args.limit]
    task = args.task
    if task is None and str(args.data).startswith("corrupted:"):
        task = str(args.data).split(":")[1]
    prm = make_prm(args.prm, task)
    if prm is None:
        raise ValueError(f"--prm {args.prm!r} builds no PRM; name one, such as 'oracle'")
    report = evaluate_prm(
        prm,
        data,
        threshold=args.threshold,
        calibration_fraction=args.calibration_fraction,
        seed=args.seed,
        batch_steps=args.batch_steps,
        progress=True,
    )
    test = report.test
    print(f"PRM {report.prm} on {args.data} ({len(data)} solutions, {report.num_steps} steps)")
    print(f"threshold               {report.threshold:.3f}")
    print(f"accuracy on erroneous   {test.error_accuracy:.3f}  (n={test.num_error})")
    print(f"accuracy on correct     {test.correct_accuracy:.3f}  (n={test.num_correct})")
    print(f"F1                      {test.f1:.3f}")
    print(f"scoring throughput      {report.num_steps / max(report.seconds, 1e-9):.1f} steps/s")
    if args.out:
        Path(args.out).write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return 0
