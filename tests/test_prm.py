"""Process reward models: aggregation, cache, oracle, Monte-Carlo, learned, judge, metrics."""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest

from reasoning_gym.errors import UnknownNameError
from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal
from reasoning_gym.prm.base import CallablePRM, ProcessRewardModel, StepQuery, aggregate
from reasoning_gym.prm.corrupt import (
    check_equation_step,
    corrupt_steps,
    corrupted_solutions,
    evaluate_expression,
)
from reasoning_gym.prm.evaluate import (
    choose_threshold,
    evaluate_prm,
    predict_first_wrong,
    processbench_metrics,
)
from reasoning_gym.prm.oracle import OraclePRM
from reasoning_gym.prm.registry import make_prm
from reasoning_gym.tasks.base import Problem, Task, problem_rng


class ChainTask(Task):
    """Two-step word problems with gold equation chains, an exact checker and verifier."""

    name = "chain-test"

    def problem(self, index: int, seed: int = 0) -> Problem:
        rng = problem_rng(self.name, seed, index)
        start, bags, each = rng.randint(2, 20), rng.randint(2, 9), rng.randint(2, 30)
        total = start + bags * each
        question = f"Tom has {start} apples and buys {bags} bags with {each} apples each."
        steps = (
            f"{bags} * {each} = {bags * each}",
            f"{start} + {bags * each} = {total}",
            f"The answer is \\boxed{{{total}}}.",
        )
        return Problem(f"chain/{seed}/{index}", question, str(total), steps)

    def verify(self, problem: Problem, answer_text: str) -> float:
        match = re.search(r"\\boxed\{([^{}]*)\}", answer_text)
        return 1.0 if match and match.group(1).strip() == problem.answer else 0.0

    def check_step(self, problem, previous_steps, step):
        return check_equation_step(problem.question, previous_steps, step, problem.answer)


class NoCheckerTask(ChainTask):
    name = "no-checker-test"
    check_step = Task.check_step


class CountingPRM(ProcessRewardModel):
    name = "counting"

    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def _score_batch(self, queries):
        self.batches.append(len(queries))
        return np.asarray([len(query.step) / 100 for query in queries])


# Aggregation and cache


def test_aggregate_functions():
    scores = [0.9, 0.5, 0.8]
    assert aggregate(scores, "min") == 0.5
    assert aggregate(scores, "last") == 0.8
    assert aggregate(scores, "product") == pytest.approx(0.36)
    assert aggregate(scores, "mean") == pytest.approx(2.2 / 3)
    assert aggregate([], "min") == 0.0
    with pytest.raises(UnknownNameError, match="mni"):
        aggregate(scores, "mni")


def test_cache_hit_skips_score_batch():
    prm = CountingPRM()
    problem = ChainTask().problem(0)
    queries = [StepQuery(problem, (), "1 + 1 = 2"), StepQuery(problem, ("a",), "b")]
    first = prm.score(queries)
    second = prm.score(queries)
    assert prm.batches == [2]
    assert prm.calls == 1
    assert prm.cache_hits == 2
    np.testing.assert_array_equal(first, second)
    prm.score([queries[0], StepQuery(problem, (), "new step")])
    assert prm.batches == [2, 1]


def test_cache_key_uses_ids_when_present():
    problem = ChainTask().problem(0)
    with_ids = StepQuery(problem, (), "x", np.array([1, 2]), np.array([3]))
    other_text = StepQuery(problem, ("different",), "y", np.array([1, 2]), np.array([3]))
    assert with_ids.cache_key() == other_text.cache_key()
    assert with_ids.cache_key() != StepQuery(problem, (), "x").cache_key()


# Oracle and registry


def test_oracle_scores_gold_and_corrupted_steps():
    task = ChainTask()
    prm = OraclePRM(task)
    rng = random.Random(0)
    for index in range(20):
        problem = task.problem(index)
        np.testing.assert_array_equal(prm.score_solution(problem, problem.gold_steps), 1.0)
        steps, first_wrong, kind = corrupt_steps(problem.question, problem.gold_steps, rng)
        scores = prm.score_solution(problem, steps)
        assert np.all(scores[:first_wrong] == 1.0), (kind, steps)
        assert scores[first_wrong] == 0.0, (kind, steps)
    assert prm.uses_gold_answer


def test_oracle_on_arithmetic_task():
    from reasoning_gym.tasks.base import make_task

    task = make_task("arithmetic")
    prm = make_prm("auto", task)
    assert isinstance(prm, OraclePRM)
    solutions = corrupted_solutions(task, 40, seed=2, after_error="zero")
    kinds = {solution.meta["kind"] for solution in solutions}
    assert kinds == {"gold", "result", "operand", "skip"}
    for solution in solutions:
        problem = solution.meta["problem"]
        scores = prm.score_solution(problem, solution.completions)
        first_wrong = solution.first_wrong
        if first_wrong == -1:
            np.testing.assert_array_equal(scores, 1.0)
        else:
            assert np.all(scores[:first_wrong] == 1.0), solution.completions
            assert scores[first_wrong] == 0.0, solution.completions


def test_oracle_rejects_task_without_checker():
    with pytest.raises(ValueError, match="no step checker"):
        OraclePRM(NoCheckerTask())


def test_make_prm_specs():
    task = ChainTask()
    assert make_prm(None) is None
    assert make_prm("none", task) is None
    assert isinstance(make_prm("auto", task), OraclePRM)
    assert make_prm("auto", NoCheckerTask()) is None
    assert isinstance(make_prm("oracle", task), OraclePRM)
    prm = CountingPRM()
    assert make_prm(prm) is prm
    wrapped = make_prm(lambda query: 0.25)
    assert isinstance(wrapped, CallablePRM)
    assert wrapped.score([StepQuery(task.problem(0), (), "s")])[0] == 0.25
    with pytest.raises(UnknownNameError, match="oracle"):
        make_prm("oracel", task)
    with pytest.raises(ValueError, match="needs a task"):
        make_prm("oracle")
    with pytest.raises(ValueError, match="rollout policy"):
        make_prm("mc:4", task)
    with pytest.raises(ValueError, match="number of rollouts"):
        make_prm("mc:four", task, policy=ReplayPolicy([]), separator_ids=[10])
    mc = make_prm("mc:4", task, policy=ReplayPolicy([]), separator_ids=[10])
    assert mc.k == 4


# Corruption


def test_evaluate_expression_exact():
    assert evaluate_expression("3 * 7 + 12") == 33
    assert evaluate_expression("(2 + 3) * -4") == -20
    assert evaluate_expression("7 / 2") == pytest.approx(3.5)
    for bad in ("3 +", "2 ** 3", "__import__('os')", "1 / 0"):
        with pytest.raises(ValueError):
            evaluate_expression(bad)


@pytest.mark.parametrize("kind", ["result", "operand", "skip"])
def test_corrupt_steps_labels_exact(kind):
    task = ChainTask()
    rng = random.Random(1)
    built = 0
    for index in range(30):
        problem = task.problem(index)
        try:
            steps, first_wrong, used = corrupt_steps(
                problem.question, problem.gold_steps, rng, kinds=[kind]
            )
        except ValueError:
            continue
        built += 1
        assert used == kind
        checks = [
            check_equation_step(problem.question, steps[:i], step, problem.answer)
            for i, step in enumerate(steps)
        ]
        assert checks[first_wrong] == 0.0, steps
        assert all(value == 1.0 for value in checks[:first_wrong]), steps
    assert built >= 10


def test_corrupted_solutions_mix_and_labels():
    solutions = corrupted_solutions(ChainTask(), 60, seed=3)
    assert len(solutions) == 60
    kinds = {solution.meta["kind"] for solution in solutions}
    assert "gold" in kinds
    assert len(kinds) >= 3
    for solution in solutions:
        assert solution.first_wrong == solution.meta["first_wrong"]
        if solution.meta["kind"] == "gold":
            assert solution.labels == [1.0] * len(solution.completions)


# ProcessBench metric


def test_predict_first_wrong():
    assert predict_first_wrong([0.9, 0.4, 0.1], 0.5) == 1
    assert predict_first_wrong([0.9, 0.8], 0.5) == -1
    assert predict_first_wrong([], 0.5) == -1


def test_processbench_f1_hand_computed():
    # Erroneous: labels 1, 0, 2 with predictions 1 (hit), -1 (miss), 2 (hit) -> 2/3.
    # Correct: four solutions, predictions -1, -1, 0, -1 -> 3/4.
    metrics = processbench_metrics([1, -1, 2, -1, -1, 0, -1], [1, 0, 2, -1, -1, -1, -1])
    assert metrics.error_accuracy == pytest.approx(2 / 3)
    assert metrics.correct_accuracy == pytest.approx(3 / 4)
    expected_f1 = 2 * (2 / 3) * (3 / 4) / (2 / 3 + 3 / 4)
    assert metrics.f1 == pytest.approx(expected_f1)
    assert (metrics.num_error, metrics.num_correct) == (3, 4)


def test_choose_threshold_picks_best_f1():
    scores = [np.array([0.9, 0.3]), np.array([0.9, 0.7]), np.array([0.6, 0.9])]
    labels = [1, -1, -1]
    best = choose_threshold(scores, labels, grid=[0.2, 0.5, 0.65, 0.8])
    assert best.threshold == 0.5
    assert best.f1 == 1.0


def test_evaluate_oracle_is_perfect():
    solutions = corrupted_solutions(ChainTask(), 40, seed=5)
    report = evaluate_prm(OraclePRM(ChainTask()), solutions, calibration_fraction=0.5)
    assert report.test.f1 == 1.0
    assert report.num_steps == sum(len(solution.completions) for solution in solutions)


# Monte-Carlo PRM


class ReplayPolicy(StepPolicy):
    """Replays scripted steps: call d returns script[d][j] for the j-th context."""

    name = "replay"

    def __init__(self, script, tokenizer=None):
        super().__init__()
        self.script = script
        self.tokenizer = tokenizer
        self.calls: list[list[np.ndarray]] = []

    def propose(self, contexts, n=1, sampling=None):
        depth = len(self.calls)
        self.calls.append([np.asarray(context) for context in contexts])
        results = []
        for j in range(len(contexts)):
            text = self.script[depth][j]
            ids = np.asarray(self.tokenizer.encode(text, add_special_tokens=False))
            results.append([StepProposal(ids, text, np.zeros(len(ids)), "\\boxed" in text)])
        return results


def test_monte_carlo_soft_and_hard_labels(hf_tokenizer):
    task = ChainTask()
    problem = task.problem(0)
    right, wrong = f"\\boxed{{{problem.answer}}}", "\\boxed{-1}"
    middle = problem.gold_steps[1]
    script = [
        [middle] * 8,
        [right, wrong, right, right, wrong, wrong, wrong, right],
    ]
    separator = hf_tokenizer.encode("\n", add_special_tokens=False)
    context = np.asarray(hf_tokenizer.encode("prompt", add_special_tokens=False))
    step_ids = np.asarray(hf_tokenizer.encode(problem.gold_steps[0], add_special_tokens=False))
    queries = [
        StepQuery(problem, (), problem.gold_steps[0], context, step_ids),
        StepQuery(problem, ("x",), problem.gold_steps[0], context, step_ids[:-1]),
    ]
    policy = ReplayPolicy(script, hf_tokenizer)
    soft = make_prm("mc:4", task, policy=policy, separator_ids=separator)
    scores = soft.score(queries)
    np.testing.assert_allclose(scores, [0.75, 0.25])
    assert len(policy.calls) == 2  # one propose call per rollout depth
    assert len(policy.calls[0]) == 8
    expected_start = np.concatenate([context, step_ids, separator])
    np.testing.assert_array_equal(policy.calls[0][0], expected_start)

    hard_policy = ReplayPolicy(script, hf_tokenizer)
    hard = make_prm("mc:4", task, policy=hard_policy, separator_ids=separator, label="hard")
    np.testing.assert_allclose(hard.score(queries), [1.0, 1.0])


def test_monte_carlo_final_step_and_text_context(hf_tokenizer):
    from reasoning_gym.tokenizers import HFTokenizer

    task = ChainTask()
    problem = task.problem(1)
    policy = ReplayPolicy([[f"\\boxed{{{problem.answer}}}"] * 2], hf_tokenizer)
    prm = make_prm("mc:2", task, policy=policy, tokenizer=HFTokenizer(hf_tokenizer))
    final = StepQuery(problem, problem.gold_steps[:2], "The answer is \\boxed{0}.")
    text_only = StepQuery(problem, (), problem.gold_steps[0])
    np.testing.assert_allclose(prm.score([final, text_only]), [0.0, 1.0])
    assert len(policy.calls) == 1
    assert len(policy.calls[0]) == 2


def test_monte_carlo_greedy_runs_one_rollout(hf_tokenizer):
    task = ChainTask()
    problem = task.problem(2)
    policy = ReplayPolicy([[f"\\boxed{{{problem.answer}}}"]], hf_tokenizer)
    prm = make_prm(
        "mc:8", task, policy=policy, separator_ids=[10], sampling=SamplingConfig(temperature=0)
    )
    context = np.asarray([1, 2, 3])
    assert prm.score([StepQuery(problem, (), "s", context, np.asarray([4]))])[0] == 1.0
    assert len(policy.calls[0]) == 1


# Learned PRM


@pytest.fixture(scope="module")
def trained_prm(tmp_path_factory):
    from reasoning_gym.prm.learned import LearnedPRM
    from reasoning_gym.prm.training import PRMTrainConfig, train_prm
    from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    prm = LearnedPRM.from_base(tiny_causal_lm(len(tokenizer)), tokenizer, seed=0)
    data = corrupted_solutions(ChainTask(), 200, seed=0)
    out_dir = tmp_path_factory.mktemp("prm-train")
    config = PRMTrainConfig(max_steps=250, batch_size=8, learning_rate=1e-3, checkpoint_every=125)
    result = train_prm(prm, data, config, out_dir=out_dir, progress=False)
    return prm, result, out_dir


def test_learned_prm_loss_decreases(trained_prm):
    _, result, out_dir = trained_prm
    assert result.step == 250
    assert len(result.losses) == 250
    assert np.mean(result.losses[-25:]) < np.mean(result.losses[:25]) - 0.05
    assert (out_dir / "final" / "prm_config.json").is_file()
    assert (out_dir / "checkpoint-250" / "optimizer.pt").is_file()
    assert (out_dir / "train_log.jsonl").read_text().count("\n") == 25


def test_learned_prm_save_load_identical(trained_prm, tmp_path):
    from reasoning_gym.prm.learned import LearnedPRM

    prm, _, _ = trained_prm
    prm.save_pretrained(tmp_path / "saved")
    loaded = LearnedPRM.from_pretrained(tmp_path / "saved")
    assert loaded.step_tag == prm.step_tag
    problem = ChainTask().problem(500, seed=9)
    before = prm.score_solution(problem, problem.gold_steps)
    after = loaded.score_solution(problem, problem.gold_steps)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-6)
    loaded_by_spec = make_prm(f"learned:{tmp_path / 'saved'}")
    np.testing.assert_allclose(
        loaded_by_spec.score_solution(problem, problem.gold_steps), before, atol=1e-6
    )


def test_learned_prm_batched_equals_single(trained_prm):
    from reasoning_gym.prm.learned import LearnedPRM

    prm, _, _ = trained_prm
    fresh = LearnedPRM(prm.model, prm.tokenizer, step_tag=prm.step_tag, batch_size=4)
    task = ChainTask()
    queries = []
    for index in range(6):
        problem = task.problem(700 + index)
        steps = problem.gold_steps
        queries += [StepQuery(problem, steps[:i], step) for i, step in enumerate(steps)]
    batched = fresh.score(queries)
    fresh.clear_cache()
    single = np.array([fresh.score([query])[0] for query in queries])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert np.all((batched > 0) & (batched < 1))


def test_learned_prm_resume_continues_step(tmp_path):
    from reasoning_gym.prm.learned import LearnedPRM
    from reasoning_gym.prm.training import PRMTrainConfig, latest_checkpoint, train_prm
    from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    data = corrupted_solutions(ChainTask(), 30, seed=1)
    first = LearnedPRM.from_base(tiny_causal_lm(len(tokenizer)), tokenizer)
    config = PRMTrainConfig(max_steps=6, batch_size=4, checkpoint_every=3, keep_checkpoints=1)
    train_prm(first, data, config, out_dir=tmp_path, progress=False)
    assert latest_checkpoint(tmp_path).name == "checkpoint-6"
    second = LearnedPRM.from_base(tiny_causal_lm(len(tokenizer)), tokenizer)
    longer = PRMTrainConfig(max_steps=9, batch_size=4, checkpoint_every=3, keep_checkpoints=1)
    result = train_prm(second, data, longer, out_dir=tmp_path, resume=True, progress=False)
    assert result.resumed_from == 6
    assert result.step == 9
    assert len(result.losses) == 3


def test_step_tag_must_be_one_token(hf_tokenizer):
    from reasoning_gym.prm.learned import LearnedPRM, build_prm_inputs
    from reasoning_gym.testing import tiny_causal_lm

    with pytest.raises(ValueError, match="'<\\|step\\|>' encodes to"):
        build_prm_inputs(hf_tokenizer, "q", ["a"], "<|step|>")
    model = tiny_causal_lm(len(hf_tokenizer))
    with pytest.raises(ValueError, match="add_special_tokens"):
        LearnedPRM.from_base(model, hf_tokenizer, step_tag="<|step|>", add_step_tag=False)
    prm = LearnedPRM.from_base(model, hf_tokenizer, step_tag="<|step|>")
    ids, positions = build_prm_inputs(prm.tokenizer, "q", ["1 + 1 = 2", "2"], "<|step|>")
    assert len(positions) == 2
    assert [ids[position] for position in positions] == [prm.step_tag_id] * 2
    assert "<|step|>" not in hf_tokenizer.get_vocab()  # the shared tokenizer is untouched


# Judge PRM


def test_judge_prm_matches_manual_softmax(hf_tokenizer):
    import torch

    from reasoning_gym.prm.judge import JudgePRM
    from reasoning_gym.testing import tiny_causal_lm

    model = tiny_causal_lm(len(hf_tokenizer), seed=3)
    judge = JudgePRM(model, hf_tokenizer, batch_size=2)
    problem = ChainTask().problem(0)
    steps = problem.gold_steps
    queries = [StepQuery(problem, steps[:i], step) for i, step in enumerate(steps)]
    scores = judge.score(queries)
    assert scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))
    for query, score in zip(queries, scores, strict=True):
        ids = torch.tensor([judge.prompt_ids(query)])
        with torch.inference_mode():
            probabilities = torch.softmax(model(input_ids=ids).logits[0, -1].double(), dim=-1)
        p_yes, p_no = float(probabilities[judge.yes_id]), float(probabilities[judge.no_id])
        assert score == pytest.approx(p_yes / (p_yes + p_no), abs=1e-5)
    assert not math.isclose(scores[0], scores[1])


# Command line


@pytest.fixture
def chain_task_registered():
    from reasoning_gym.tasks.base import register_task

    register_task("chain-test", ChainTask, overwrite=True)
    return "chain-test"


def test_cli_train_then_eval(chain_task_registered, tmp_path, capsys):
    from reasoning_gym.cli.main import main

    data = f"corrupted:{chain_task_registered}:40"
    out = tmp_path / "prm"
    status = main(
        ["prm", "train", "--data", data, "--model", "tiny", "--out", str(out)]
        + ["--steps", "6", "--batch-size", "4", "--checkpoint-every", "3"]
    )
    assert status == 0
    assert (out / "final" / "prm_config.json").is_file()
    assert (out / "checkpoint-6").is_dir()
    report_path = tmp_path / "report.json"
    status = main(
        ["prm", "eval", "--prm", f"learned:{out / 'final'}", "--data", data]
        + ["--out", str(report_path)]
    )
    assert status == 0
    report = json.loads(report_path.read_text())
    assert 0.0 <= report["test"]["f1"] <= 1.0
    assert report["test"]["num_error"] + report["test"]["num_correct"] == 20
    status = main(["prm", "eval", "--prm", "oracle", "--data", data, "--threshold", "0.5"])
    assert status == 0
    assert "F1                      1.000" in capsys.readouterr().out


def test_cli_eval_reports_bad_spec(tmp_path, capsys):
    from reasoning_gym.cli.main import main

    status = main(["prm", "eval", "--prm", "oracle", "--data", "corrupted:x"])
    assert status == 2
    assert "corrupted:TASK:N" in capsys.readouterr().err
