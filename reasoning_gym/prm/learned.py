"""A learned PRM: a transformer that scores the step-tag token that ends each step.

The input of a solution is ``[bos] question "\\n" step_1 TAG step_2 TAG ...``, where TAG is
one token. The model's single output logit at each TAG position, passed through a
sigmoid, is the step's score. :func:`build_prm_inputs` produces these ids both at training and at
scoring time, so the two always agree.

The PRM's step tag is independent of the policy's step separator (the environment's
``step_separator``): steps arrive here as text and are re-encoded.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasoning_gym.prm.base import ProcessRewardModel, StepQuery

logger = logging.getLogger(__name__)

#: Default step tag, added to the tokenizer as a special token by :meth:`LearnedPRM.from_base`.
DEFAULT_STEP_TAG = "<|step|>"
#: File name of the PRM settings inside a saved folder.
PRM_CONFIG_NAME = "prm_config.json"
_FORMAT_VERSION = 1


def _hf_tokenizer(tokenizer: Any) -> Any:
    """Return the Hugging Face tokenizer inside our HFTokenizer adapter, or the object itself."""
    return getattr(tokenizer, "hf", tokenizer)


def step_tag_id(tokenizer: Any, step_tag: str) -> int:
    """Return the token id of ``step_tag``; raise ValueError unless it encodes to one token."""
    if not isinstance(step_tag, str) or not step_tag:
        raise ValueError(f"step tag {step_tag!r} is invalid; use a non-empty string")
    ids = _hf_tokenizer(tokenizer).encode(step_tag, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"step tag {step_tag!r} encodes to {len(ids)} tokens {list(ids)}, but the PRM scores "
            "exactly one token per step. Add the tag as a special token first: "
            f"tokenizer.add_special_tokens({{'additional_special_tokens': [{step_tag!r}]}}) and "
            "model.resize_token_embeddings(len(tokenizer)); LearnedPRM.from_base(..., "
            "add_step_tag=True) does both."
        )
    return int(ids[0])


def build_prm_inputs(
    tokenizer: Any, question: str, steps: Sequence[str], step_tag: str
) -> tuple[list[int], list[int]]:
    """Build the PRM input ids of a solution and the position of each step's tag.

    Args:
        tokenizer: A Hugging Face tokenizer or an :class:`HFTokenizer`.
        question: The problem statement.
        steps: The steps; each is stripped of surrounding whitespace.
        step_tag: The single-token tag placed after every step.

    Returns:
        ``(input_ids, tag_positions)`` with ``len(tag_positions) == len(steps)``.

    NOTE: nothing is truncated. Training skips solutions longer than its ``max_length``,
    but scoring feeds any length to the model, even past its position limit.
    """
    hf = _hf_tokenizer(tokenizer)
    tag = step_tag_id(hf, step_tag)
    ids: list[int] = []
    if hf.bos_token_id is not None:
        ids.append(int(hf.bos_token_id))
    ids += hf.encode(question.strip() + "\n", add_special_tokens=False)
    positions: list[int] = []
    for step in steps:
        ids += hf.encode(step.strip(), add_special_tokens=False)
        ids.append(tag)
        positions.append(len(ids) - 1)
    return ids, positions


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad id lists into ``(input_ids, attention_mask)`` long tensors of shape (B, T)."""
    import torch

    length = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), length), int(pad_id), dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)  # (B, T)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.as_tensor(list(sequence), dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return input_ids, attention_mask


def tag_logits(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """Run the token-classification model; return its one logit per token, shape (B, T)."""
    output = model(input_ids=input_ids, attention_mask=attention_mask)
    return output.logits[..., 0]  # (B, T)


class LearnedPRM(ProcessRewardModel):
    """Scores steps with a token-classification transformer (one label) at each step tag.

    Args:
        model: A Hugging Face ``*ForTokenClassification`` model with ``num_labels == 1``.
        tokenizer: Its tokenizer; ``step_tag`` must encode to one token with it.
        step_tag: The tag token placed after each step.
        batch_size: Sequences per forward pass when scoring.
        device: Torch device for scoring; None keeps the model where it is.
        cache_size: Entries of the score cache.
    """

    name = "learned"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        step_tag: str = DEFAULT_STEP_TAG,
        batch_size: int = 16,
        device: str | None = None,
        cache_size: int = 65536,
    ):
        super().__init__(cache_size=cache_size)
        num_labels = getattr(getattr(model, "config", None), "num_labels", None)
        if num_labels != 1:
            raise ValueError(
                f"the PRM model must be a token-classification model with num_labels=1, got "
                f"num_labels={num_labels}; build one with LearnedPRM.from_base(...)"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.tokenizer = _hf_tokenizer(tokenizer)
        self.step_tag = step_tag
        self.step_tag_id = step_tag_id(self.tokenizer, step_tag)
        self.model = model if device is None else model.to(device)
        self.model.eval()
        self.batch_size = batch_size
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    # Building and saving

    @classmethod
    def from_base(
        cls,
        base: Any,
        tokenizer: Any = None,
        step_tag: str = DEFAULT_STEP_TAG,
        add_step_tag: bool = True,
        seed: int = 0,
        **kwargs: Any,
    ) -> LearnedPRM:
        """Build an untrained PRM on a pretrained backbone with a new one-logit head.

        Args:
            base: A model name or folder (loaded with ``AutoModelForTokenClassification``),
                or a loaded Hugging Face model whose backbone weights are copied.
            tokenizer: The tokenizer; loaded from ``base`` when it is a name.
            step_tag: The step tag.
            add_step_tag: When the tag is not one token, add it as a special token to a copy
                of the tokenizer and resize the embeddings; when False a multi-token tag
                raises ValueError.
            seed: Seed of the head's initialisation (the global torch RNG is restored).
            **kwargs: Passed to the constructor.
        """
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if isinstance(base, (str, os.PathLike)):
                path = _resolve_model_path(str(base))
                if tokenizer is None:
                    tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForTokenClassification.from_pretrained(path, num_labels=1)
            else:
                if tokenizer is None:
                    raise ValueError("pass tokenizer= together with a loaded base model")
                config = copy.deepcopy(base.config)
                config.num_labels = 1
                model = AutoModelForTokenClassification.from_config(config)
                source = getattr(base, base.base_model_prefix, base)
                target = getattr(model, model.base_model_prefix)
                missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
                if missing or unexpected:
                    raise ValueError(
                        f"could not copy the backbone of {type(base).__name__}: missing "
                        f"{missing[:5]}, unexpected {unexpected[:5]}"
                    )
        tokenizer = _hf_tokenizer(tokenizer)
        if len(tokenizer.encode(step_tag, add_special_tokens=False)) != 1 and add_step_tag:
            tokenizer = copy.deepcopy(tokenizer)  # cached test tokenizers are shared
            tokenizer.add_special_tokens({"additional_special_tokens": [step_tag]})
            model.resize_token_embeddings(len(tokenizer))
        if tokenizer.pad_token_id is None:
            tokenizer = copy.deepcopy(tokenizer)
            tokenizer.pad_token = tokenizer.eos_token
        return cls(model, tokenizer, step_tag=step_tag, **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Save model, tokenizer and ``prm_config.json`` (the step tag) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        config = {"format_version": _FORMAT_VERSION, "step_tag": self.step_tag, "kind": "token"}
        (directory / PRM_CONFIG_NAME).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **kwargs: Any) -> LearnedPRM:
        """Load a PRM saved by :meth:`save_pretrained`."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        directory = Path(directory)
        config_path = directory / PRM_CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(
                f"{config_path} not found: {str(directory)!r} is not a folder saved by "
                "LearnedPRM.save_pretrained (train one with `reasoning-gym prm train`)"
            )
        config = json.loads(config_path.read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForTokenClassification.from_pretrained(directory)
        return cls(model, tokenizer, step_tag=config["step_tag"], **kwargs)

    # Scoring

    def inputs(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Input ids and tag positions of a solution (see :func:`build_prm_inputs`)."""
        return build_prm_inputs(self.tokenizer, question, steps, self.step_tag)

    def score_sequences(self, sequences: Sequence[tuple[list[int], list[int]]]) -> list[np.ndarray]:
        """Return sigmoid scores at the tag positions of each ``(ids, positions)`` pair."""
        import torch

        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]))
        results: list[np.ndarray] = [np.zeros(0)] * len(sequences)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                input_ids, attention_mask = pad_batch([sequences[i][0] for i in chunk], self.pad_id)
                logits = tag_logits(
                    self.model, input_ids.to(self.device), attention_mask.to(self.device)
                )  # (B, T)
                probabilities = torch.sigmoid(logits.float()).cpu().numpy()
                for row, i in enumerate(chunk):
                    results[i] = probabilities[row, sequences[i][1]].astype(np.float64)
        return results

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        # A causal model's score at a tag depends only on the tokens before it, so one
        # sequence serves every query whose steps are a prefix of it: a whole solution
        # scored by score_solution costs one forward pass.
        plans: list[tuple[str, tuple[str, ...]]] = []
        where: dict[tuple[str, str, tuple[str, ...]], tuple[int, int]] = {}
        order = sorted(range(len(queries)), key=lambda i: -len(queries[i].previous_steps))
        for i in order:
            query = queries[i]
            steps = (*query.previous_steps, query.step)
            key = (query.problem.id, query.problem.question, steps)
            if key in where:
                continue
            plans.append((query.problem.question, steps))
            for length in range(1, len(steps) + 1):
                prefix_key = (query.problem.id, query.problem.question, steps[:length])
                where.setdefault(prefix_key, (len(plans) - 1, length - 1))
        sequence_scores = self.score_sequences(
            [self.inputs(question, steps) for question, steps in plans]
        )
        scores = np.empty(len(queries), dtype=np.float64)
        for i, query in enumerate(queries):
            steps = (*query.previous_steps, query.step)
            plan, index = where[(query.problem.id, query.problem.question, steps)]
            scores[i] = sequence_scores[plan][index]
        return scores


def _resolve_model_path(name: str) -> str:
    """Map a short model name to a local path via reasoning_gym.models when available."""
    try:
        from reasoning_gym.models import resolve_model_path
    except ImportError:
        return name
    return str(resolve_model_path(name))
