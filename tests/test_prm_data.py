"""Readers and writers of step-labelled PRM data."""

from __future__ import annotations

import json
import math

import pytest

from reasoning_gym.errors import DatasetFormatError
from reasoning_gym.prm.data import (
    LabeledSolution,
    labels_from_first_wrong,
    parse_math_shepherd,
    parse_prm800k,
    read_jsonl,
    read_math_shepherd,
    read_prm800k,
    read_processbench,
    write_jsonl,
)


def test_labels_from_first_wrong():
    assert labels_from_first_wrong(4, -1) == [1.0, 1.0, 1.0, 1.0]
    assert labels_from_first_wrong(4, 1) == [1.0, 0.0]
    assert labels_from_first_wrong(4, 1, after_error="zero") == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="outside"):
        labels_from_first_wrong(3, 3)
    with pytest.raises(ValueError, match="after_error"):
        labels_from_first_wrong(3, 1, after_error="drop")


def test_processbench_gsm8k_real_file(shared_data):
    path = shared_data / "processbench_gsm8k.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    solutions = read_processbench(path)
    assert len(solutions) == 400
    erroneous = [solution for solution in solutions if solution.first_wrong != -1]
    assert len(erroneous) == 207
    first = solutions[0]
    assert first.meta["id"] == "gsm8k-0"
    assert first.meta["first_wrong"] == 1
    assert first.labels == [1.0, 0.0]  # steps after the first error are dropped
    assert first.meta["num_steps"] == 4
    full = read_processbench(path, after_error="zero", limit=1)[0]
    assert full.labels == [1.0, 0.0, 0.0, 0.0]
    assert full.first_wrong == 1


def test_processbench_rejects_bad_label(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"problem": "p", "steps": ["a"], "label": 3}]))
    with pytest.raises(DatasetFormatError, match="label 3 but 1 steps"):
        read_processbench(path)


def test_math_shepherd_input_and_label_fields():
    text = "What is 2 + 3 * 4? Step 1: 3 * 4 = 12 ки\nStep 2: 2 + 12 = 15 ки\nStep 3: 15 ки"
    label = "What is 2 + 3 * 4? Step 1: 3 * 4 = 12 +\nStep 2: 2 + 12 = 15 -\nStep 3: 15 -"
    solution = parse_math_shepherd(text, label)
    assert solution.prompt == "What is 2 + 3 * 4?"
    assert solution.completions == ["Step 1: 3 * 4 = 12", "Step 2: 2 + 12 = 15", "Step 3: 15"]
    assert solution.labels == [1.0, 0.0, 0.0]
    assert solution.first_wrong == 1


def test_math_shepherd_inline_marks():
    text = "Question here\nStep 1: a ки +\nStep 2: b ки -"
    solution = parse_math_shepherd(text)
    assert solution.prompt == "Question here"
    assert solution.completions == ["Step 1: a", "Step 2: b"]
    assert solution.labels == [1.0, 0.0]
    with pytest.raises(DatasetFormatError, match="expected '\\+' or '-'"):
        parse_math_shepherd("Q Step 1: a ки ?")
    with pytest.raises(DatasetFormatError, match="differs from the input"):
        parse_math_shepherd("Q Step 1: a ки", "Q Step 1: b +")


def test_read_math_shepherd_file(tmp_path):
    path = tmp_path / "shepherd.jsonl"
    record = {"input": "Q Step 1: x ки\nStep 2: y ки", "label": "Q Step 1: x +\nStep 2: y +"}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n\n")
    solutions = read_math_shepherd(path)
    assert len(solutions) == 1
    assert solutions[0].labels == [1.0, 1.0]


PRM800K_RECORD = {
    "question": {"problem": "What is 1 + 1?", "ground_truth_answer": "2"},
    "label": {
        "steps": [
            {
                "completions": [{"text": "1 + 1 = 2", "rating": 1}],
                "chosen_completion": 0,
            },
            {
                "completions": [
                    {"text": "Let me double check.", "rating": 0},
                    {"text": "So 3.", "rating": -1},
                ],
                "chosen_completion": 0,
            },
            {
                "completions": [{"text": "So the answer is 3.", "rating": -1}],
                "chosen_completion": None,
            },
        ],
        "finish_reason": "found_error",
    },
}


@pytest.mark.parametrize(("neutral_as", "middle"), [(1.0, 1.0), (0.0, 0.0), ("skip", math.nan)])
def test_prm800k_neutral_choice(neutral_as, middle):
    solution = parse_prm800k(PRM800K_RECORD, neutral_as=neutral_as)
    assert solution.prompt == "What is 1 + 1?"
    assert solution.completions == ["1 + 1 = 2", "Let me double check.", "So the answer is 3."]
    assert solution.labels[0] == 1.0
    assert solution.labels[2] == 0.0
    if math.isnan(middle):
        assert math.isnan(solution.labels[1])
    else:
        assert solution.labels[1] == middle
    assert solution.first_wrong == (1 if middle == 0.0 else 2)
    assert solution.meta["finish_reason"] == "found_error"


def test_prm800k_invalid_neutral_and_rating(tmp_path):
    with pytest.raises(ValueError, match="neutral_as"):
        parse_prm800k(PRM800K_RECORD, neutral_as=0.5)
    broken = json.loads(json.dumps(PRM800K_RECORD))
    broken["label"]["steps"][0]["completions"][0]["rating"] = 2
    path = tmp_path / "prm800k.jsonl"
    path.write_text(json.dumps(PRM800K_RECORD) + "\n" + json.dumps(broken) + "\n")
    with pytest.raises(DatasetFormatError, match="prm800k.jsonl:2: step 0 has rating 2"):
        read_prm800k(path)
    assert len(read_prm800k(path, limit=1)) == 1


def test_jsonl_round_trip_keeps_nan(tmp_path):
    solutions = [
        LabeledSolution("p1", ["a", "b"], [1.0, 0.0], {"id": 1}),
        LabeledSolution("p2", ["c"], [math.nan], {}),
        LabeledSolution("p3", ["d", "e"], [0.75, 0.25]),
    ]
    path = tmp_path / "data.jsonl"
    assert write_jsonl(path, solutions) == 3
    assert "null" in path.read_text()
    loaded = read_jsonl(path)
    assert [solution.prompt for solution in loaded] == ["p1", "p2", "p3"]
    assert loaded[0].labels == [1.0, 0.0]
    assert loaded[0].meta == {"id": 1}
    assert math.isnan(loaded[1].labels[0])
    assert loaded[2].labels == [0.75, 0.25]
    write_jsonl(path, solutions[:1], append=True)
    assert len(read_jsonl(path)) == 4


def test_jsonl_errors_name_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "completions": ["a"], "labels": [1.0]}\nnot json\n')
    with pytest.raises(DatasetFormatError, match="bad.jsonl:2"):
        read_jsonl(path)
    path.write_text('{"prompt": "p", "completions": ["a", "b"], "labels": [1.0]}\n')
    with pytest.raises(DatasetFormatError, match="bad.jsonl:1"):
        read_jsonl(path)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_labeled_solution_validates_labels():
    with pytest.raises(ValueError, match="outside"):
        LabeledSolution("p", ["a"], [1.5])
    with pytest.raises(ValueError, match="one label per step"):
        LabeledSolution("p", ["a", "b"], [1.0])
