"""Quality and speed of the process reward models on the ProcessBench metric.

PRMs: the oracle (the task's exact step checker), Monte-Carlo rollouts (k = 4 and 16,
SmolLM2-135M-Instruct as the rollout policy), learned PRMs trained here on corrupted
arithmetic solutions (a tiny random-init Llama, and with ``--smol-steps N`` a SmolLM2-135M
backbone), and SmolLM2-135M-Instruct as an LLM judge. The SmolLM2 rows need the model
pulled (``reasoning-gym models pull smollm2-135m``).

Data: (a) held-out corrupted arithmetic solutions (problems disjoint from training) and
(b) ProcessBench GSM8K (human-labelled). The oracle and Monte-Carlo PRMs need the task's
gold steps or gold answer, which ProcessBench does not include, so they are n/a there.
Every F1 uses a threshold chosen on a random half of the solutions and is measured on
the other half. Throughput compares one batched ``score`` call per 64 steps with one
call per step, on the same steps, in the same run.

Run: ``python benchmarks/prm_quality.py``. With the default subsets and 400 tiny-PRM
training steps it took 31 minutes on 2 CPU cores shared with other jobs (load average
13-17), most of it in the SmolLM2 judge and Monte-Carlo rows; recomputing only the
tiny-PRM rows with 1500 steps (``--resume``) took 4 minutes. Rows are appended to
``results/prm_quality.partial.jsonl`` as they finish and ``--resume`` skips rows already
there.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS_DIR, data_dir, write_results  # noqa: E402
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery  # noqa: E402
from reasoning_gym.prm.data import LabeledSolution, read_processbench  # noqa: E402
from reasoning_gym.prm.evaluate import evaluate_prm, solution_problem  # noqa: E402

logger = logging.getLogger("prm_quality")

NAME = "prm_quality"
PARTIAL = RESULTS_DIR / f"{NAME}.partial.jsonl"

#: Published ProcessBench GSM8K F1 (percent) of 7B-8B PRMs, from Zhang et al. 2025,
#: "The Lessons of Developing Process Reward Models in Mathematical Reasoning"
#: (arXiv:2501.07301v2), Table 7, which uses the ProcessBench protocol. The numbers were
#: read from a public transcription of that table, not from the PDF itself.
PUBLISHED_GSM8K_F1 = {
    "Math-Shepherd-PRM-7B": 47.9,
    "RLHFlow-PRM-Mistral-8B": 50.4,
    "Qwen2.5-Math-7B-PRM800K": 68.2,
    "Skywork-PRM-7B": 70.8,
    "Qwen2.5-Math-PRM-7B": 82.4,
}
PUBLISHED_SOURCE = "arXiv:2501.07301v2 Table 7 (ProcessBench GSM8K F1)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="arithmetic", help="procedural task with gold steps")
    parser.add_argument("--train-n", type=int, default=2000, help="corrupted training solutions")
    parser.add_argument("--test-n", type=int, default=400, help="held-out corrupted solutions")
    parser.add_argument("--mc-n", type=int, default=6, help="held-out solutions scored by MC")
    parser.add_argument("--pb-n", type=int, default=40, help="ProcessBench GSM8K subset size")
    parser.add_argument("--judge-n", type=int, default=40, help="arithmetic solutions for judge")
    parser.add_argument("--tiny-steps", type=int, default=1500, help="training steps, tiny PRM")
    parser.add_argument(
        "--smol-steps", type=int, default=0, help="training steps of the SmolLM2 PRM (0: skip it)"
    )
    parser.add_argument("--single-steps", type=int, default=40, help="steps timed one at a time")
    parser.add_argument("--model", default="smollm2-135m", help="judge / policy / backbone model")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 avoids OpenMP spin-waiting on a shared, busy machine",
    )
    parser.add_argument("--resume", action="store_true", help="keep rows already computed")
    return parser.parse_args()


def throughput(prm: ProcessRewardModel, solutions: list[LabeledSolution], single: int) -> dict:
    """Steps per second scored in batches of 64 versus one step per call."""
    queries: list[StepQuery] = []
    for number, solution in enumerate(solutions):
        problem = solution_problem(solution, number)
        steps = tuple(solution.completions)
        queries += [StepQuery(problem, steps[:i], step) for i, step in enumerate(steps)]
    prm.clear_cache()
    started = time.perf_counter()
    for start in range(0, len(queries), 64):
        prm.score(queries[start : start + 64])
    batched = len(queries) / (time.perf_counter() - started)
    subset = queries[:single]
    prm.clear_cache()
    started = time.perf_counter()
    for query in subset:
        prm.score([query])
    one_at_a_time = len(subset) / (time.perf_counter() - started)
    prm.clear_cache()
    return {
        "steps_per_s_batched": batched,
        "steps_per_s_single": one_at_a_time,
        "batched_over_single": batched / one_at_a_time,
    }


def quality_row(
    prm: ProcessRewardModel, name: str, dataset: str, solutions: list[LabeledSolution]
) -> dict[str, Any]:
    report = evaluate_prm(prm, solutions, calibration_fraction=0.5, seed=0)
    test = report.test
    return {
        "prm": name,
        "data": dataset,
        "solutions": len(solutions),
        "threshold": report.threshold,
        "acc_erroneous": test.error_accuracy,
        "acc_correct": test.correct_accuracy,
        "F1": test.f1,
        "scoring_s": report.seconds,
    }


class Runner:
    """Computes rows once, appending each to the partial JSONL file."""

    def __init__(self, resume: bool):
        self.rows: list[dict[str, Any]] = []
        self.done: dict[tuple[str, str], dict[str, Any]] = {}
        if resume and PARTIAL.is_file():
            for line in PARTIAL.read_text().splitlines():
                row = json.loads(line)
                self.done[(row["prm"], row["data"])] = row
        elif PARTIAL.exists():
            PARTIAL.unlink()

    def row(self, name: str, dataset: str, compute) -> None:
        key = (name, dataset)
        if key in self.done:
            self.rows.append(self.done[key])
            return
        started = time.perf_counter()
        try:
            row = compute()
        except Exception as error:  # one failing PRM must not lose the other rows
            logger.exception("row %s on %s failed", name, dataset)
            row = {"prm": name, "data": dataset, "note": f"failed: {error!r}"[:200]}
        row["wall_s"] = time.perf_counter() - started
        logger.info("%s", row)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        with open(PARTIAL, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, default=str) + "\n")
        self.rows.append(row)


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    from reasoning_gym.models import is_pulled
    from reasoning_gym.prm.corrupt import corrupted_solutions
    from reasoning_gym.prm.learned import LearnedPRM
    from reasoning_gym.prm.oracle import OraclePRM
    from reasoning_gym.prm.training import PRMTrainConfig, train_prm
    from reasoning_gym.tasks.base import make_task

    task = make_task(args.task)
    arithmetic = f"corrupted {args.task} (held-out)"
    gsm8k = "ProcessBench GSM8K"
    train = corrupted_solutions(task, args.train_n, seed=0, start_index=0)
    test = corrupted_solutions(task, args.test_n, seed=0, start_index=1_000_000)
    pb_path = data_dir() / "processbench_gsm8k.json"
    processbench: list[LabeledSolution] = []
    if pb_path.is_file():
        everything = read_processbench(pb_path)
        pick = np.sort(np.random.default_rng(0).permutation(len(everything))[: args.pb_n])
        processbench = [everything[i] for i in pick]
    model_ready = is_pulled(args.model)
    runner = Runner(args.resume)

    def na(name: str, reason: str) -> None:
        runner.row(name, gsm8k, lambda: {"prm": name, "data": gsm8k, "note": f"n/a: {reason}"})

    # Oracle.
    oracle = OraclePRM(task)
    runner.row(
        "oracle",
        arithmetic,
        lambda: {
            **quality_row(oracle, "oracle", arithmetic, test),
            **throughput(oracle, test[:100], args.single_steps),
        },
    )
    na("oracle", "ProcessBench has no gold steps for a step checker")

    # Learned, tiny random-init backbone.
    def tiny_prm() -> LearnedPRM:
        from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

        tokenizer = tiny_tokenizer()
        base = tiny_causal_lm(len(tokenizer), max_positions=4096)
        prm = LearnedPRM.from_base(base, tokenizer, batch_size=32)
        config = PRMTrainConfig(max_steps=args.tiny_steps, batch_size=16, learning_rate=1e-3)
        result = train_prm(prm, train, config, progress=False)
        prm.train_info = {"train_s": result.seconds, "final_loss": np.mean(result.losses[-20:])}
        return prm

    tiny = tiny_prm()
    parameters = sum(parameter.numel() for parameter in tiny.model.parameters())
    name = f"learned (tiny Llama, {parameters / 1e6:.2f}M params)"
    runner.row(
        name,
        arithmetic,
        lambda: {
            **quality_row(tiny, name, arithmetic, test),
            **throughput(tiny, test[:100], args.single_steps),
            **tiny.train_info,
        },
    )
    if processbench:
        runner.row(name, gsm8k, lambda: quality_row(tiny, name, gsm8k, processbench))

    # Learned, SmolLM2-135M backbone.
    name = f"learned ({args.model} backbone)"
    if model_ready and args.smol_steps > 0:
        state: dict[str, Any] = {}

        def smol_arithmetic() -> dict[str, Any]:
            from reasoning_gym.models import resolve_model_path

            prm = LearnedPRM.from_base(resolve_model_path(args.model), batch_size=16)
            config = PRMTrainConfig(max_steps=args.smol_steps, batch_size=8, learning_rate=5e-5)
            result = train_prm(prm, train, config, progress=False)
            state["prm"] = prm
            return {
                **quality_row(prm, name, arithmetic, test),
                **throughput(prm, test[:100], args.single_steps),
                "train_s": result.seconds,
                "final_loss": float(np.mean(result.losses[-20:])),
            }

        runner.row(name, arithmetic, smol_arithmetic)
        if processbench and "prm" in state:
            runner.row(name, gsm8k, lambda: quality_row(state["prm"], name, gsm8k, processbench))

    # LLM judge.
    name = f"judge ({args.model})"
    if model_ready:
        from reasoning_gym.prm.judge import JudgePRM

        judge = JudgePRM.from_name(args.model, batch_size=8)
        judge_test = test[: args.judge_n]
        runner.row(
            name,
            arithmetic,
            lambda: {
                **quality_row(judge, name, arithmetic, judge_test),
                **throughput(judge, judge_test[:20], args.single_steps),
            },
        )
        if processbench:
            runner.row(name, gsm8k, lambda: quality_row(judge, name, gsm8k, processbench))

    # Monte-Carlo rollouts with the model as policy.
    if model_ready:
        from reasoning_gym.policies import SamplingConfig, make_policy
        from reasoning_gym.prm.monte_carlo import MonteCarloPRM

        sampling = SamplingConfig(temperature=0.7, max_step_tokens=32, seed=0)
        policy = make_policy(args.model, sampling=sampling)
        for k in (4, 16):
            name = f"mc:{k} ({args.model} policy)"
            prm = MonteCarloPRM(policy, task, k=k, sampling=sampling, max_steps=4)
            runner.row(
                name,
                arithmetic,
                lambda prm=prm, name=name: {
                    **quality_row(prm, name, arithmetic, test[: args.mc_n]),
                    "propose_calls": prm.propose_calls,
                },
            )
            na(name, "ProcessBench has no gold answer field for rollouts to reach")

    # Published figures.
    for published, f1 in PUBLISHED_GSM8K_F1.items():
        runner.rows.append(
            {
                "prm": f"{published} (published, 7B-8B)",
                "data": gsm8k,
                "F1": f1 / 100,
                "note": PUBLISHED_SOURCE,
            }
        )

    notes = f"""
Subsets: {args.train_n} corrupted {args.task} solutions for training (problem indices from 0),
{args.test_n} held-out ones (indices from 1,000,000); Monte-Carlo rows use the first
{args.mc_n} held-out solutions (max 4 rollout steps, temperature 0.7, 32 tokens per step),
the judge row the first {args.judge_n}; ProcessBench GSM8K uses a seeded random subset of
{len(processbench)} of 400 solutions. F1 is measured on the half of each set not used to
choose the threshold, so small sets give noisy F1 (a 50-solution half moves F1 by several
points per solution).

Throughput: `steps_per_s_batched` scores 64 steps per call, `steps_per_s_single` one step
per call ({args.single_steps} steps), same PRM and cache cleared; the ratio is their quotient.
Torch ran with {args.threads} CPU thread(s) on a machine shared with other jobs, so absolute
rates are lower than on an idle machine; the ratios come from the same run.

The published rows are 7B-8B PRMs fine-tuned on hundreds of thousands of labelled
solutions ({PUBLISHED_SOURCE}). Ours are far smaller: a {parameters / 1e6:.2f}M-parameter PRM
trained for minutes on synthetic arithmetic only, and an untrained 135M-parameter judge, so
their ProcessBench numbers are far lower and are not a like-for-like comparison.

Rows are appended to `{PARTIAL.name}` as they finish; a run with `--resume` reuses the rows
found there and recomputes only the missing ones.
"""
    columns = [
        "prm",
        "data",
        "solutions",
        "threshold",
        "acc_erroneous",
        "acc_correct",
        "F1",
        "steps_per_s_batched",
        "steps_per_s_single",
        "batched_over_single",
        "note",
    ]
    meta = {"args": vars(args), "published_source": PUBLISHED_SOURCE}
    json_path, md_path = write_results(NAME, runner.rows, meta, notes, columns)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
