"""Outcome-only GRPO versus process-supervised GRPO with the oracle PRM and a self-learned PRM.

A small Llama model (built from a config, byte tokenizer) is first warm-started by
supervised imitation of gold steps of an easy arithmetic task (the warm start of
``benchmarks/ppo_dense_vs_outcome.py``, stopped once the greedy validation accuracy
reaches ``--sft-target``). From that same start, three arms run ``--rounds`` rounds of
``--updates`` GRPO updates each, on the same training problems:

* ``outcome``: outcome-supervised GRPO (one reward per solution, the verifier score);
* ``process-oracle``: process-supervised GRPO with the task's exact step checker;
* ``process-learned``: the self-reinforced loop. Each round labels the policy's own
  steps by Monte-Carlo rollouts, trains a small learned PRM on them, and runs
  process-supervised GRPO with that PRM.

The step reward of the process arms is the PRM score plus the verifier score on the
final step (``--process-reward process+outcome``, the default) or the PRM score alone
(``--process-reward process``, results under ``self_reinforced_process_only.*``).

Each round starts a new trainer whose reference model is the policy at the start of
the round, in all arms. After each round: greedy accuracy on held-out problems and, for
the learned PRM, its ProcessBench F1 on gold and corrupted gold solutions whose labels
come from the task's step checker.

Outputs (``benchmarks/results/``): ``self_reinforced.{json,md,png}`` and the per-round
JSONL ``self_reinforced.rounds.jsonl``. Rerunning the same command skips finished
rounds (work files in ``--work-dir``).

Example (the recorded run)::

    python benchmarks/self_reinforced.py --rounds 3 --updates 4
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.grpo_process.config import GRPOProcessConfig  # noqa: E402
from agents.grpo_process.trainer import GRPOProcessTrainer  # noqa: E402
from agents.self_reinforced import SelfReinforcedLoop  # noqa: E402
from agents.self_reinforced_config import SelfReinforcedConfig  # noqa: E402
from benchmarks._common import RESULTS_DIR, hardware, write_results  # noqa: E402
from benchmarks.ppo_dense_vs_outcome import (  # noqa: E402
    build_env_fn,
    build_model,
    greedy_accuracy,
    warm_start,
)

logger = logging.getLogger("self_reinforced_benchmark")

NAME = "self_reinforced"
ARMS = ("outcome", "process-oracle", "process-learned")
TEST_OFFSET = 1_000_000
PROCESS_ONLY_NOTE = (
    "A process-only reward pays each step that the PRM accepts and nothing for finishing, "
    "so a policy can gain by taking many accepted steps before answering. "
)
TRAIN_OFFSET = 0
ROUND_STRIDE = 100_000


def loop_config(args: argparse.Namespace, work_dir: Path) -> SelfReinforcedConfig:
    """Settings shared by every arm, in the form of the self-reinforced loop."""
    return SelfReinforcedConfig(
        env_id=args.task,
        model="(built in the benchmark)",
        rounds=args.rounds,
        policy_update="grpo-process",
        labeler="mc",
        mc_rollouts=args.mc_rollouts,
        label_problems=args.label_problems,
        label_samples=args.label_samples,
        prm_train_steps=args.prm_steps,
        prm_batch_size=8,
        prm_learning_rate=args.prm_lr,
        updates_per_round=args.updates,
        episodes_per_update=args.episodes,
        group_size=args.group_size,
        learning_rate=args.lr,
        kl_coef=args.kl_coef,
        grpo_reward_source=args.process_reward,
        max_steps=args.max_steps,
        max_step_tokens=args.max_step_tokens,
        eval_problems=args.eval_problems,
        eval_offset=TEST_OFFSET,
        prm_eval_solutions=args.prm_eval_solutions,
        train_offset=TRAIN_OFFSET,
        round_stride=ROUND_STRIDE,
        seed=args.seed,
        output_dir=str(work_dir / "process-learned"),
        progress_bar=True,
    )


def build_prm(args: argparse.Namespace) -> Any:
    """Build a small learned PRM: a randomly initialised Llama backbone, tiny BPE tokenizer."""
    from reasoning_gym.prm.learned import LearnedPRM
    from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    backbone = tiny_causal_lm(
        len(tokenizer), hidden_size=args.prm_hidden_size, num_layers=2, seed=args.seed
    )
    return LearnedPRM.from_base(backbone, tokenizer, seed=args.seed)


def run_grpo_arm(
    args: argparse.Namespace, arm: str, warm_state: dict, work_dir: Path, done: dict
) -> list[dict[str, Any]]:
    """Run the outcome or oracle arm round by round; return its per-round rows."""
    config = loop_config(args, work_dir)
    env_fn = build_env_fn(args, "outcome", None)
    env = env_fn()
    model = build_model(args, args.seed)
    model.load_state_dict(copy.deepcopy(warm_state))
    arm_dir = work_dir / arm
    arm_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    if (arm, 0) not in done:
        row = {"arm": arm, "round": 0, "accuracy": evaluate(model, env, args), "seconds": 0.0}
        record_row(row, done, args.rows_path)
    rows.append(done[(arm, 0)])

    for round_number in range(1, args.rounds + 1):
        state_path = arm_dir / f"round_{round_number:03d}.pt"
        if (arm, round_number) in done and state_path.exists():
            model.load_state_dict(torch.load(state_path, weights_only=True))
            rows.append(done[(arm, round_number)])
            continue

        start = time.perf_counter()
        settings = GRPOProcessConfig(
            env_id=args.task,
            model="(built in the benchmark)",
            max_steps=args.max_steps,
            max_step_tokens=args.max_step_tokens,
            num_updates=args.updates,
            episodes_per_update=args.episodes,
            samples_per_problem=args.group_size,
            learning_rate=args.lr,
            kl_coef=args.kl_coef,
            reward_source="outcome" if arm == "outcome" else args.process_reward,
            step_prm="oracle",
            seed=config.seed * 1_000_003 + round_number,
            problem_offset=config.round_start(round_number) + config.label_problems,
            output_dir=str(arm_dir / f"trainer_{round_number:03d}"),
            checkpoint_every=0,
            resume=False,
            tensorboard=False,
        )
        trainer = GRPOProcessTrainer(settings, env_fn=env_fn, model=model)
        history = trainer.train()
        model = trainer.policy.actor
        model.eval()
        torch.save(model.state_dict(), state_path)

        row = {
            "arm": arm,
            "round": round_number,
            "accuracy": evaluate(model, env, args),
            "rollout_correct_rate": float(np.mean([m["rollout/correct_rate"] for m in history])),
            "degenerate_groups": float(np.mean([m["rollout/degenerate_groups"] for m in history])),
            "seconds": time.perf_counter() - start,
        }
        record_row(row, done, args.rows_path)
        rows.append(row)
    return rows


def run_learned_arm(
    args: argparse.Namespace, warm_state: dict, work_dir: Path, done: dict
) -> list[dict[str, Any]]:
    """Run the self-reinforced loop (Monte-Carlo labels, learned PRM, process GRPO)."""
    config = loop_config(args, work_dir)
    model = build_model(args, args.seed)
    model.load_state_dict(copy.deepcopy(warm_state))
    env_fn = build_env_fn(args, "outcome", None)
    loop = SelfReinforcedLoop(config, model=model, env_fn=env_fn, prm=build_prm(args))
    # The loop writes each finished round to its own folder and resumes after it.
    history = loop.run()
    rows = []
    for record in history:
        key = ("process-learned", record["round"])
        if key not in done:
            record_row({"arm": "process-learned", "seconds": 0.0, **record}, done, args.rows_path)
        rows.append(done[key])
    return rows


def evaluate(model: torch.nn.Module, env: Any, args: argparse.Namespace) -> float:
    return greedy_accuracy(model, env, TEST_OFFSET, args.eval_problems)


def result_name(args: argparse.Namespace) -> str:
    """Return the name of the result files: one set per process reward."""
    return NAME if args.process_reward == "process+outcome" else f"{NAME}_process_only"


def record_row(row: dict[str, Any], done: dict, path: str) -> None:
    """Append a per-round row to the JSONL file and to ``done``."""
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(clean) + "\n")
    done[(row["arm"], row["round"])] = clean


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    colours = {"outcome": "tab:blue", "process-oracle": "tab:green", "process-learned": "tab:red"}
    for arm in ARMS:
        arm_rows = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["round"])
        if arm_rows:
            rounds = [r["round"] for r in arm_rows]
            left.plot(rounds, [r["accuracy"] for r in arm_rows], marker="o", color=colours[arm],
                      label=arm)  # fmt: skip
    learned = sorted((r for r in rows if r["arm"] == "process-learned"), key=lambda r: r["round"])
    if learned:
        rounds = [r["round"] for r in learned]
        f1 = [math.nan if r.get("prm_f1") is None else r["prm_f1"] for r in learned]
        right.plot(rounds, f1, marker="s", color="tab:red", label="learned PRM F1 (calibrated)")
        f1_fixed = [
            math.nan if r.get("prm_f1_at_0.5") is None else r["prm_f1_at_0.5"] for r in learned
        ]
        right.plot(rounds, f1_fixed, marker="^", color="tab:orange", label="learned PRM F1 at 0.5")
        agreement = [
            math.nan if r.get("label_oracle_agreement") is None else r["label_oracle_agreement"]
            for r in learned
        ]
        right.plot(rounds, agreement, marker="x", color="tab:gray", label="MC label = oracle")
    left.set_title("held-out greedy accuracy")
    right.set_title("learned PRM vs the oracle's exact labels")
    all_rounds = sorted({r["round"] for r in rows})
    for ax in (left, right):
        ax.set_xticks(all_rounds)
        ax.set_xlabel("round")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="arithmetic")
    parser.add_argument(
        "--task-kwargs", default='{"num_operations": 2, "max_operand": 10}', help="task options"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=4, help="GRPO updates per round")
    parser.add_argument("--episodes", type=int, default=16, help="episodes per GRPO update")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument(
        "--process-reward",
        default="process+outcome",
        choices=("process", "process+outcome"),
        help="step reward of the process arms: PRM score alone, or plus the verifier score",
    )
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--kl-coef", type=float, default=0.02)
    parser.add_argument("--eval-problems", type=int, default=64)
    parser.add_argument("--label-problems", type=int, default=8)
    parser.add_argument("--label-samples", type=int, default=2)
    parser.add_argument("--mc-rollouts", type=int, default=4)
    parser.add_argument("--prm-steps", type=int, default=60, help="PRM steps per round")
    parser.add_argument("--prm-lr", type=float, default=1e-3)
    parser.add_argument("--prm-hidden-size", type=int, default=64)
    parser.add_argument("--prm-eval-solutions", type=int, default=64)
    parser.add_argument("--max-steps", type=int, default=5)
    parser.add_argument("--max-step-tokens", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--sft-max-steps", type=int, default=800)
    parser.add_argument("--sft-batch", type=int, default=32)
    parser.add_argument("--sft-lr", type=float, default=2e-3)
    parser.add_argument("--sft-target", type=float, default=0.25)
    parser.add_argument("--sft-eval-every", type=int, default=100)
    parser.add_argument("--sft-eval-problems", type=int, default=32)
    parser.add_argument("--work-dir", default="/tmp/reasoning_gym_self_reinforced_benchmark")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    # One thread: on the shared 2-core machine (load about 15), two torch threads spent
    # most of their time waiting for each other (a tiny linear layer took 22 ms instead of 1).
    torch.set_num_threads(1)
    work_dir = Path(args.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, int], dict] = {}
    name = result_name(args)
    rows_path = RESULTS_DIR / f"{name}.rounds.jsonl"
    args.rows_path = str(rows_path)
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            row = json.loads(line)
            done[(row["arm"], row["round"])] = row

    total_start = time.perf_counter()
    warm_state, warm_summary = warm_start(args, args.seed, work_dir)
    rows = []
    for arm in ARMS:
        if arm == "process-learned":
            rows += run_learned_arm(args, warm_state, work_dir, done)
        else:
            rows += run_grpo_arm(args, arm, warm_state, work_dir, done)
    wall = time.perf_counter() - total_start

    plot(rows, RESULTS_DIR / f"{name}.png")
    table = summarize(rows)
    params = sum(p.numel() for p in build_model(args, 0).parameters())
    prm_params = sum(p.numel() for p in build_prm(args).model.parameters())
    meta = {
        "wall_seconds_this_call": wall,
        "policy_parameters": params,
        "prm_parameters": prm_params,
        "warm_start": warm_summary,
        "settings": vars(args),
        "hardware": hardware(),
        "rows": rows,
    }
    round_seconds = sum(row.get("seconds") or 0.0 for row in rows)
    notes = notes_text(args, params, prm_params, warm_summary, wall, round_seconds)
    write_results(name, table, meta, notes=notes)
    print((RESULTS_DIR / f"{name}.md").read_text())
    return 0


def summarize(rows: list[dict]) -> list[dict]:
    """Build one table row per (arm, round), with the ratio to the outcome arm's accuracy."""
    outcome = {r["round"]: r["accuracy"] for r in rows if r["arm"] == "outcome"}
    table = []
    for row in sorted(rows, key=lambda r: (ARMS.index(r["arm"]), r["round"])):
        base = outcome.get(row["round"])
        ratio = row["accuracy"] / base if base else None
        table.append(
            {
                "arm": row["arm"],
                "round": row["round"],
                "heldout_accuracy": row["accuracy"],
                "ratio_vs_outcome": ratio,
                "learned_prm_f1": row.get("prm_f1"),
                "learned_prm_f1_at_0.5": row.get("prm_f1_at_0.5"),
                "mc_label_oracle_agreement": row.get("label_oracle_agreement"),
                "seconds": row.get("seconds"),
            }
        )
    return table


def notes_text(
    args, params: int, prm_params: int, warm: dict, wall: float, round_seconds: float
) -> str:
    return (
        f"Policy: Llama, {params / 1e6:.2f}M parameters (hidden {args.hidden_size}, "
        f"{args.num_layers} layers), byte tokenizer, warm-started by supervised imitation of "
        f"gold steps for {warm.get('sft_steps')} steps to validation accuracy "
        f"{warm.get('sft_validation_accuracy')}. Learned PRM: Llama token classifier, "
        f"{prm_params / 1e6:.2f}M parameters, random initialisation, trained only on the "
        "Monte-Carlo labels of the loop. Task: arithmetic "
        f"{args.task_kwargs}. Every arm starts from the same warm start and runs "
        f"{args.rounds} rounds x {args.updates} GRPO updates x {args.episodes} episodes "
        f"(groups of {args.group_size}) on the same problems. Accuracy: greedy, "
        f"{args.eval_problems} held-out problems from index {TEST_OFFSET}, so one problem is "
        f"{1 / args.eval_problems:.3f}; one seed, so differences of a few problems are noise. "
        "PRM F1: ProcessBench F1 on gold and corrupted gold solutions, threshold calibrated on "
        f"half of them. Step reward of the process arms: {args.process_reward}. "
        f"{PROCESS_ONLY_NOTE if args.process_reward == 'process' else ''}"
        "Sizes are kept small because the 2-core machine was shared "
        f"(load about 15). Sum of the per-round seconds of all arms: {round_seconds / 60:.1f} "
        f"min; warm start: {warm.get('sft_seconds', math.nan) / 60:.1f} min; wall time of "
        f"this call (finished rounds are not rerun): {wall / 60:.1f} min."
    )


if __name__ == "__main__":
    raise SystemExit(main())
