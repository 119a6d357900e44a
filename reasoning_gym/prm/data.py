"""Step-labelled solution data: readers of public PRM formats and a JSONL format of our own.

Every reader returns :class:`LabeledSolution` records: the prompt, the solution split into
steps, and one label in [0, 1] per step (1 = the step is correct). A label of NaN marks a
step that stays in the solution as context but is left out of the training loss; the
JSONL files store it as ``null``.

Formats:

* ProcessBench (one JSON array; ``steps`` plus ``label`` = index of the earliest wrong
  step, -1 when every step is correct). Steps before the error get 1.0 and the wrong step
  0.0. Steps after the first error carry no annotation: ``after_error="exclude"`` (the
  default) drops them, ``after_error="zero"`` keeps them labelled 0.0.
* Math-Shepherd (a step tag such as ``"ки"`` after each step; the label text has ``+`` or
  ``-`` in place of each tag, or the tag is followed by the mark).
* PRM800K (one JSON object a line; each step has rated completions, rating -1/0/+1, and
  ``neutral_as`` says what a 0 rating becomes).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoning_gym.errors import DatasetFormatError

#: The step tag of the Math-Shepherd dataset (Cyrillic "ки").
MATH_SHEPHERD_TAG = "ки"


@dataclass
class LabeledSolution:
    """A solution split into steps with one correctness label per step.

    Attributes:
        prompt: The problem statement.
        completions: The solution's steps, in order.
        labels: One label per step in [0, 1]; NaN marks a step without a label.
        meta: Provenance: source file, record id, ``first_wrong`` (index of the earliest
            wrong step or -1), and format-specific fields.
    """

    prompt: str
    completions: list[str]
    labels: list[float]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise TypeError(f"prompt must be a str, got {type(self.prompt).__name__}")
        self.completions = [str(step) for step in self.completions]
        self.labels = [math.nan if label is None else float(label) for label in self.labels]
        if len(self.completions) != len(self.labels):
            raise ValueError(
                f"{len(self.completions)} completions but {len(self.labels)} labels; "
                "give exactly one label per step"
            )
        for label in self.labels:
            if not math.isnan(label) and not 0.0 <= label <= 1.0:
                raise ValueError(f"label {label} is outside [0, 1]; use 1.0 for correct steps")

    @property
    def first_wrong(self) -> int:
        """Index of the earliest step labelled below 0.5, or -1 when there is none."""
        return first_wrong_index(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``{prompt, completions, labels, meta}``.

        NaN labels become null and objects in ``meta`` with a ``to_dict`` method (a
        Problem) become their dict.
        """
        return {
            "prompt": self.prompt,
            "completions": list(self.completions),
            "labels": [None if math.isnan(label) else label for label in self.labels],
            "meta": {
                key: value.to_dict() if hasattr(value, "to_dict") else value
                for key, value in self.meta.items()
            },
        }


def first_wrong_index(labels: Sequence[float]) -> int:
    """Return the index of the first label below 0.5 (NaN labels are skipped), or -1."""
    for i, label in enumerate(labels):
        if label is not None and not math.isnan(label) and label < 0.5:
            return i
    return -1


def labels_from_first_wrong(
    num_steps: int, first_wrong: int, after_error: str = "exclude"
) -> list[float]:
    """Build step labels from the index of the earliest wrong step.

    Args:
        num_steps: Number of steps of the solution.
        first_wrong: Index of the earliest wrong step, or -1 when all steps are correct.
        after_error: ``"exclude"`` returns labels only up to the wrong step (the caller
            truncates the steps to match); ``"zero"`` labels the later steps 0.0.
    """
    if after_error not in ("exclude", "zero"):
        raise ValueError(f"after_error={after_error!r} is invalid; use 'exclude' or 'zero'")
    if not -1 <= first_wrong < num_steps:
        raise ValueError(f"first wrong step {first_wrong} is outside [-1, {num_steps - 1}]")
    if first_wrong == -1:
        return [1.0] * num_steps
    labels = [1.0] * first_wrong + [0.0]
    if after_error == "zero":
        labels += [0.0] * (num_steps - first_wrong - 1)
    return labels


def _check_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} not found; check the path")
    return path


def read_processbench(
    path: str | os.PathLike, after_error: str = "exclude", limit: int | None = None
) -> list[LabeledSolution]:
    """Read a ProcessBench split (for example ``gsm8k.json``).

    Args:
        path: The JSON file: a list of ``{id, generator, problem, steps,
            final_answer_correct, label}``.
        after_error: What happens to steps after the earliest error: ``"exclude"`` drops
            them, ``"zero"`` keeps them with label 0.0.
        limit: Read only the first ``limit`` records.

    Returns:
        One record per solution; ``meta`` contains ``id``, ``generator``,
        ``final_answer_correct``, ``first_wrong`` and ``num_steps`` (before truncation).
    """
    path = _check_path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetFormatError(f"{path}: invalid JSON ({error})") from error
    if not isinstance(records, list):
        raise DatasetFormatError(f"{path}: expected a JSON array of ProcessBench records")
    solutions = []
    for number, record in enumerate(records[:limit] if limit is not None else records):
        try:
            steps = [str(step) for step in record["steps"]]
            first_wrong = int(record["label"])
            problem = str(record["problem"])
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetFormatError(
                f"{path}: record {number} lacks a valid 'problem', 'steps' or 'label' ({error!r})"
            ) from error
        if not -1 <= first_wrong < len(steps):
            raise DatasetFormatError(
                f"{path}: record {number} has label {first_wrong} but {len(steps)} steps"
            )
        labels = labels_from_first_wrong(len(steps), first_wrong, after_error)
        meta = {
            "source": "processbench",
            "file": path.name,
            "id": record.get("id", f"{path.stem}-{number}"),
            "generator": record.get("generator"),
            "final_answer_correct": record.get("final_answer_correct"),
            "first_wrong": first_wrong,
            "num_steps": len(steps),
        }
        solutions.append(LabeledSolution(problem, steps[: len(labels)], labels, meta))
    return solutions


def _mark_to_label(mark: str, where: str) -> float:
    if mark == "+":
        return 1.0
    if mark == "-":
        return 0.0
    raise DatasetFormatError(f"{where}: expected '+' or '-' after a step, found {mark!r}")


def parse_math_shepherd(
    text: str,
    label_text: str | None = None,
    step_tag: str = MATH_SHEPHERD_TAG,
    meta: Mapping[str, Any] | None = None,
) -> LabeledSolution:
    """Parse one Math-Shepherd record.

    Two layouts are accepted: ``text`` with a step tag after each step plus
    ``label_text``, the same text with ``+``/``-`` in place of each tag (the dataset's
    ``input``/``label`` fields); or ``text`` alone with each tag followed by its mark
    (``"... ки +"``). The prompt is the text before ``"Step 1:"`` when that marker
    exists; otherwise the first line.
    """
    where = f"Math-Shepherd record {dict(meta or {}).get('id', '')}".rstrip()
    segments = text.split(step_tag)
    if len(segments) < 2:
        raise DatasetFormatError(f"{where}: no step tag {step_tag!r} found in the text")
    labels: list[float] = []
    if label_text is not None:
        offset = 0
        for segment in segments[:-1]:
            if label_text[offset : offset + len(segment)] != segment:
                raise DatasetFormatError(
                    f"{where}: the label text differs from the input near offset {offset}; "
                    "it must equal the input with each step tag replaced by '+' or '-'"
                )
            offset += len(segment)
            labels.append(_mark_to_label(label_text[offset : offset + 1], where))
            offset += 1
        bodies = segments[:-1]
    else:
        bodies = [segments[0]]
        for segment in segments[1:]:
            stripped = segment.lstrip(" ")
            labels.append(_mark_to_label(stripped[:1], where))
            bodies.append(stripped[1:])
        bodies = bodies[:-1]
    start = bodies[0]
    marker = start.find("Step 1:")
    if marker >= 0:
        prompt, bodies[0] = start[:marker], start[marker:]
    else:
        prompt, _, bodies[0] = start.partition("\n")
    steps = [body.strip() for body in bodies]
    return LabeledSolution(
        prompt.strip(), steps, labels, {"source": "math-shepherd", **dict(meta or {})}
    )


def read_math_shepherd(
    path: str | os.PathLike, step_tag: str = MATH_SHEPHERD_TAG, limit: int | None = None
) -> list[LabeledSolution]:
    """Read Math-Shepherd JSONL: one ``{"input": ..., "label": ...}`` object a line."""
    solutions = []
    for number, record in _iter_jsonl(_check_path(path), limit):
        if "input" not in record:
            raise DatasetFormatError(f"{path}:{number}: missing field 'input'")
        solutions.append(
            parse_math_shepherd(
                record["input"],
                record.get("label"),
                step_tag=step_tag,
                meta={"file": Path(path).name, "line": number, "id": record.get("id", number)},
            )
        )
    return solutions


def parse_prm800k(
    record: Mapping[str, Any], neutral_as: float | str = 1.0, where: str = "PRM800K record"
) -> LabeledSolution:
    """Turn one PRM800K line into the labelled trajectory it annotates.

    At each step the chosen completion is followed; a step without one ends the
    trajectory with its first rated completion (usually the -1 step that stopped the
    labeller), or with the human-written completion, labelled 1.0, when there is one.

    Args:
        record: One parsed line: ``question.problem`` and ``label.steps``.
        neutral_as: Label of a 0 rating: 0.0, 1.0, or ``"skip"`` (the step stays as
            context with a NaN label, left out of the loss).
        where: Location used in error messages.
    """
    if neutral_as == "skip":
        neutral = math.nan
    elif neutral_as in (0.0, 1.0) and not isinstance(neutral_as, str):
        neutral = float(neutral_as)
    else:
        raise ValueError(f"neutral_as={neutral_as!r} is invalid; use 0.0, 1.0 or 'skip'")
    rating_to_label = {1: 1.0, -1: 0.0, 0: neutral}
    try:
        prompt = str(record["question"]["problem"])
        step_records = record["label"]["steps"]
    except (KeyError, TypeError) as error:
        raise DatasetFormatError(
            f"{where}: missing 'question.problem' or 'label.steps' ({error!r})"
        ) from error
    steps: list[str] = []
    labels: list[float] = []
    for number, step in enumerate(step_records):
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        if chosen is not None:
            if not 0 <= chosen < len(completions):
                raise DatasetFormatError(
                    f"{where}: step {number} chooses completion {chosen} of {len(completions)}"
                )
            picked = completions[chosen]
        elif step.get("human_completion"):
            human = step["human_completion"]
            steps.append(str(human["text"] if isinstance(human, Mapping) else human))
            labels.append(1.0)
            break
        elif completions:
            picked = completions[0]
        else:
            break
        rating = picked.get("rating")
        if rating not in rating_to_label:
            raise DatasetFormatError(
                f"{where}: step {number} has rating {rating!r}; expected -1, 0 or 1"
            )
        steps.append(str(picked["text"]))
        labels.append(rating_to_label[rating])
        if chosen is None:
            break
    meta = {
        "source": "prm800k",
        "finish_reason": record.get("label", {}).get("finish_reason"),
        "ground_truth_answer": record.get("question", {}).get("ground_truth_answer"),
    }
    return LabeledSolution(prompt, steps, labels, meta)


def read_prm800k(
    path: str | os.PathLike, neutral_as: float | str = 1.0, limit: int | None = None
) -> list[LabeledSolution]:
    """Read a PRM800K JSONL file; see :func:`parse_prm800k` for the labelling rules."""
    path = _check_path(path)
    solutions = []
    for number, record in _iter_jsonl(path, limit):
        solution = parse_prm800k(record, neutral_as=neutral_as, where=f"{path}:{number}")
        solution.meta.update(file=path.name, line=number)
        if solution.completions:
            solutions.append(solution)
    return solutions


def _iter_jsonl(path: Path, limit: int | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-empty line of a JSONL file."""
    count = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if limit is not None and count >= limit:
                return
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetFormatError(f"{path}:{number}: invalid JSON ({error})") from error
            if not isinstance(record, dict):
                raise DatasetFormatError(f"{path}:{number}: expected a JSON object")
            count += 1
            yield number, record


def write_jsonl(
    path: str | os.PathLike, solutions: Iterable[LabeledSolution], append: bool = False
) -> int:
    """Write solutions as JSONL ``{prompt, completions, labels, meta}``; return the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for solution in solutions:
            handle.write(json.dumps(solution.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike, limit: int | None = None) -> list[LabeledSolution]:
    """Read JSONL written by :func:`write_jsonl` (``meta`` is optional)."""
    path = _check_path(path)
    solutions = []
    for number, record in _iter_jsonl(path, limit):
        try:
            solutions.append(
                LabeledSolution(
                    record["prompt"],
                    record["completions"],
                    record["labels"],
                    dict(record.get("meta") or {}),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetFormatError(
                f"{path}:{number}: expected {{prompt, completions, labels}} ({error})"
            ) from error
    return solutions


def load_labeled_data(
    spec: str | os.PathLike,
    limit: int | None = None,
    after_error: str = "exclude",
    neutral_as: float | str = 1.0,
) -> list[LabeledSolution]:
    """Load labelled solutions from a data spec.

    Args:
        spec: ``"corrupted:TASK:N"`` or ``"corrupted:TASK:N:SEED"`` (N generated solutions,
            half of them corrupted, see :mod:`reasoning_gym.prm.corrupt`); a ``.json``
            ProcessBench file; or a ``.jsonl`` file in our format, Math-Shepherd format
            (``input`` field) or PRM800K format (``question`` and ``label`` fields), told
            apart by the fields of the first line.
        limit: Read at most this many solutions from a file.
        after_error: ProcessBench and corrupted data: ``"exclude"`` or ``"zero"`` for the
            steps after the first error.
        neutral_as: PRM800K: the label of a neutral rating.
    """
    text = str(spec)
    if text.startswith("corrupted:"):
        from reasoning_gym.prm.corrupt import corrupted_solutions

        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(part.isdigit() for part in parts[2:]):
            raise ValueError(
                f"data spec {text!r} is invalid; use 'corrupted:TASK:N' or "
                "'corrupted:TASK:N:SEED', for example 'corrupted:arithmetic:200'"
            )
        seed = int(parts[3]) if len(parts) == 4 else 0
        return corrupted_solutions(parts[1], int(parts[2]), seed=seed, after_error=after_error)
    path = _check_path(text)
    if path.suffix == ".json":
        return read_processbench(path, after_error=after_error, limit=limit)
    first = next(_iter_jsonl(path, limit=1), (0, {}))[1]
    if "input" in first:
        return read_math_shepherd(path, limit=limit)
    if "question" in first and "label" in first:
        return read_prm800k(path, neutral_as=neutral_as, limit=limit)
    return read_jsonl(path, limit=limit)
