"""An LLM-as-judge PRM: a causal LM asked whether each step is correct.

The score is ``P(Yes) / (P(Yes) + P(No))`` from the model's next-token distribution
after the question "Is this step correct? Answer Yes or No.", which equals
``sigmoid(logit_Yes - logit_No)``. No training is needed, but a small model is a weak
judge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from reasoning_gym.prm.base import ProcessRewardModel, StepQuery

logger = logging.getLogger(__name__)

JUDGE_QUESTION = "Is this step correct? Answer Yes or No."


def judge_prompt_text(question: str, previous_steps: Sequence[str], step: str) -> str:
    """Return the user message that asks the judge about one step."""
    lines = [f"Problem: {question.strip()}", ""]
    if previous_steps:
        lines.append("Previous steps:")
        lines += [f"{i + 1}. {text.strip()}" for i, text in enumerate(previous_steps)]
        lines.append("")
    lines += [f"Step to check: {step.strip()}", "", JUDGE_QUESTION]
    return "\n".join(lines)


def _answer_token_id(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        logger.warning("judge answer %r is %d tokens; its first token is scored", word, len(ids))
    if not ids:
        raise ValueError(f"the tokenizer encodes {word!r} to no tokens; it cannot be a judge")
    return int(ids[0])


class JudgePRM(ProcessRewardModel):
    """Scores a step by a causal LM's relative probability of answering "Yes".

    Args:
        model: A Hugging Face causal LM.
        tokenizer: Its tokenizer (Hugging Face or our HFTokenizer adapter).
        batch_size: Prompts per forward pass.
        use_chat_template: Wrap the question in the tokenizer's chat template when it has
            one (None: when available); otherwise the prompt is the plain question
            followed by ``"\\nAnswer:"``.
        yes: The affirmative answer word; its first token is scored.
        no: The negative answer word.
        cache_size: Entries of the score cache.
    """

    name = "judge"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        use_chat_template: bool | None = None,
        yes: str = "Yes",
        no: str = "No",
        cache_size: int = 65536,
    ):
        super().__init__(cache_size=cache_size)
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.model = model
        self.model.eval()
        self.tokenizer = getattr(tokenizer, "hf", tokenizer)
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if use_chat_template and not has_template:
            raise ValueError("use_chat_template=True but the tokenizer has no chat template")
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        self.batch_size = batch_size
        self.yes_id = _answer_token_id(self.tokenizer, yes)
        self.no_id = _answer_token_id(self.tokenizer, no)
        if self.yes_id == self.no_id:
            raise ValueError(f"{yes!r} and {no!r} start with the same token; pick other words")
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))

    @classmethod
    def from_name(cls, name: str, dtype: str = "auto", device: str = "cpu", **kwargs: Any):
        """Load a judge by short name, folder or hub id through :mod:`reasoning_gym.models`."""
        from reasoning_gym.models import load_model
        from reasoning_gym.tokenizers import load_tokenizer

        model = load_model(name, dtype=dtype, device=device)
        return cls(model, load_tokenizer(name), **kwargs)

    def prompt_ids(self, query: StepQuery) -> list[int]:
        """Token ids of the judge prompt for one query, ending where the answer starts."""
        text = judge_prompt_text(query.problem.question, query.previous_steps, query.step)
        if self.use_chat_template:
            messages = [{"role": "user", "content": text}]
            rendered = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return list(self.tokenizer.encode(rendered, add_special_tokens=False))
        return list(self.tokenizer.encode(text + "\nAnswer:", add_special_tokens=False))

    def answer_logits(self, prompts: Sequence[list[int]]) -> np.ndarray:
        """Return the next-token logits of Yes and No after each prompt, shape (B, 2)."""
        import torch

        from reasoning_gym.prm.learned import pad_batch

        device = next(self.model.parameters()).device
        result = np.empty((len(prompts), 2), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                input_ids, attention_mask = pad_batch(chunk, self.pad_id)  # (B, T)
                logits = self.model(
                    input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)
                ).logits  # (B, T, V)
                last = attention_mask.sum(dim=1) - 1  # (B,) right padding: last real token
                rows = torch.arange(len(chunk))
                final = logits[rows, last.to(logits.device)].float()  # (B, V)
                pair = final[:, [self.yes_id, self.no_id]]  # (B, 2)
                result[start : start + len(chunk)] = pair.cpu().numpy()
        return result

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        logits = self.answer_logits([self.prompt_ids(query) for query in queries])  # (B, 2)
        difference = logits[:, 0] - logits[:, 1]
        return 1.0 / (1.0 + np.exp(-difference))
