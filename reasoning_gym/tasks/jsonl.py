"""Question/answer problems from any JSON Lines file, and the shared JSONL reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasoning_gym.errors import DatasetFormatError, GoldAnswerError
from reasoning_gym.tasks.base import Problem, Task
from reasoning_gym.verify.answers import parse_gold

__all__ = [
    "JsonlTask",
    "check_gold",
    "check_problem_index",
    "final_answer_text",
    "read_jsonl",
    "require_text_field",
]


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSON Lines file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DatasetFormatError: A line is not valid JSON or not a JSON object; the message
            names the file and the 1-based line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetFormatError(
                    f"{path}:{line_number}: invalid JSON ({error.msg} at column "
                    f"{error.colno}); each line must be one JSON object"
                ) from error
            if not isinstance(record, dict):
                raise DatasetFormatError(
                    f"{path}:{line_number}: expected a JSON object, got "
                    f"{type(record).__name__}; each line must be one JSON object"
                )
            yield line_number, record


def require_text_field(record: dict[str, Any], key: str, where: str) -> str:
    """Return ``record[key]`` as text (numbers are converted), or raise DatasetFormatError."""
    if key not in record:
        raise DatasetFormatError(
            f"{where}: missing field {key!r} (fields present: {sorted(record)}); "
            "name the fields with JsonlTask(question_key=..., answer_key=...), on the command "
            "line --question-key and --answer-key"
        )
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DatasetFormatError(
            f"{where}: field {key!r} must be a string or number, got {type(value).__name__}"
        )
    return str(value)


def final_answer_text(answer: str) -> str:
    """Return the text after the last ``####`` (GSM8K style), else ``answer`` stripped."""
    if "####" in answer:
        return answer.rsplit("####", 1)[1].strip()
    return answer.strip()


def check_gold(answer: str, where: str) -> None:
    """Raise DatasetFormatError naming ``where`` when the verifier cannot parse ``answer``."""
    try:
        parse_gold(answer)
    except GoldAnswerError as error:
        raise DatasetFormatError(f"{where}: {error}") from error


class JsonlTask(Task):
    """Problems from a JSON Lines file of ``{question, answer}`` records.

    The answer field is the gold final answer. When it contains ``####`` (GSM8K style),
    only the text after the last ``####`` is the gold answer. Every gold answer is parsed
    at load time. The task has no step checker.

    Args:
        path: The JSONL file.
        question_key: Field that contains the question.
        answer_key: Field that contains the gold answer.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DatasetFormatError: A malformed line, a missing field or a gold answer that the
            verifier cannot parse; the message names the file and line.
        ValueError: The file contains no records.
    """

    name = "jsonl"

    def __init__(
        self, path: str | Path, question_key: str = "question", answer_key: str = "answer"
    ):
        if not isinstance(path, (str, Path)):
            raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
        self.path = Path(path)
        self.question_key = question_key
        self.answer_key = answer_key
        self._records: list[tuple[int, str, str]] = []
        for line_number, record in read_jsonl(self.path):
            where = f"{self.path}:{line_number}"
            question = require_text_field(record, question_key, where)
            answer = final_answer_text(require_text_field(record, answer_key, where))
            check_gold(answer, where)
            self._records.append((line_number, question, answer))
        if not self._records:
            raise ValueError(f"{self.path} contains no records; give a file with one JSON per line")

    @property
    def num_problems(self) -> int:
        """Number of records in the file."""
        return len(self._records)

    def problem(self, index: int, seed: int = 0) -> Problem:
        """Return record ``index`` (0-based, in file order); ``seed`` is ignored."""
        check_problem_index(index, len(self._records), self.path)
        line_number, question, answer = self._records[index]
        return Problem(
            id=f"jsonl/{self.path.stem}/index={index}",
            question=question,
            answer=answer,
            gold_steps=None,
            metadata={
                "task": self.name,
                "source": str(self.path),
                "line": line_number,
                "index": index,
            },
        )


def check_problem_index(index: int, size: int, source: Any) -> None:
    """Raise TypeError or ValueError unless ``0 <= index < size``."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int, got {type(index).__name__}: {index!r}")
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside [0, {size - 1}] for {source}")
