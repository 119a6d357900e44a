"""ProcessBench-style evaluation of a process reward model.

For each solution the PRM's prediction of the earliest wrong step is the first step whose
score is below a threshold, or -1 when no score is. Accuracy is measured separately on
erroneous solutions (the predicted index must equal the labelled one) and on correct
solutions (the prediction must be -1). F1 is the harmonic mean of the two accuracies, as
in ProcessBench (Zheng et al., 2024, arXiv:2412.06559). The threshold is chosen by grid
search on a calibration split and the metrics are reported on the rest.

Since a step's prediction depends only on the scores up to it, solutions whose steps
after the first error were dropped (``after_error="exclude"``) give the same metrics as
complete ones, for any PRM that scores a step from the steps before it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.prm.data import LabeledSolution
from reasoning_gym.tasks.base import Problem

logger = logging.getLogger(__name__)

#: Thresholds tried by :func:`choose_threshold` unless the caller gives a grid.
DEFAULT_GRID: tuple[float, ...] = tuple(np.round(np.linspace(0.02, 0.98, 49), 4))


def predict_first_wrong(scores: Sequence[float] | np.ndarray, threshold: float) -> int:
    """Return the index of the first score below ``threshold``, or -1 when there is none."""
    below = np.flatnonzero(np.asarray(scores, dtype=np.float64) < threshold)
    return int(below[0]) if below.size else -1


@dataclass
class ProcessBenchMetrics:
    """ProcessBench metrics at one threshold.

    Attributes:
        threshold: Scores below it mark a step as wrong.
        error_accuracy: Fraction of erroneous solutions whose earliest wrong step is found
            exactly (NaN when there are none).
        correct_accuracy: Fraction of correct solutions predicted to have no error (NaN
            when there are none).
        f1: Harmonic mean of the two accuracies (0.0 when either is 0 or NaN).
        num_error: Number of erroneous solutions.
        num_correct: Number of correct solutions.
    """

    threshold: float
    error_accuracy: float
    correct_accuracy: float
    f1: float
    num_error: int
    num_correct: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def processbench_metrics(
    predictions: Sequence[int], labels: Sequence[int], threshold: float = float("nan")
) -> ProcessBenchMetrics:
    """Compute ProcessBench accuracies and F1 from predicted and true earliest-error indices.

    Args:
        predictions: Predicted earliest wrong step per solution (-1: no error).
        labels: True earliest wrong step per solution (-1: no error).
        threshold: Recorded in the result only.
    """
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if predictions.shape != labels.shape:
        raise ValueError(
            f"{predictions.size} predictions but {labels.size} labels; give one per solution"
        )
    erroneous = labels != -1
    num_error = int(erroneous.sum())
    num_correct = int((~erroneous).sum())
    error_accuracy = (
        float((predictions[erroneous] == labels[erroneous]).mean()) if num_error else float("nan")
    )
    correct_accuracy = (
        float((predictions[~erroneous] == -1).mean()) if num_correct else float("nan")
    )
    if np.isnan(error_accuracy) or np.isnan(correct_accuracy):
        f1 = 0.0
    elif error_accuracy + correct_accuracy == 0:
        f1 = 0.0
    else:
        f1 = 2 * error_accuracy * correct_accuracy / (error_accuracy + correct_accuracy)
    return ProcessBenchMetrics(
        float(threshold), error_accuracy, correct_accuracy, float(f1), num_error, num_correct
    )


def score_solutions(
    prm: ProcessRewardModel,
    solutions: Sequence[LabeledSolution],
    batch_steps: int = 64,
    progress: bool = False,
) -> list[np.ndarray]:
    """Score every step of every solution, batching steps across solutions.

    Args:
        prm: The process reward model.
        solutions: The solutions; ``meta["problem"]`` may hold a :class:`Problem` (needed
            by PRMs that read the gold answer), otherwise one is built from the prompt.
        batch_steps: Number of step queries per ``prm.score`` call.
        progress: Show a tqdm progress bar.

    Returns:
        One array of shape (num_steps,) per solution.
    """
    if batch_steps < 1:
        raise ValueError(f"batch_steps={batch_steps} must be at least 1")
    queries: list[StepQuery] = []
    owners: list[int] = []
    for number, solution in enumerate(solutions):
        problem = solution_problem(solution, number)
        steps = tuple(solution.completions)
        for i, step in enumerate(steps):
            queries.append(StepQuery(problem=problem, previous_steps=steps[:i], step=step))
            owners.append(number)
    flat = np.empty(len(queries), dtype=np.float64)
    starts = range(0, len(queries), batch_steps)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"scoring with {prm.name}", unit="batch")
    for start in starts:
        flat[start : start + batch_steps] = prm.score(queries[start : start + batch_steps])
    result = []
    position = 0
    for solution in solutions:
        result.append(flat[position : position + len(solution.completions)])
        position += len(solution.completions)
    return result


def solution_problem(solution: LabeledSolution, number: int = 0) -> Problem:
    """Return the solution's Problem: ``meta["problem"]`` or one built from the prompt."""
    problem = solution.meta.get("problem")
    if isinstance(problem, Problem):
        return problem
    problem_id = str(solution.meta.get("id", f"solution-{number}"))
    answer = str(solution.meta.get("gold_answer") or "")
    return Problem(id=problem_id, question=solution.prompt, answer=answer)


def metrics_at(
    step_scores: Sequence[np.ndarray], labels: Sequence[int], threshold: float
) -> ProcessBenchMetrics:
    """ProcessBench metrics of precomputed step scores at one threshold."""
    predictions = [predict_first_wrong(scores, threshold) for scores in step_scores]
    return processbench_metrics(predictions, labels, threshold)


def choose_threshold(
    step_scores: Sequence[np.ndarray],
    labels: Sequence[int],
    grid: Sequence[float] = DEFAULT_GRID,
) -> ProcessBenchMetrics:
    """Return the metrics at the grid threshold with the highest F1 (the lowest on ties)."""
    if len(grid) == 0:
        raise ValueError("the threshold grid is empty; pass at least one threshold")
    best: ProcessBenchMetrics | None = None
    for threshold in grid:
        metrics = metrics_at(step_scores, labels, float(threshold))
        if best is None or metrics.f1 > best.f1:
            best = metrics
    return best


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate_prm`.

    Attributes:
        prm: Name of the PRM.
        threshold: Threshold chosen on the calibration split (or given).
        calibration: Metrics on the calibration split at that threshold.
        test: Metrics on the held-out split at that threshold.
        num_steps: Steps scored.
        seconds: Wall-clock seconds spent scoring.
        extra: Free-form fields added by callers.
    """

    prm: str
    threshold: float
    calibration: ProcessBenchMetrics | None
    test: ProcessBenchMetrics
    num_steps: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prm": self.prm,
            "threshold": self.threshold,
            "calibration": self.calibration.as_dict() if self.calibration else None,
            "test": self.test.as_dict(),
            "num_steps": self.num_steps,
            "seconds": self.seconds,
            **self.extra,
        }


def split_calibration(
    num_items: int, calibration_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split item indices at random into (calibration, test) index arrays."""
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(
            f"calibration_fraction={calibration_fraction} must be in (0, 1); "
            "pass threshold= to skip calibration"
        )
    order = np.random.default_rng(seed).permutation(num_items)
    cut = int(round(num_items * calibration_fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])


def evaluate_prm(
    prm: ProcessRewardModel,
    solutions: Sequence[LabeledSolution],
    threshold: float | None = None,
    calibration_fraction: float = 0.5,
    grid: Sequence[float] = DEFAULT_GRID,
    seed: int = 0,
    batch_steps: int = 64,
    progress: bool = False,
) -> EvaluationReport:
    """Evaluate a PRM on labelled solutions with the ProcessBench metric.

    Args:
        prm: The process reward model.
        solutions: Solutions whose labels give the earliest wrong step.
        threshold: A fixed threshold; None chooses one on a calibration split.
        calibration_fraction: Fraction of solutions used to choose the threshold.
        grid: Thresholds tried.
        seed: Seed of the calibration/test split.
        batch_steps: Step queries per ``prm.score`` call.
        progress: Show a tqdm progress bar.
    """
    import time

    if not solutions:
        raise ValueError("no solutions to evaluate; check the data source")
    start = time.perf_counter()
    step_scores = score_solutions(prm, solutions, batch_steps=batch_steps, progress=progress)
    seconds = time.perf_counter() - start
    labels = np.asarray([solution.first_wrong for solution in solutions])
    num_steps = sum(len(scores) for scores in step_scores)
    if threshold is not None:
        test = metrics_at(step_scores, labels, threshold)
        return EvaluationReport(prm.name, float(threshold), None, test, num_steps, seconds)
    calibration_index, test_index = split_calibration(len(solutions), calibration_fraction, seed)
    calibration = choose_threshold(
        [step_scores[i] for i in calibration_index], labels[calibration_index], grid
    )
    test = metrics_at(
        [step_scores[i] for i in test_index], labels[test_index], calibration.threshold
    )
    logger.info(
        "%s: threshold %.3f chosen on %d solutions; held-out F1 %.3f on %d",
        prm.name,
        calibration.threshold,
        len(calibration_index),
        test.f1,
        len(test_index),
    )
    return EvaluationReport(prm.name, calibration.threshold, calibration, test, num_steps, seconds)
