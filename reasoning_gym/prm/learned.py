"""A learned PRM: a transformer that scores the step-tag token that ends each step.

The input of a solution is ``[bos] question "\\n" step_1 TAG step_2 TAG ...``, where TAG is
one token. The model's single output logit at each TAG position, passed through a
sigmoid, is the step's score. :func:`build_prm_inputs` produces these ids both at training and at
scoring time, so the two always agree.

The PRM's step tag is independent of the policy's step separator (the environment's
``step_separator``): steps arrive here as text and are re-encoded.

Scoring keeps a prefix cache: for each scored solution prefix it stores the input ids,
the step scores and, for decoder models, the keys and values of every layer. Scoring
one more step after a cached prefix then tokenizes only that step and runs the model
only on its tokens, attending to the cached keys and values. A trajectory scored step
by step so costs model work linear in its length instead of quadratic. The scores
equal those of a full forward pass up to float rounding.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    ids = question_ids(hf, question)
    positions: list[int] = []
    for step in steps:
        ids += hf.encode(step.strip(), add_special_tokens=False)
        ids.append(tag)
        positions.append(len(ids) - 1)
    return ids, positions


def question_ids(tokenizer: Any, question: str) -> list[int]:
    """Return the PRM input ids that precede the first step: ``[bos] question "\\n"``."""
    hf = _hf_tokenizer(tokenizer)
    ids: list[int] = []
    if hf.bos_token_id is not None:
        ids.append(int(hf.bos_token_id))
    ids += hf.encode(question.strip() + "\n", add_special_tokens=False)
    return ids


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad id lists into ``(input_ids, attention_mask)`` long tensors of shape (B, T)."""
    import torch

    lengths = np.fromiter((len(sequence) for sequence in sequences), dtype=np.int64)
    width = int(lengths.max())
    attention_mask = np.arange(width)[None, :] < lengths[:, None]  # (B, T)
    input_ids = np.full((len(sequences), width), int(pad_id), dtype=np.int64)  # (B, T)
    if lengths.sum():
        input_ids[attention_mask] = np.concatenate(
            [np.asarray(sequence, dtype=np.int64) for sequence in sequences]
        )
    return torch.from_numpy(input_ids), torch.from_numpy(attention_mask.astype(np.int64))


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
        prefix_cache_size: Maximum number of entries in the prefix cache. An entry is a
            scored solution prefix with its input ids, step scores and (see
            ``kv_cache_mb``) keys and values, so scoring one more step after it encodes
            that step only and runs the model on that step only. 0 turns the prefix
            cache off.
        kv_cache_mb: Memory budget in MiB, on the model's device, for the keys and values
            in the prefix cache. Past it, the least recently used prefixes are dropped.
            A prefix of ``T`` tokens takes ``2 * layers * kv_heads * head_dim * T``
            values of the model's dtype. A prefix shares memory with the prefix it
            extends, so the memory in use stays below the budget. Keys and values are
            reused only while the budget fits one prefix per trajectory scored in
            parallel (per environment of a vector env). 0 keeps ids and scores only.
            Keys and values are kept only for models whose forward takes a transformers
            ``DynamicCache`` and whose layers all use full attention (such as Llama).
            For other models this setting has no effect.

    Attributes:
        prefix_hits: Solutions scored after a cached prefix of at least one step.
        kv_hits: Solutions scored with the cached keys and values of their question or
            of their earlier steps.
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
        prefix_cache_size: int = 4096,
        kv_cache_mb: float = 256.0,
    ):
        super().__init__(cache_size=cache_size)
        if isinstance(prefix_cache_size, bool) or not isinstance(prefix_cache_size, int):
            raise TypeError(f"prefix_cache_size={prefix_cache_size!r} must be an int")
        if prefix_cache_size < 0:
            raise ValueError(f"prefix_cache_size={prefix_cache_size} must be 0 (off) or more")
        if isinstance(kv_cache_mb, bool) or not isinstance(kv_cache_mb, (int, float)):
            raise TypeError(f"kv_cache_mb={kv_cache_mb!r} must be a number of MiB")
        if not kv_cache_mb >= 0:
            raise ValueError(f"kv_cache_mb={kv_cache_mb} must be 0 (off) or more")
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
        self.prefix_cache_size = prefix_cache_size
        self.kv_cache_bytes = int(kv_cache_mb * 2**20)
        self.prefix_hits = 0
        self.kv_hits = 0
        self._prefixes: OrderedDict[tuple[str, str, tuple[str, ...]], _Prefix] = OrderedDict()
        self._prefix_bytes = 0
        self._weights_version = _weights_version(self.model)
        self._cache_argument = _kv_cache_argument(self.model)
        self._num_layers = len(_layer_types(self.model)) if self._cache_argument else 0
        self._backend_encode = _backend_encoder(self.tokenizer)

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

    def clear_cache(self) -> None:
        """Drop the cached scores and the prefix cache (ids, scores, keys and values)."""
        super().clear_cache()
        self._prefixes.clear()
        self._prefix_bytes = 0

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        # A causal model's score at a tag depends only on the tokens before it, so one
        # sequence serves every query whose steps are a prefix of it: a whole solution
        # scored by score_solution costs one forward pass.
        plans: list[tuple[str, str, tuple[str, ...]]] = []
        where: dict[tuple[str, str, tuple[str, ...]], tuple[int, int]] = {}
        order = sorted(range(len(queries)), key=lambda i: -len(queries[i].previous_steps))
        for i in order:
            query = queries[i]
            steps = (*query.previous_steps, query.step)
            key = (query.problem.id, query.problem.question, steps)
            if key in where:
                continue
            plans.append(key)
            for length in range(1, len(steps) + 1):
                prefix_key = (query.problem.id, query.problem.question, steps[:length])
                where.setdefault(prefix_key, (len(plans) - 1, length - 1))
        sequence_scores = self._score_plans(plans)
        scores = np.empty(len(queries), dtype=np.float64)
        for i, query in enumerate(queries):
            steps = (*query.previous_steps, query.step)
            plan, index = where[(query.problem.id, query.problem.question, steps)]
            scores[i] = sequence_scores[plan][index]
        return scores

    # Prefix cache

    def _score_plans(self, plans: Sequence[tuple[str, str, tuple[str, ...]]]) -> list[np.ndarray]:
        """Score every step of each ``(problem id, question, steps)``, reusing cached prefixes."""
        import torch

        version = _weights_version(self.model)
        if version != self._weights_version:
            # The weights changed in place (an optimizer step or load_state_dict), so
            # cached keys, values and scores are stale.
            self._prefixes.clear()
            self._prefix_bytes = 0
            self._weights_version = version

        rows = [self._plan_row(plan) for plan in plans]
        self._encode(rows)
        with_kv = [row for row in rows if row.prefix.kv_chunks]
        without_kv = [row for row in rows if not row.prefix.kv_chunks]
        with torch.inference_mode():
            for group, forward in ((with_kv, self._forward_after_kv), (without_kv, self._forward)):
                # Sorting by length keeps the padding inside each forward pass small.
                group.sort(key=lambda row: len(row.new_ids))
                for start in range(0, len(group), self.batch_size):
                    forward(group[start : start + self.batch_size])
        for plan, row in zip(plans, rows, strict=True):
            self._store_prefix(plan, row)
        return [np.asarray(row.scores, dtype=np.float64) for row in rows]

    def _plan_row(self, plan: tuple[str, str, tuple[str, ...]]) -> _Row:
        """Find the longest cached prefix of ``plan``, after which the steps are to be scored."""
        problem_id, question, steps = plan
        for length in range(len(steps) - 1, -1, -1):
            key = (problem_id, question, steps[:length])
            prefix = self._prefixes.get(key)
            if prefix is not None:
                self._prefixes.move_to_end(key)
                self.prefix_hits += length > 0
                self.kv_hits += bool(prefix.kv_chunks)
                return _Row(prefix=prefix, new_steps=steps[length:])
        # The question's ids are filled in by _encode.
        return _Row(prefix=_Prefix(ids=[], scores=()), new_steps=steps, question=question)

    def _encode(self, rows: Sequence[_Row]) -> None:
        """Tokenize the new steps (and new questions) of all rows in one tokenizer call."""
        questions = {row.question.strip() + "\n" for row in rows if row.question is not None}
        steps = {step.strip() for row in rows for step in row.new_steps}
        texts = list(questions | steps)
        ids_of = dict(zip(texts, self._encode_texts(texts), strict=True))
        bos = self.tokenizer.bos_token_id
        for row in rows:
            if row.question is not None:
                ids = [] if bos is None else [int(bos)]
                row.prefix = _Prefix(ids=ids + ids_of[row.question.strip() + "\n"], scores=())
            for step in row.new_steps:
                row.new_ids += ids_of[step.strip()]
                row.new_ids.append(self.step_tag_id)
                row.tag_offsets.append(len(row.new_ids) - 1)

    def _encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Encode ``texts`` without special tokens, as ``tokenizer.encode`` does one by one."""
        if not texts:
            return []
        if self._backend_encode is not None:
            encodings = self._backend_encode(texts, add_special_tokens=False)
            return [encoding.ids for encoding in encodings]
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def _forward(self, rows: Sequence[_Row]) -> None:
        """Run the model on the whole sequence of each row (prefix ids and new ids)."""
        sequences = [row.prefix.ids + row.new_ids for row in rows]
        input_ids, attention_mask = pad_batch(sequences, self.pad_id)  # (B, T)
        extra: dict[str, Any] = {}
        buffer = None
        if self._keeps_kv():
            buffer = _KVBuffer(num_layers=self._num_layers)
            extra = {self._cache_argument: _buffer_cache(self.model, buffer, 0), "use_cache": True}
        output = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            **extra,
        )
        self._read_scores(rows, output.logits[..., 0], [len(row.prefix.ids) for row in rows])
        if buffer is not None and buffer.tensor is not None:
            for index, (row, sequence) in enumerate(zip(rows, sequences, strict=True)):
                row.kv_chunk = buffer.tensor[:, index, :, : len(sequence)].clone()

    def _forward_after_kv(self, rows: Sequence[_Row]) -> None:
        """Run the model on the new ids only, attending to the cached keys and values.

        Row ``i`` of the batch is ``[prefix i][padding][new ids i][padding]``: the padding
        after the prefix is masked out and the position ids skip it, so each row
        computes the same values as its whole sequence alone, up to float rounding.
        """
        import torch

        prefix_lengths = np.array([len(row.prefix.ids) for row in rows], dtype=np.int64)
        new_lengths = np.array([len(row.new_ids) for row in rows], dtype=np.int64)
        past_width = int(prefix_lengths.max())
        new_width = int(new_lengths.max())
        # One buffer contains the past and the new positions of every layer, so the
        # cache layers write the new keys and values in place instead of concatenating.
        first = rows[0].prefix.kv_chunks[0]
        buffer = first.new_empty(
            (first.shape[0], len(rows), first.shape[1], past_width + new_width, first.shape[3])
        )  # (2 * layers, B, kv_heads, P + L, head_dim)
        for index, row in enumerate(rows):
            target = buffer[:, index]  # (2 * layers, kv_heads, P + L, head_dim)
            position = 0
            for chunk in row.prefix.kv_chunks:
                length = chunk.shape[2]
                target[:, :, position : position + length] = chunk
                position += length
            if position < past_width:
                # Masked out, but uninitialised memory may contain NaN, and a masked NaN
                # key still makes the attention output NaN.
                target[:, :, position:past_width] = 0
        cache = _buffer_cache(self.model, _KVBuffer(buffer.shape[0] // 2, buffer), past_width)

        input_ids, new_mask = pad_batch([row.new_ids for row in rows], self.pad_id)  # (B, L)
        past_mask = np.arange(past_width)[None, :] < prefix_lengths[:, None]  # (B, P)
        attention_mask = torch.cat(
            [torch.from_numpy(past_mask.astype(np.int64)), new_mask], dim=1
        )  # (B, P + L)
        position_ids = torch.from_numpy(
            prefix_lengths[:, None] + np.arange(new_width)[None, :]
        )  # (B, L)
        output = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            position_ids=position_ids.to(self.device),
            use_cache=True,
            **{self._cache_argument: cache},
        )
        self._read_scores(rows, output.logits[..., 0], [0] * len(rows))
        for index, row in enumerate(rows):
            stop = past_width + int(new_lengths[index])
            row.kv_chunk = buffer[:, index, :, past_width:stop].clone()

    def _read_scores(self, rows: Sequence[_Row], logits: Any, offsets: Sequence[int]) -> None:
        """Append the sigmoid of ``logits`` (B, T) at each row's new tags to its scores."""
        import torch

        probabilities = torch.sigmoid(logits.float()).cpu().numpy()  # (B, T)
        for index, (row, offset) in enumerate(zip(rows, offsets, strict=True)):
            positions = np.asarray(row.tag_offsets, dtype=np.int64) + offset
            row.scores = (*row.prefix.scores, *probabilities[index, positions].tolist())

    def _keeps_kv(self) -> bool:
        return (
            self._cache_argument is not None
            and self.kv_cache_bytes > 0
            and self.prefix_cache_size > 0
        )

    def _store_prefix(self, plan: tuple[str, str, tuple[str, ...]], row: _Row) -> None:
        """Keep ``plan``'s ids, scores and keys/values, then evict down to the budgets."""
        if self.prefix_cache_size == 0:
            return

        chunks: tuple[Any, ...] = ()
        nbytes = 0
        if row.kv_chunk is not None and self._keeps_kv():
            chunks = (*row.prefix.kv_chunks, row.kv_chunk)
            nbytes = _storage_bytes(chunks)

        old = self._prefixes.pop(plan, None)
        if old is not None:
            self._prefix_bytes -= old.nbytes
        self._prefixes[plan] = _Prefix(
            ids=row.prefix.ids + row.new_ids, scores=row.scores, kv_chunks=chunks, nbytes=nbytes
        )
        self._prefix_bytes += nbytes

        question_key = (plan[0], plan[1], ())
        if row.question is not None and question_key not in self._prefixes:
            # The row started from the question alone. Its keys and values are the first
            # positions of the row's chunk, kept as a view that shares its memory.
            question_chunks = (row.kv_chunk[:, :, : len(row.prefix.ids)],) if chunks else ()
            question_bytes = _storage_bytes(question_chunks)
            self._prefixes[question_key] = _Prefix(
                ids=row.prefix.ids, scores=(), kv_chunks=question_chunks, nbytes=question_bytes
            )
            self._prefix_bytes += question_bytes

        while self._prefixes and (
            len(self._prefixes) > self.prefix_cache_size or self._prefix_bytes > self.kv_cache_bytes
        ):
            _, evicted = self._prefixes.popitem(last=False)
            self._prefix_bytes -= evicted.nbytes


@dataclass
class _Prefix:
    """A scored solution prefix: its PRM input ids, its step scores and its keys/values.

    ``kv_chunks`` split the keys and values of all ``len(ids)`` positions along the
    sequence. Each chunk has shape (2 * layers, kv_heads, T_chunk, head_dim), with the
    keys and values of each layer interleaved. A prefix shares the chunks of the prefix
    it extends. Empty when keys and values are not kept.
    """

    ids: list[int]
    scores: tuple[float, ...]
    kv_chunks: tuple[Any, ...] = ()
    nbytes: int = 0


@dataclass
class _Row:
    """One sequence to score: a known prefix followed by the steps still to score."""

    prefix: _Prefix
    new_steps: tuple[str, ...]
    question: str | None = None  # set when the prefix is the question, still to encode
    new_ids: list[int] = field(default_factory=list)
    tag_offsets: list[int] = field(default_factory=list)  # tag positions within new_ids
    scores: tuple[float, ...] = ()
    kv_chunk: Any = None  # keys and values of new_ids, or of all ids after _forward


def _backend_encoder(tokenizer: Any) -> Any:
    """Return the Rust backend's batch encoder when it gives the ids of ``tokenizer.encode``.

    The backend encodes a list in one call without the per-call overhead of
    ``tokenizer(texts)``. It is used only when it agrees with ``tokenizer.encode`` on a
    probe text, since a Python tokenizer class may change the text before the backend.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    encode = getattr(backend, "encode_batch_fast", None) or getattr(backend, "encode_batch", None)
    if encode is None:
        return None
    probe = "Step 1: 12 + 7 = 19 apples, so the answer is \\boxed{19}."
    try:
        agrees = encode([probe], add_special_tokens=False)[0].ids == tokenizer.encode(
            probe, add_special_tokens=False
        )
    except (TypeError, ValueError, AttributeError):
        return None
    return encode if agrees else None


class _KVBuffer:
    """Keys and values of every layer for one batch, filled in place by the cache layers.

    ``tensor`` has shape (2 * layers, B, kv_heads, T, head_dim), the layout of
    :attr:`_Prefix.kv_chunks` with a batch dimension. When it is None, the first
    ``update`` allocates it for the positions of that update.
    """

    def __init__(self, num_layers: int, tensor: Any = None):
        self.num_layers = num_layers
        self.tensor = tensor

    def layer(self, layer: int, new_keys: Any) -> tuple[Any, Any]:
        """Return the (B, kv_heads, T, head_dim) key and value views of ``layer``."""
        if self.tensor is None:
            self.tensor = new_keys.new_empty((2 * self.num_layers, *new_keys.shape))
        expected = (self.tensor.shape[1], self.tensor.shape[2], self.tensor.shape[4])
        got = (new_keys.shape[0], new_keys.shape[1], new_keys.shape[3])
        if got != expected:
            raise ValueError(
                f"layer {layer} has keys of shape (batch, heads, head_dim) {got}, but the "
                f"key/value buffer holds {expected}; this model's layers differ in shape, so "
                "build the LearnedPRM with kv_cache_mb=0"
            )
        return self.tensor[2 * layer], self.tensor[2 * layer + 1]


def _buffer_cache(model: Any, buffer: _KVBuffer, past_length: int) -> Any:
    """Return a ``DynamicCache`` whose layers write into ``buffer`` after ``past_length``."""
    from transformers import DynamicCache

    layer_class = _buffer_layer_class()
    cache = DynamicCache(config=model.config)
    cache.layers = [layer_class(buffer, layer, past_length) for layer in range(buffer.num_layers)]
    return cache


@functools.cache
def _buffer_layer_class() -> type:
    """Return a ``DynamicLayer`` subclass that fills one layer of a :class:`_KVBuffer`.

    ``update`` writes the new keys and values after the filled positions in place and
    returns the filled part. A plain ``DynamicLayer`` would copy the whole past into a
    new tensor at every update.
    """
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self, buffer: _KVBuffer, layer: int, past_length: int):
            super().__init__()
            self.buffer = buffer
            self.layer = layer
            self.filled = past_length
            if buffer.tensor is not None:
                keys, values = buffer.layer(layer, buffer.tensor[0])
                self.lazy_initialization(keys, values)
                self.keys, self.values = keys, values

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self.keys, self.values = self.buffer.layer(self.layer, key_states)
            stop = self.filled + key_states.shape[-2]
            if stop > self.keys.shape[-2]:
                raise ValueError(
                    f"{stop} positions do not fit the key/value buffer of {self.keys.shape[-2]}"
                )
            self.keys[:, :, self.filled : stop] = key_states
            self.values[:, :, self.filled : stop] = value_states
            self.filled = stop
            return self.keys[:, :, :stop], self.values[:, :, :stop]

        def get_seq_length(self) -> int:
            return self.filled

    return BufferLayer


def _layer_types(model: Any) -> list[Any]:
    """Return the cache layers a ``DynamicCache`` builds for ``model`` (one per layer)."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config).layers


def _storage_bytes(chunks: Sequence[Any]) -> int:
    """Return the bytes of the memory behind ``chunks``, counting a view's whole base.

    Chunks are shared between a prefix and the prefixes that extend it, so the sum over
    cache entries is an upper bound of the memory in use.
    """
    return sum(chunk.untyped_storage().nbytes() for chunk in chunks)


def _kv_cache_argument(model: Any) -> str | None:
    """Return the name of the forward argument that takes a ``DynamicCache``, or None.

    None turns key/value reuse off. It is returned when the forward takes no cache, or
    when a cache built from the model's config has a layer other than a plain
    full-attention ``DynamicLayer`` (sliding-window, chunked or linear attention). With
    such a layer, a padded prefix would not give the same scores.
    """
    import inspect

    try:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None
    parameters = inspect.signature(model.forward).parameters
    # transformers 5.x renamed ``past_key_values`` to ``cache``; both update in place.
    name = next((n for n in ("cache", "past_key_values") if n in parameters), None)
    config = getattr(model, "config", None)
    if name is None or config is None or getattr(config, "is_encoder_decoder", False):
        return None
    try:
        layers = DynamicCache(config=config).layers
    except (AttributeError, TypeError, ValueError, KeyError):
        return None
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return None
    return name


def _weights_version(model: Any) -> int:
    """Return the sum of the parameters' in-place version counters.

    Every in-place update of a parameter (``optimizer.step``, ``copy_``) increments its
    ``Tensor._version`` counter, a private but long-standing torch attribute.
    """
    return sum(getattr(parameter, "_version", 0) for parameter in model.parameters())


def _resolve_model_path(name: str) -> str:
    """Map a short model name to a local path via reasoning_gym.models when available."""
    try:
        from reasoning_gym.models import resolve_model_path
    except ImportError:
        return name
    return str(resolve_model_path(name))
