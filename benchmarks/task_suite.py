"""Procedural step-checked tasks: generation speed, oracle replay and SmolLM2-135M accuracy.

For every task at two difficulties (the defaults and every knob at its maximum):

* generation speed: problems generated per second, and the ratio to the ``arithmetic``
  task's speed measured in the same run (the baseline);
* oracle policy: the gold steps replayed through ``ReasoningEnv(task=..., prm="oracle")``;
  the accuracy must be 1.0 and every step's PRM score 1.0;
* random policy (chance baseline): ``RandomPolicy`` steps through the same environment;
* SmolLM2-135M-Instruct, greedy, through the environment with its own tokenizer and chat
  template. All episodes of one task run in one batch. The step score is the mean oracle
  PRM score of its steps, that is the fraction of its steps that the exact checker accepts.

Records are appended to ``results/task_suite.jsonl`` as they finish: a base record (speed,
oracle, random) and a model record per task and difficulty. A rerun skips the records
already there. ``--recompute-base`` redoes the base records and keeps the model records;
``--recompute-model`` reruns the model on the selected rows (delete the file to start
over). At the end ``task_suite.json`` and ``task_suite.md`` are written.

Run: .venv/bin/python -m benchmarks.task_suite [--limit 100] [--gen-count 500]
     [--model-problems 50] [--model-tasks countdown] [--skip-model] [--recompute-base]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks._common import RESULTS_DIR, command_line, write_results
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.tasks import make_task

TASKS = (
    "linear_equation",
    "countdown",
    "fractions",
    "unit_conversion",
    "boolean_logic",
    "sorting",
    "shortest_path",
    "modular",
    "distractor_word",
)
BASELINE_TASK = "arithmetic"
MODEL = "smollm2-135m"
MAX_STEPS_ORACLE = 40  # above the longest gold solution (boolean_logic at depth 4)
NAME = "task_suite"
COLUMNS = (
    "task",
    "difficulty",
    "knobs",
    "gen_problems_per_s",
    "gen_ratio_vs_arithmetic",
    "mean_gold_steps",
    "oracle_accuracy",
    "oracle_min_prm",
    "random_accuracy",
    "smollm2_accuracy",
    "smollm2_step_score",
    "smollm2_seconds",
    "smollm2_setup",
)


def difficulties(name: str) -> dict[str, dict[str, int]]:
    task = make_task(name)
    hardest = {knob: high for knob, (_, high) in task.difficulty_ranges.items()}
    return {"default": task.difficulty(), "hardest": hardest}


def generation_speed(name: str, knobs: dict[str, Any], count: int) -> float:
    task = make_task(name, **knobs)
    start = time.perf_counter()
    for index in range(count):
        task.problem(index)
    return count / (time.perf_counter() - start)


def oracle_replay(name: str, knobs: dict[str, Any], limit: int) -> dict[str, float]:
    env = ReasoningEnv(task=name, prm="oracle", max_steps=MAX_STEPS_ORACLE, task_kwargs=knobs)
    correct = 0
    scores: list[float] = []
    lengths: list[int] = []
    for index in range(limit):
        env.reset(options={"index": index})
        steps = env.problem.gold_steps
        lengths.append(len(steps))
        info: dict[str, Any] = {}
        for step in steps:
            _, _, terminated, truncated, info = env.step(step)
            scores.append(info["prm_score"])
            if terminated or truncated:
                break
        correct += bool(info.get("correct"))
    return {
        "oracle_accuracy": correct / limit,
        "oracle_min_prm": min(scores),
        "mean_gold_steps": float(np.mean(lengths)),
    }


def random_policy_accuracy(name: str, knobs: dict[str, Any], limit: int) -> float:
    from reasoning_gym.policies.baselines import RandomPolicy

    env = ReasoningEnv(task=name, prm=None, reward_mode="outcome", max_steps=8, task_kwargs=knobs)
    policy = RandomPolicy(seed=0)
    correct = 0
    for index in range(limit):
        obs, _ = env.reset(options={"index": index})
        info: dict[str, Any] = {}
        done = False
        while not done:
            proposal = policy.propose([obs])[0][0]
            obs, _, terminated, truncated, info = env.step(proposal.text)
            done = terminated or truncated
        correct += bool(info.get("correct"))
    return correct / limit


def model_accuracy(
    name: str, knobs: dict[str, Any], problems: int, policy: Any, tokenizer: Any, args: Any
) -> dict[str, float]:
    """Greedy episodes of the model, all problems stepped together in one batch per step."""
    envs = [
        ReasoningEnv(
            task=name,
            tokenizer=tokenizer,
            prm="oracle",
            max_steps=args.model_max_steps,
            max_step_tokens=args.model_step_tokens,
            task_kwargs=knobs,
        )
        for _ in range(problems)
    ]
    observations = [env.reset(options={"index": i})[0] for i, env in enumerate(envs)]
    active = list(range(problems))
    correct = 0
    step_scores: list[float] = []
    start = time.perf_counter()
    while active:
        proposals = policy.propose([observations[i] for i in active])
        still_active = []
        for i, group in zip(active, proposals, strict=True):
            obs, _, terminated, truncated, info = envs[i].step(group[0].token_ids)
            observations[i] = obs
            if info["prm_score"] is not None:
                step_scores.append(info["prm_score"])
            if terminated or truncated:
                correct += bool(info.get("correct"))
            else:
                still_active.append(i)
        active = still_active
    return {
        "smollm2_accuracy": correct / problems,
        "smollm2_step_score": float(np.mean(step_scores)) if step_scores else 0.0,
        "smollm2_seconds": time.perf_counter() - start,
    }


def load_records(path) -> tuple[dict, dict]:
    """Read the stored base and model records, keyed by (task, difficulty); later ones win."""
    base: dict[tuple[str, str], dict[str, Any]] = {}
    model: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            key = (record["task"], record["difficulty"])
            kind = record.get("kind")
            # Records without "kind" hold both parts in one row.
            if kind in (None, "base"):
                base[key] = record
            if kind == "model" or (kind is None and record.get("smollm2_accuracy") is not None):
                model[key] = record
    return base, model


def append_record(path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def base_record(name: str, label: str, knobs: dict[str, Any], args: Any, baseline: float):
    speed = generation_speed(name, knobs, args.gen_count)
    return {
        "kind": "base",
        "task": name,
        "difficulty": label,
        "knobs": ",".join(f"{k}={v}" for k, v in sorted(knobs.items())),
        "gen_problems_per_s": speed,
        "gen_ratio_vs_arithmetic": speed / baseline,
        "arithmetic_problems_per_s": baseline,
        **oracle_replay(name, knobs, args.limit),
        "random_accuracy": random_policy_accuracy(name, knobs, args.limit),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100, help="problems per oracle/random run")
    parser.add_argument("--gen-count", type=int, default=500, help="problems per speed run")
    parser.add_argument("--model-problems", type=int, default=50, help="problems per model run")
    parser.add_argument("--model-max-steps", type=int, default=8, help="steps per model episode")
    parser.add_argument(
        "--model-step-tokens", type=int, default=48, help="tokens per model step (cut after)"
    )
    parser.add_argument(
        "--model-dtype",
        default="fp32",
        help="model dtype (fp32 default: bf16 matmuls were slower on the CPU this ran on)",
    )
    parser.add_argument(
        "--model-tasks", default="", help="comma-separated tasks for the model (default: all)"
    )
    parser.add_argument(
        "--model-difficulties",
        default="default,hardest",
        help="comma-separated difficulties (default, hardest) for the model",
    )
    parser.add_argument("--skip-model", action="store_true", help="run no model episodes")
    parser.add_argument(
        "--recompute-base",
        action="store_true",
        help="recompute the speed, oracle and random columns even if stored (model rows stay)",
    )
    parser.add_argument(
        "--recompute-model",
        action="store_true",
        help="rerun the model on the selected rows even if model records are stored",
    )
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    args = parser.parse_args()
    for name in args.tasks.split(","):
        if name.strip() and name.strip() not in TASKS:
            parser.error(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return args


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    partial = RESULTS_DIR / f"{NAME}.jsonl"
    stored_base, stored_model = load_records(partial)
    if args.recompute_base:
        stored_base = {}
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    model_tasks = {n.strip() for n in args.model_tasks.split(",") if n.strip()} or set(names)
    model_levels = {d.strip() for d in args.model_difficulties.split(",") if d.strip()}

    baseline_speed: float | None = None  # measured once, only if a base record is missing
    policy = tokenizer = None
    if not args.skip_model:
        from reasoning_gym.models import load_model
        from reasoning_gym.policies.hf import HFPolicy
        from reasoning_gym.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(MODEL)
        policy = HFPolicy(load_model(MODEL, dtype=args.model_dtype), tokenizer)
    setup = (
        f"{args.model_problems} problems, <= {args.model_max_steps} steps x "
        f"{args.model_step_tokens} tokens, {args.model_dtype}"
    )

    jobs = [(name, label, knobs) for name in names for label, knobs in difficulties(name).items()]
    rows = []
    for name, label, knobs in tqdm(jobs, desc="task x difficulty"):
        key = (name, label)
        if key not in stored_base:
            if baseline_speed is None:
                baseline_speed = generation_speed(BASELINE_TASK, {}, args.gen_count)
            stored_base[key] = base_record(name, label, knobs, args, baseline_speed)
            append_record(partial, stored_base[key])
        wants_model = policy is not None and name in model_tasks and label in model_levels
        if wants_model and (args.recompute_model or key not in stored_model):
            measured = model_accuracy(name, knobs, args.model_problems, policy, tokenizer, args)
            stored_model[key] = {
                "kind": "model",
                "task": name,
                "difficulty": label,
                **measured,
                "smollm2_setup": setup,
                "command": command_line(),
            }
            append_record(partial, stored_model[key])
        row = {**stored_base[key], **stored_model.get(key, {})}
        rows.append({column: row.get(column) for column in COLUMNS})

    for row in rows:
        for column in COLUMNS:
            if row[column] is None:
                row[column] = "not measured"
    notes = (
        f"gen_ratio_vs_arithmetic: generation speed over that of the `{BASELINE_TASK}` task at "
        "its defaults, measured in the same run as the row (task_suite.jsonl stores it). "
        f"Oracle and random columns: {args.limit} problems each. SmolLM2 columns: {MODEL} "
        "greedy with its chat template. The step score is the mean oracle PRM score of the "
        "model's steps. Rows measured by earlier runs come from task_suite.jsonl, which "
        "records their commands."
    )
    write_results(
        NAME,
        rows,
        meta={"args": vars(args)},
        notes=notes,
        columns=COLUMNS,
    )
    print(f"wrote {RESULTS_DIR / NAME}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
