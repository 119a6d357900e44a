"""Shared fixtures: real data location, tiny tokenizers and models built locally."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Folder of the real data sets (GSM8K, MATH-500, ProcessBench)."""
    return Path(os.environ.get("REASONING_GYM_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    path = data_dir()
    if not (path / "gsm8k_test.jsonl").exists():
        pytest.skip(f"real data not found in {path}; set REASONING_GYM_DATA")
    return path


@pytest.fixture(scope="session")
def hf_tokenizer():
    from reasoning_gym.testing import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def hf_tokenizer_plain():
    """A Hugging Face tokenizer without a chat template."""
    from reasoning_gym.testing import tiny_tokenizer

    return tiny_tokenizer(chat_template=False)


def pytest_configure(config):
    # Tiny models run fastest on one thread; two threads on two shared cores made a
    # small linear layer about 30x slower on the CI machine.
    import torch

    torch.set_num_threads(1)
