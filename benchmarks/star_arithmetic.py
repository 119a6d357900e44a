"""STaR on procedural arithmetic: held-out accuracy per round, with and without rationalization.

A randomly initialised tiny Llama model (``reasoning_gym.testing.tiny_causal_lm``) cannot
solve anything, so it is first warm-started by SFT on gold solutions of problems that
are disjoint from both the STaR training and the held-out problems. Half of the
warm-start examples carry the answer hint in the question, which teaches the model what
a hint is. They play the role of the hinted few-shot exemplars that the original STaR
prompt uses for rationalization. Both STaR runs then start from the same warm-started
model, so round 0 (no STaR) is the baseline measured in the same run.

Run::

    .venv/bin/python -m benchmarks.star_arithmetic

Results: ``benchmarks/results/star_arithmetic.{json,md,png}``; the runs themselves
(checkpoints, ``history.json`` per run) are kept under ``--work-dir`` so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from agents.star import (  # noqa: E402
    StarConfig,
    StarTrainer,
    fine_tune,
    hinted_problem,
    training_example,
)
from benchmarks._common import RESULTS_DIR, write_results  # noqa: E402

logger = logging.getLogger("benchmarks.star_arithmetic")

#: Warm-start problems come from indices at and after this offset (disjoint from STaR's).
WARM_START_OFFSET = 1_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="STaR rounds per run")
    parser.add_argument("--train-problems", type=int, default=24, help="STaR training problems")
    parser.add_argument("--eval-problems", type=int, default=48, help="held-out problems")
    parser.add_argument("--warm-start", type=int, default=256, help="gold problems for warm start")
    parser.add_argument("--warm-epochs", type=float, default=6.0, help="warm-start SFT epochs")
    parser.add_argument("--epochs", type=float, default=4.0, help="SFT epochs per STaR round")
    parser.add_argument("--lr", type=float, default=3e-3, help="SFT learning rate")
    parser.add_argument("--num-operations", type=int, default=1, help="arithmetic operations")
    parser.add_argument("--max-operand", type=int, default=5, help="largest operand")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the tiny model")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tiny model")
    parser.add_argument("--temperature", type=float, default=0.0, help="rationale temperature")
    parser.add_argument("--seed", type=int, default=0, help="model and sampling seed")
    parser.add_argument(
        "--work-dir",
        default=str(RESULTS_DIR / "star_arithmetic_runs"),
        help="folder of the warm-started model and the STaR runs (resumable)",
    )
    return parser.parse_args(argv)


def build_tokenizer(task, num_problems: int = 2000, vocab_size: int = 800):
    """Train a byte-level BPE tokenizer on the task's text, so prompts take few tokens.

    ``reasoning_gym.testing.tiny_tokenizer`` spends about 200 tokens on one arithmetic
    prompt because its merges come from a ten-line corpus. Problems come from indices at
    and after ``2 * WARM_START_OFFSET``, so none of them is trained or evaluated on.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [task.instruction] * 50
    for offset in range(num_problems):
        problem = task.problem(2 * WARM_START_OFFSET + offset)
        corpus += [problem.question, hinted_problem(problem).question, *problem.gold_steps]
    corpus += ["Question: ", "Solution:", "0123456789 + - * / = ( ) . ,"]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
    )


def warm_start(args: argparse.Namespace, task, tokenizer, folder: Path) -> dict:
    """Train the tiny model on gold solutions (half of them hinted) and save it to ``folder``."""
    from reasoning_gym.env import ReasoningEnv
    from reasoning_gym.testing import tiny_causal_lm

    info_path = folder / "warm_start.json"
    if info_path.is_file():
        return json.loads(info_path.read_text())

    env = ReasoningEnv(task=task, tokenizer=tokenizer, prm=None, reward_mode="outcome")
    examples = []
    for offset in range(args.warm_start):
        problem = task.problem(WARM_START_OFFSET + offset)
        shown = hinted_problem(problem) if offset % 2 else problem
        ids = [
            np.asarray(tokenizer.encode(step, add_special_tokens=False))
            for step in problem.gold_steps
        ]
        examples.append(
            training_example(env, shown, ids, problem.gold_steps, "gold", tokenizer.eos_token_id)
        )
    model = tiny_causal_lm(
        len(tokenizer), hidden_size=args.hidden, num_layers=args.layers, seed=args.seed
    )
    config = StarConfig(
        learning_rate=args.lr, num_train_epochs=args.warm_epochs, batch_size=8, seed=args.seed
    )
    started = time.perf_counter()
    model = fine_tune(model, tokenizer, examples, config, folder / "sft")
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    info = {
        "examples": len(examples),
        "hinted_examples": args.warm_start // 2,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "seconds": round(seconds, 1),
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return info


def count_sound_rationales(task, run_dir: Path, round_number: int, train_problems: int) -> int:
    """Count kept examples of a round whose every step passes the task's step checker.

    STaR keeps any rationale whose final answer verifies, so a lucky answer after a wrong
    equation is kept too; this count separates those from sound rationales.
    """
    path = run_dir / f"round_{round_number}" / "examples.jsonl"
    if not path.is_file():
        return 0
    problems = {p.id: p for p in (task.problem(i) for i in range(train_problems))}
    sound = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        problem = problems[row["problem_id"]]
        steps = row["steps"]
        scores = [task.check_step(problem, steps[:k], step) for k, step in enumerate(steps)]
        sound += int(all(score == 1.0 for score in scores))
    return sound


def plot(histories: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    # Dashed and solid lines stay visible when both runs give the same accuracy.
    for (label, history), style in zip(histories.items(), ("-o", "--s"), strict=False):
        rounds = [row["round"] for row in history]
        accuracy = [row["heldout_accuracy"] for row in history]
        axis.plot(rounds, accuracy, style, label=label)
        axis.set_xticks(rounds)
    axis.set_ylim(0, 1)
    axis.set_xlabel("STaR round (0 = warm-started model)")
    axis.set_ylabel("held-out accuracy")
    axis.set_title("STaR on arithmetic, tiny Llama model")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import torch

    from reasoning_gym.tasks.arithmetic import ArithmeticTask

    torch.set_num_threads(2)
    task = ArithmeticTask(num_operations=args.num_operations, max_operand=args.max_operand)
    tokenizer = build_tokenizer(task)
    work_dir = Path(args.work_dir)
    base_dir = work_dir / "warm_start_model"
    started = time.perf_counter()
    warm = warm_start(args, task, tokenizer, base_dir)
    print(f"warm start: {warm}")

    histories: dict[str, list[dict]] = {}
    run_dirs: dict[str, Path] = {}
    for label, rationalize in (("with rationalization", True), ("without rationalization", False)):
        config = StarConfig(
            rounds=args.rounds,
            num_train_problems=args.train_problems,
            num_eval_problems=args.eval_problems,
            rationalize=rationalize,
            temperature=args.temperature,
            max_steps=args.num_operations + 2,
            max_step_tokens=16,
            learning_rate=args.lr,
            num_train_epochs=args.epochs,
            batch_size=8,
            seed=args.seed,
            output_dir=str(work_dir / ("rationalization" if rationalize else "direct_only")),
        )
        run_dirs[label] = Path(config.output_dir)
        trainer = StarTrainer(str(base_dir), tokenizer, task, config, progress=True)
        histories[label] = trainer.run()

    rows = []
    for label, history in histories.items():
        baseline = max(history[0]["heldout_accuracy"], 1e-9)
        for row in history:
            rows.append(
                {
                    "run": label,
                    "round": row["round"],
                    "attempted": row["attempted"],
                    "kept_direct": row["kept_direct"],
                    "kept_rationalized": row["kept_rationalized"],
                    "kept_sound": count_sound_rationales(
                        task, run_dirs[label], row["round"], args.train_problems
                    ),
                    "heldout_accuracy": row["heldout_accuracy"],
                    "vs_round_0": row["heldout_accuracy"] / baseline,
                    "seconds": round(row["seconds"], 1),
                }
            )
    plot(histories, RESULTS_DIR / "star_arithmetic.png")
    meta = {
        "task": {"name": task.name, **task.difficulty()},
        "model": f"tiny Llama, hidden {args.hidden}, {args.layers} layers, "
        f"{warm['parameters']} parameters, random init + warm start",
        "warm_start": warm,
        "settings": vars(args),
        "run_seconds": {k: round(sum(r["seconds"] for r in h), 1) for k, h in histories.items()},
        "invocation_seconds": round(time.perf_counter() - started, 1),
    }
    notes = (
        "Round 0 is the warm-started model before any STaR round; `vs_round_0` is the held-out "
        "accuracy divided by that baseline, measured in the same run. The warm start is SFT on "
        f"{warm['examples']} gold solutions of disjoint problems, {warm['hinted_examples']} of "
        "them with the answer hint in the question. The tokenizer is a byte-level BPE trained on "
        "the task's text (prompts of about 80 tokens). `seconds` is the wall time of a round "
        "(generation, SFT, evaluation) on a 2-core machine shared with other jobs, and "
        "`run_seconds` their sum per run; finished rounds and the warm start are reused when "
        "the script is rerun. `kept_sound` counts kept rationales whose every step passes the "
        "task's step checker; the rest reached the gold answer through a wrong equation. "
        "Plot: star_arithmetic.png."
    )
    write_results("star_arithmetic", rows, meta=meta, notes=notes)
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
