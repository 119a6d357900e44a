"""A step policy backed by a Hugging Face causal language model.

:class:`HFPolicy` generates one reasoning step per proposal: decoding stops at the step
separator, at an end-of-sequence token, after ``max_step_tokens`` tokens, or as soon as
the step contains a complete ``\\boxed{...}`` final answer.

Log-probabilities returned with each proposal are the model's raw ``log_softmax`` of the
chosen tokens (temperature 1, no top-p, no masking), which is what PPO-style trainers
recompute from the same model; they are not the probabilities of the sampling
distribution when ``temperature != 1`` or ``top_p < 1``.

Within an episode the policy keeps the key/value cache of the last context it processed.
On the next call it crops the cache to the longest common prefix of the cached ids and
the new context and feeds only the remaining tokens (the step separator the environment
appended and anything after it), instead of re-encoding the whole context. A batch of
several contexts reuses the cache for the prefix they all share (typically the prompt
and the steps before a search branched) and feeds each remaining suffix; contexts with
no common prefix are encoded in full.
"""

from __future__ import annotations

import copy
import inspect
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal

logger = logging.getLogger(__name__)

_BOXED_RE = re.compile(r"\\boxed\s*\{")


def _is_final_answer(text: str) -> bool:
    """Check whether ``text`` is a final answer (``reasoning_gym.verify.answers`` when present)."""
    try:
        from reasoning_gym.verify.answers import is_final_answer
    except ImportError:  # the verify package is optional for this module
        return _has_complete_boxed(text)
    return bool(is_final_answer(text))


def _has_complete_boxed(text: str) -> bool:
    """Check whether ``text`` contains ``\\boxed{...}`` with balanced braces."""
    for match in _BOXED_RE.finditer(text):
        depth = 1
        for char in text[match.end() :]:
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                return True
    return False


def _common_prefix_length(contexts: list[np.ndarray]) -> int:
    """Return the length of the prefix shared by all contexts, leaving each one token to feed."""
    shared = min(len(context) for context in contexts) - 1
    first = contexts[0]
    for context in contexts[1:]:
        differs = np.nonzero(first[:shared] != context[:shared])[0]
        if len(differs):
            shared = int(differs[0])
    return max(shared, 0)


def _crop_cache(cache: Any, length: int) -> None:
    """Keep the first ``length`` positions of a ``DynamicCache``."""
    remove = cache.get_seq_length() - length
    if remove > 0:
        # A negative argument removes that many positions in transformers 4.x and 5.x.
        cache.crop(-remove)


@dataclass
class _RowState:
    """Generation state of one row (one sample of one context)."""

    ids: list[int]
    logprobs: list[float]
    done: bool = False
    stop: str = ""


class HFPolicy(StepPolicy):
    """Step policy that decodes steps from a causal LM with batching and KV-cache reuse.

    Args:
        model: A ``PreTrainedModel`` (causal LM) or a model spec accepted by
            :func:`reasoning_gym.models.load_model`.
        tokenizer: A Hugging Face tokenizer, a :class:`reasoning_gym.tokenizers.Tokenizer`,
            or a spec accepted by :func:`reasoning_gym.tokenizers.load_tokenizer`; it must
            be the tokenizer the environment uses.
        sampling: Default sampling settings.
        separator: Step separator text; must match the environment's ``step_separator``.
        device: Torch device of the model.
        cache_reuse: Whether to reuse the key/value cache between calls (see module doc).
            The cache is dropped when the model's weights change in place.
        block_empty_steps: Whether the first token of a step may not be one that starts
            with the separator (after spaces), which would make the step empty. The
            reported logprobs stay the unmasked ones.
    """

    name = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        sampling: SamplingConfig | None = None,
        separator: str = "\n",
        device: str = "cpu",
        cache_reuse: bool = True,
        block_empty_steps: bool = True,
    ):
        super().__init__(sampling)
        import torch

        from reasoning_gym.tokenizers import load_tokenizer

        if not isinstance(separator, str) or not separator:
            raise ValueError(f"separator={separator!r} must be a non-empty string")
        if isinstance(model, str):
            from reasoning_gym.models import load_model

            model = load_model(model, device=device)
        if not hasattr(model, "config") or not callable(model):
            raise TypeError(f"model={model!r} is not a Hugging Face causal LM or a model spec")

        self.model = model
        self.model.eval()
        self.tokenizer = load_tokenizer(tokenizer)
        self.separator = separator
        self.device = torch.device(device)
        self.cache_reuse = cache_reuse
        self.block_empty_steps = block_empty_steps
        self.eos_ids = self._collect_eos_ids()
        self.pad_id = int(self.tokenizer.pad_token_id)
        parameters = inspect.signature(self.model.forward).parameters
        self._uses_cache_argument = "cache" in parameters

        self._generator = torch.Generator(device=self.device)
        self._generator_seed: int | None = None
        self._seed_generator(self.sampling.seed)
        self._blocked_first: Any = None  # (V,) bool tensor, built on first use
        self._cache: Any = None  # DynamicCache of one row
        # Token ids whose keys/values _cache contains.
        self._cache_ids: np.ndarray = np.zeros(0, dtype=np.int64)
        self._cache_weights_version = self._weights_version()
        # Counters for benchmarks: tokens fed to the model during prefill.
        self.prefill_tokens = 0
        self.reused_tokens = 0

    # ------------------------------------------------------------------ setup helpers

    def _collect_eos_ids(self) -> set[int]:
        eos: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            eos.add(int(self.tokenizer.eos_token_id))
        generation_config = getattr(self.model, "generation_config", None)
        configured = getattr(generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            eos.add(configured)
        elif configured is not None:
            eos.update(int(i) for i in configured)
        return eos

    def _seed_generator(self, seed: int | None) -> None:
        if seed is None:
            seed = random.SystemRandom().randrange(2**63)
        else:
            self._generator_seed = seed
        self._generator.manual_seed(int(seed))

    def _blocked_first_mask(self) -> Any:
        """Return a (V,) bool mask of tokens that would start a step with the separator."""
        import torch

        if self._blocked_first is None:
            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            mask = torch.zeros(vocab, dtype=torch.bool)
            for token_id in range(min(vocab, self.tokenizer.vocab_size)):
                text = self.tokenizer.decode([token_id])
                if text.lstrip(" \t").startswith(self.separator):
                    mask[token_id] = True
            self._blocked_first = mask.to(self.device)
        return self._blocked_first

    def _weights_version(self) -> int:
        """Return the sum of the parameters' in-place version counters.

        Every in-place update of a parameter (``optimizer.step``, ``copy_``) increments
        its ``Tensor._version`` counter, a private but long-standing torch attribute.
        """
        return sum(getattr(parameter, "_version", 0) for parameter in self.model.parameters())

    def reset(self) -> None:
        """Drop the key/value cache and the sampling seed (call between episodes).

        Forgetting the seed makes the next call with ``SamplingConfig.seed`` reseed the
        generator, so two episodes with the same seed draw the same samples.
        """
        self._cache = None
        self._cache_ids = np.zeros(0, dtype=np.int64)
        self._generator_seed = None

    # ------------------------------------------------------------------ public API

    def propose(
        self,
        contexts: Sequence[np.ndarray],
        n: int = 1,
        sampling: SamplingConfig | None = None,
    ) -> list[list[StepProposal]]:
        """Generate ``n`` steps for each context (see :meth:`StepPolicy.propose`)."""
        import torch

        sampling = sampling or self.sampling
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        if len(contexts) == 0:
            return []
        arrays = [np.asarray(c, dtype=np.int64).reshape(-1) for c in contexts]
        for index, ids in enumerate(arrays):
            if len(ids) == 0:
                raise ValueError(f"context {index} is empty; pass the environment's observation")
        if sampling.seed is not None and sampling.seed != self._generator_seed:
            self._seed_generator(sampling.seed)
        weights_version = self._weights_version()
        if weights_version != self._cache_weights_version:
            # The weights changed in place (an optimizer step or load_state_dict), so
            # the kept keys/values are stale.
            self.reset()
            self._cache_weights_version = weights_version

        with torch.inference_mode():
            shared = _common_prefix_length(arrays)
            if len(arrays) == 1 and self.cache_reuse:
                rows, logits, cache, mask = self._prefill_cached(arrays[0], n)
            elif self.cache_reuse and shared > 0:
                rows, logits, cache, mask = self._prefill_shared(arrays, n, shared)
            else:
                # Contexts without a common prefix are encoded in full, left-padded.
                rows, logits, cache, mask = self._prefill_full(arrays, n)
            states = self._decode(logits, cache, mask, sampling)

        proposals: list[list[StepProposal]] = []
        for context_index, context in enumerate(arrays):
            group = states[context_index * n : (context_index + 1) * n]
            proposals.append([self._finish(context, state) for state in group])
        return proposals

    def token_logprobs(self, context: np.ndarray, token_ids: Sequence[int]) -> np.ndarray:
        """Return the model's log-probability of each of ``token_ids`` after ``context``.

        Runs one full forward pass without the cache and returns an (L,) float32 array.
        """
        import torch

        context = np.asarray(context, dtype=np.int64).reshape(-1)
        token_ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
        if len(token_ids) == 0:
            return np.zeros(0, dtype=np.float32)
        full = np.concatenate([context, token_ids])
        with torch.inference_mode():
            input_ids = torch.tensor(full, device=self.device).unsqueeze(0)  # (1, T)
            logits = self.model(input_ids=input_ids, use_cache=False).logits[0]  # (T, V)
            start = len(context) - 1
            step_logits = logits[start : start + len(token_ids)].float()  # (L, V)
            logprobs = torch.log_softmax(step_logits, dim=-1)
            chosen = logprobs.gather(1, torch.tensor(token_ids, device=self.device)[:, None])
        return chosen.squeeze(1).cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------ prefill

    def _forward(
        self, input_ids: Any, mask: Any, positions: Any, cache: Any, logits_to_keep: int = 0
    ) -> Any:
        """Run the model on new tokens, appending their keys/values to ``cache`` in place."""
        extra = {"logits_to_keep": logits_to_keep} if logits_to_keep else {}
        # transformers 5.x renamed ``past_key_values`` to ``cache``; both update in place.
        cache_argument = "cache" if self._uses_cache_argument else "past_key_values"
        extra[cache_argument] = cache
        return self.model(
            input_ids=input_ids,  # (R, T)
            attention_mask=mask,  # (R, S + T)
            position_ids=positions,  # (R, T)
            use_cache=True,
            **extra,
        )

    def _extend_kept_cache(self, prefix: np.ndarray) -> None:
        """Make the kept single-row cache contain exactly ``prefix``, feeding only new tokens."""
        import torch
        from transformers import DynamicCache

        common = 0
        if self._cache is not None:
            limit = min(len(self._cache_ids), len(prefix))
            differs = np.nonzero(self._cache_ids[:limit] != prefix[:limit])[0]
            common = int(differs[0]) if len(differs) else limit
        if common == 0 or self._cache is None:
            self._cache = DynamicCache(config=self.model.config)
            common = 0
        else:
            _crop_cache(self._cache, common)
        self.reused_tokens += common
        self.prefill_tokens += len(prefix) - common
        if len(prefix) > common:
            new_ids = torch.tensor(prefix[common:], device=self.device).unsqueeze(0)  # (1, T)
            positions = torch.arange(common, len(prefix), device=self.device).unsqueeze(0)
            mask = torch.ones(1, len(prefix), dtype=torch.long, device=self.device)  # (1, S)
            self._forward(new_ids, mask, positions, self._cache, logits_to_keep=1)
        self._cache_ids = prefix.copy()

    def _prefill_shared(
        self, contexts: list[np.ndarray], n: int, shared: int
    ) -> tuple[int, Any, Any, Any]:
        """Reuse the kept cache for the prefix all contexts share, then feed each suffix.

        Row ``i`` of the batch is ``[shared prefix][padding][suffix i]``: the padding sits
        between prefix and suffix, masked out, and the position ids skip it, so each
        row computes the same values as its context alone.
        """
        import torch

        self._extend_kept_cache(contexts[0][:shared])
        suffixes = [context[shared:] for context in contexts]
        width = max(len(suffix) for suffix in suffixes)
        batch = len(contexts) * n
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)  # (B*n, T)
        mask = torch.zeros((batch, shared + width), dtype=torch.long)  # (B*n, P + T)
        mask[:, :shared] = 1
        for index, suffix in enumerate(suffixes):
            rows = slice(index * n, (index + 1) * n)
            input_ids[rows, width - len(suffix) :] = torch.tensor(suffix)
            mask[rows, shared + width - len(suffix) :] = 1
        input_ids = input_ids.to(self.device)
        mask = mask.to(self.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, shared:]  # (B*n, T)
        self.prefill_tokens += sum(len(suffix) for suffix in suffixes)

        cache = copy.deepcopy(self._cache)
        cache.batch_repeat_interleave(batch)
        output = self._forward(input_ids, mask, positions, cache, logits_to_keep=1)
        return batch, output.logits[:, -1, :], cache, mask

    def _prefill_cached(self, context: np.ndarray, n: int) -> tuple[int, Any, Any, Any]:
        """Feed ``context`` after cropping the kept cache to the common prefix."""
        import torch
        from transformers import DynamicCache

        common = 0
        if self._cache is not None:
            limit = min(len(self._cache_ids), len(context))
            differs = np.nonzero(self._cache_ids[:limit] != context[:limit])[0]
            common = int(differs[0]) if len(differs) else limit
        # At least one token must be fed to get next-token logits.
        common = min(common, len(context) - 1)
        if common == 0 or self._cache is None:
            self._cache = DynamicCache(config=self.model.config)
            common = 0
        else:
            _crop_cache(self._cache, common)
        self.reused_tokens += common
        self.prefill_tokens += len(context) - common

        new_ids = torch.tensor(context[common:], device=self.device).unsqueeze(0)  # (1, T)
        positions = torch.arange(common, len(context), device=self.device).unsqueeze(0)
        mask = torch.ones(1, len(context), dtype=torch.long, device=self.device)  # (1, S)
        output = self._forward(new_ids, mask, positions, self._cache, logits_to_keep=1)
        self._cache_ids = context.copy()
        logits = output.logits[:, -1, :]  # (1, V)
        if n == 1:
            # Decoding continues in the kept cache; _decode records the fed tokens.
            return 1, logits, self._cache, mask
        cache = copy.deepcopy(self._cache)
        cache.batch_repeat_interleave(n)
        return n, logits.repeat_interleave(n, dim=0), cache, mask.repeat_interleave(n, dim=0)

    def _prefill_full(self, contexts: list[np.ndarray], n: int) -> tuple[int, Any, Any, Any]:
        """Encode all contexts from scratch, left-padded, each repeated ``n`` times."""
        import torch
        from transformers import DynamicCache

        width = max(len(c) for c in contexts)
        batch = len(contexts) * n
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)  # (B*n, T)
        mask = torch.zeros((batch, width), dtype=torch.long)  # (B*n, T)
        for index, context in enumerate(contexts):
            rows = slice(index * n, (index + 1) * n)
            input_ids[rows, width - len(context) :] = torch.tensor(context)
            mask[rows, width - len(context) :] = 1
        input_ids = input_ids.to(self.device)
        mask = mask.to(self.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # (B*n, T)
        self.prefill_tokens += sum(len(c) for c in contexts)
        cache = DynamicCache(config=self.model.config)
        output = self._forward(input_ids, mask, positions, cache, logits_to_keep=1)
        return batch, output.logits[:, -1, :], cache, mask

    # ------------------------------------------------------------------ decoding

    def _choose(self, logits: Any, sampling: SamplingConfig, first: bool) -> tuple[Any, Any]:
        """Pick the next token of every row; return (token ids (R,), raw logprobs (R,))."""
        import torch

        logits = logits.float()  # (R, V)
        raw_logprobs = torch.log_softmax(logits, dim=-1)  # (R, V)
        scores = logits
        if first and self.block_empty_steps:
            blocked = self._blocked_first_mask()
            width = min(blocked.shape[0], scores.shape[1])
            scores = scores.clone()
            scores[:, :width] = scores[:, :width].masked_fill(blocked[:width], float("-inf"))
        if sampling.greedy:
            tokens = scores.argmax(dim=-1)
        else:
            probs = torch.softmax(scores / sampling.temperature, dim=-1)  # (R, V)
            if sampling.top_p < 1.0:
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                # Keep the smallest prefix whose mass reaches top_p (always the top token).
                outside = sorted_probs.cumsum(dim=-1) - sorted_probs >= sampling.top_p
                sorted_probs = sorted_probs.masked_fill(outside, 0.0)
                probs = torch.zeros_like(probs).scatter(1, order, sorted_probs)
            tokens = torch.multinomial(probs, 1, generator=self._generator).squeeze(1)
        chosen = raw_logprobs.gather(1, tokens[:, None]).squeeze(1)
        return tokens, chosen

    def _row_stop(self, state: _RowState, token: int, max_tokens: int) -> str:
        """Return why the row stops after appending ``token`` ('' to continue)."""
        if token in self.eos_ids:
            return "eos"
        piece = self.tokenizer.decode([token])
        text = self.tokenizer.decode(state.ids)
        if self.separator in text:
            return "separator"
        if "}" in piece and _has_complete_boxed(text) and _is_final_answer(text):
            return "final"
        if len(state.ids) >= max_tokens:
            return "length"
        return ""

    def _decode(self, logits: Any, cache: Any, mask: Any, sampling: SamplingConfig) -> list:
        """Decode until every row stops; returns one :class:`_RowState` per row."""
        import torch

        rows = logits.shape[0]
        states = [_RowState(ids=[], logprobs=[]) for _ in range(rows)]
        fed: list[int] = []  # tokens fed into the kept cache (single-row reuse path)
        first = True
        while True:
            tokens, chosen = self._choose(logits, sampling, first)
            first = False
            token_list = tokens.tolist()
            chosen_list = chosen.tolist()
            for row, state in enumerate(states):
                if state.done:
                    continue
                state.ids.append(int(token_list[row]))
                state.logprobs.append(float(chosen_list[row]))
                state.stop = self._row_stop(state, int(token_list[row]), sampling.max_step_tokens)
                state.done = bool(state.stop)
            if all(state.done for state in states):
                break

            # Finished rows keep receiving a padding token that nothing attends to.
            next_ids = [self.pad_id if state.done else state.ids[-1] for state in states]  # (R,)
            next_mask = torch.tensor(
                [[0 if state.done else 1] for state in states], device=self.device
            )  # (R, 1)
            mask = torch.cat([mask, next_mask], dim=1)  # (R, S+1)
            positions = (mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)  # (R, 1)
            input_ids = torch.tensor(next_ids, device=self.device).unsqueeze(1)  # (R, 1)
            output = self._forward(input_ids, mask, positions, cache)
            logits = output.logits[:, -1, :]
            if cache is self._cache:
                fed.append(next_ids[0])
        if fed:
            self._cache_ids = np.concatenate([self._cache_ids, np.asarray(fed, dtype=np.int64)])
        return states

    def _finish(self, context: np.ndarray, state: _RowState) -> StepProposal:
        """Turn a decoded row into a proposal, cutting the separator and what follows it."""
        ids = [i for i in state.ids if i not in self.eos_ids] if state.stop == "eos" else state.ids
        logprobs = state.logprobs[: len(ids)]
        text = self.tokenizer.decode(ids)
        if state.stop == "separator":
            text = text.split(self.separator, 1)[0]
            kept = self._ids_before_separator(ids, text)
            if kept is None:
                # The separator sits inside a token that also carries step text, so the
                # step text is re-encoded and its logprobs are recomputed.
                ids = self.tokenizer.encode(text)
                logprobs = self.token_logprobs(context, ids).tolist()
            else:
                ids = ids[:kept]
                logprobs = logprobs[:kept]
        is_final = state.stop == "final" or _is_final_answer(text)
        return StepProposal(
            token_ids=np.asarray(ids, dtype=np.int64),
            text=text,
            logprobs=np.asarray(logprobs, dtype=np.float32),
            is_final=is_final,
        )

    def _ids_before_separator(self, ids: list[int], text: str) -> int | None:
        """Return k such that ``decode(ids[:k]) == text``, or None when no prefix decodes so."""
        for kept in range(len(ids) - 1, -1, -1):
            decoded = self.tokenizer.decode(ids[:kept])
            if decoded == text:
                return kept
            if len(decoded) < len(text):
                return None
        return None

    def __repr__(self) -> str:
        name = getattr(self.model.config, "name_or_path", "") or type(self.model).__name__
        return f"HFPolicy({name!r}, separator={self.separator!r}, cache_reuse={self.cache_reuse})"
