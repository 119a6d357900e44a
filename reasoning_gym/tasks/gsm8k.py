"""GSM8K grade-school math word problems with an arithmetic step checker."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from reasoning_gym.errors import DatasetFormatError
from reasoning_gym.tasks.base import Problem, Task
from reasoning_gym.tasks.jsonl import (
    check_gold,
    check_problem_index,
    final_answer_text,
    read_jsonl,
    require_text_field,
)
from reasoning_gym.verify.safe_arith import find_equations

__all__ = ["GSM8KTask", "gold_steps_from_solution"]

_SPLITS = ("train", "test")
_HUB_ID = "openai/gsm8k"
_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
# Source checkouts may keep data sets in a folder shared/data beside the repository.
_CHECKOUT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def gold_steps_from_solution(solution: str, answer: str) -> tuple[str, ...]:
    """Turn a GSM8K worked solution into gold steps.

    Each non-blank line before ``####`` is one step, with the calculator annotations
    ``<<expr=value>>`` removed. The final step is "The answer is \\\\boxed{answer}.".
    """
    body = solution.rsplit("####", 1)[0]
    steps = []
    for line in body.splitlines():
        cleaned = re.sub(r"[ \t]{2,}", " ", _ANNOTATION_RE.sub("", line)).strip()
        if cleaned:
            steps.append(cleaned)
    steps.append(f"The answer is \\boxed{{{answer}}}.")
    return tuple(steps)


class GSM8KTask(Task):
    """GSM8K problems from a local JSONL file or the Hugging Face Hub.

    Records are ``{"question": ..., "answer": ...}``. The answer is a worked solution
    with calculator annotations ``<<a*b=c>>`` and a last line ``#### N``. Gold answers
    are parsed when the file is loaded, so a record that the verifier cannot parse
    raises there, not during an episode.

    Args:
        path: A GSM8K JSONL file. When None, ``gsm8k_<split>.jsonl`` is looked up in the
            folder named by the environment variable ``REASONING_GYM_DATA``, then in
            ``../shared/data`` next to a source checkout, and finally the ``main`` config
            of ``openai/gsm8k`` is loaded with the ``datasets`` package.
        split: ``"test"`` or ``"train"``.
        limit: Keep only the first ``limit`` problems (None keeps all).

    Raises:
        FileNotFoundError: No data was found and the Hub could not be reached.
        DatasetFormatError: A malformed line, a missing field, a solution without
            ``####`` or a gold answer that does not parse; the message names file:line.
        ValueError: ``split`` or ``limit`` is invalid.
    """

    name = "gsm8k"

    def __init__(
        self, path: str | Path | None = None, split: str = "test", limit: int | None = None
    ):
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError(f"limit must be an int or None, got {type(limit).__name__}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {limit}")
        self.split = split
        self.limit = limit
        self._problems: list[Problem] = []

        if path is not None:
            self.path: Path | None = Path(path)
            self.source = str(self.path)
            records = self._file_records(self.path)
        else:
            self.path = _find_local_file(split)
            if self.path is not None:
                self.source = str(self.path)
                records = self._file_records(self.path)
            else:
                self.source = f"hub:{_HUB_ID}/{split}"
                records = _hub_records(split)
        label = split if path is None else self.path.stem
        for where, record in records:
            if limit is not None and len(self._problems) >= limit:
                break
            self._problems.append(self._make_problem(record, where, label))
        if not self._problems:
            raise ValueError(f"{self.source} contains no problems; check the file")

    @staticmethod
    def _file_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
        for line_number, record in read_jsonl(path):
            yield f"{path}:{line_number}", record

    def _make_problem(self, record: dict[str, Any], where: str, label: str) -> Problem:
        question = require_text_field(record, "question", where)
        solution = require_text_field(record, "answer", where)
        if "####" not in solution:
            raise DatasetFormatError(
                f"{where}: the answer field has no '#### N' final line; "
                "GSM8K solutions end with '#### <number>'"
            )
        answer = final_answer_text(solution).replace(",", "")
        check_gold(answer, where)
        index = len(self._problems)
        return Problem(
            id=f"gsm8k/{label}/index={index}",
            question=question,
            answer=answer,
            gold_steps=gold_steps_from_solution(solution, answer),
            metadata={
                "task": self.name,
                "source": self.source,
                "split": self.split,
                "index": index,
                "record": where,
            },
        )

    @property
    def num_problems(self) -> int:
        """Number of loaded problems."""
        return len(self._problems)

    def problem(self, index: int, seed: int = 0) -> Problem:
        """Return problem ``index`` (0-based, in file order); ``seed`` is ignored."""
        check_problem_index(index, len(self._problems), self.source)
        return self._problems[index]

    def few_shot_problems(self, count: int) -> list[Problem]:
        """Return the first ``count`` problems of the training split as worked examples."""
        if (
            self.split == "train"
            and self.path is None
            and (self.limit is None or self.limit >= count)
        ):
            return self._problems[:count]
        return GSM8KTask(split="train", limit=count)._problems

    def check_step(self, problem: Problem, previous_steps: Sequence[str], step: str) -> float:
        """Score 0.0 if an equation in ``step`` is arithmetically false, else 1.0.

        Equations are found with ``find_equations`` (including ``<<a*b=c>>``
        annotations). A step without equations scores 1.0. The checker catches
        calculation errors only: a true equation in a wrong plan, or a wrong number
        copied from the question, still scores 1.0.
        """
        return 0.0 if any(not eq.is_correct for eq in find_equations(step)) else 1.0


def _find_local_file(split: str) -> Path | None:
    candidates = []
    if os.environ.get("REASONING_GYM_DATA"):
        candidates.append(Path(os.environ["REASONING_GYM_DATA"]) / f"gsm8k_{split}.jsonl")
    candidates.append(_CHECKOUT_DATA_DIR / f"gsm8k_{split}.jsonl")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def _hub_records(split: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import datasets

        dataset = datasets.load_dataset(_HUB_ID, "main", split=split)
    except Exception as error:  # datasets raises many types for missing package/network
        raise FileNotFoundError(
            f"GSM8K {split} data not found: no gsm8k_{split}.jsonl in $REASONING_GYM_DATA or "
            f"{_CHECKOUT_DATA_DIR}, and loading {_HUB_ID} from the Hugging Face Hub failed "
            f"({type(error).__name__}: {error}). Pass path=... to a GSM8K JSONL file."
        ) from error
    for row_number, record in enumerate(dataset):
        yield f"hub:{_HUB_ID}/{split}[{row_number}]", dict(record)
