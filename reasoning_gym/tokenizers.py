"""Tokenizers: a byte-level tokenizer that needs no download, and a Hugging Face adapter.

The environment talks to tokenizers through :class:`Tokenizer`; any Hugging Face
tokenizer (an object or a local path) is wrapped by :class:`HFTokenizer`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Tokenizer(Protocol):
    """What the environment needs from a tokenizer."""

    vocab_size: int
    eos_token_id: int | None
    pad_token_id: int

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        ...

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of ``ids``; invalid UTF-8 becomes U+FFFD, never an exception."""
        ...

    def chat_prompt(
        self, system: str, user: str, examples: Sequence[tuple[str, str]] = ()
    ) -> list[int] | None:
        """Ids of a chat prompt ending where the assistant starts, or None without a template.

        ``examples`` are (user, assistant) turns placed between the system message and
        ``user`` (few-shot demonstrations).
        """
        ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0-255, plus ``<pad>`` = 256, ``<bos>`` = 257, ``<eos>`` = 258."""

    name = "byte"
    pad_token_id = 256
    bos_token_id = 257
    eos_token_id = 258
    vocab_size = 259

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        data = bytes(int(i) for i in ids if 0 <= int(i) < 256)
        return data.decode("utf-8", errors="replace")

    def chat_prompt(
        self, system: str, user: str, examples: Sequence[tuple[str, str]] = ()
    ) -> list[int] | None:
        return None

    def __repr__(self) -> str:
        return "ByteTokenizer()"


class HFTokenizer:
    """Adapter around a Hugging Face ``PreTrainedTokenizerBase``."""

    def __init__(self, tokenizer: Any):
        self.hf = tokenizer
        self.name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        self.vocab_size = len(tokenizer)
        self.eos_token_id = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))
        # The Rust backend of a fast tokenizer skips the Python wrapper's per-call
        # overhead (about 5x faster for one short step); without it, use the wrapper.
        self._backend = getattr(tokenizer, "backend_tokenizer", None)

    def encode(self, text: str) -> list[int]:
        if self._backend is not None:
            return self._backend.encode(text, add_special_tokens=False).ids
        return list(self.hf.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        ids = np.asarray(ids, dtype=np.int64).tolist()
        if self._backend is not None:
            return self._backend.decode(ids, skip_special_tokens=False)
        return self.hf.decode(ids, skip_special_tokens=False)

    def chat_prompt(
        self, system: str, user: str, examples: Sequence[tuple[str, str]] = ()
    ) -> list[int] | None:
        if not getattr(self.hf, "chat_template", None):
            return None
        messages = [{"role": "system", "content": system}]
        for question, answer in examples:
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": user})
        text = self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.hf.encode(text, add_special_tokens=False))

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r})"


def load_tokenizer(spec: Any = None) -> Tokenizer:
    """Build the environment's tokenizer.

    Args:
        spec: None or ``"byte"`` for :class:`ByteTokenizer`; a Hugging Face tokenizer
            object; a local folder holding a tokenizer; a short model name from
            :mod:`reasoning_gym.models`; or an object that already implements Tokenizer.
    """
    if spec is None or spec == "byte":
        return ByteTokenizer()
    if isinstance(spec, (ByteTokenizer, HFTokenizer)):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        from transformers import AutoTokenizer

        from reasoning_gym.models import resolve_model_path

        path = resolve_model_path(str(spec))
        return HFTokenizer(AutoTokenizer.from_pretrained(path))
    if hasattr(spec, "apply_chat_template") and hasattr(spec, "convert_ids_to_tokens"):
        return HFTokenizer(spec)
    if isinstance(spec, Tokenizer):
        return spec
    raise TypeError(
        f"cannot use {spec!r} as a tokenizer: pass None or 'byte', a Hugging Face tokenizer, "
        "a local tokenizer folder, or a short model name such as 'smollm2-135m'"
    )
