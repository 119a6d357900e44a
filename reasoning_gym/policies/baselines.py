"""Baseline policies without a language model: random steps and gold-step replay."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal

#: Characters of the random steps: digits, operators and spaces.
RANDOM_ALPHABET = "0123456789+-*/= "


def _proposal(tokenizer: Any, text: str, is_final: bool) -> StepProposal:
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    # These policies have no model, so the logprobs are 0 by convention.
    return StepProposal(
        token_ids=ids, text=text, logprobs=np.zeros(len(ids), dtype=np.float32), is_final=is_final
    )


class RandomPolicy(StepPolicy):
    """Emit random short steps of digits and operators, sometimes a ``\\boxed{n}`` answer.

    Meant for smoke tests of environments, agents and the CLI: it needs no model and
    its output depends only on ``seed``.

    Args:
        tokenizer: Tokenizer spec (see ``reasoning_gym.tokenizers.load_tokenizer``);
            None uses the byte tokenizer. Use the environment's tokenizer.
        seed: Seed of the policy's own ``random.Random``; None draws fresh entropy.
        final_probability: Probability that a step is a final answer.
        max_chars: Maximum length of a non-final step in characters.
        alphabet: Characters that non-final steps are drawn from.
    """

    name = "random"

    def __init__(
        self,
        tokenizer: Any = None,
        seed: int | None = None,
        final_probability: float = 0.25,
        max_chars: int = 12,
        alphabet: str = RANDOM_ALPHABET,
    ):
        super().__init__(SamplingConfig(temperature=1.0, seed=seed))
        from reasoning_gym.tokenizers import load_tokenizer

        if not 0.0 <= final_probability <= 1.0:
            raise ValueError(f"final_probability={final_probability} is outside [0, 1]")
        if max_chars < 1:
            raise ValueError(f"max_chars={max_chars} must be at least 1")
        if not alphabet.strip():
            raise ValueError(f"alphabet={alphabet!r} must contain a non-space character")
        self.tokenizer = load_tokenizer(tokenizer)
        self.final_probability = final_probability
        self.max_chars = max_chars
        self.alphabet = alphabet
        self._rng = random.Random(seed)

    def _random_step(self) -> tuple[str, bool]:
        if self._rng.random() < self.final_probability:
            return f"The answer is \\boxed{{{self._rng.randint(0, 100)}}}", True
        length = self._rng.randint(1, self.max_chars)
        text = "".join(self._rng.choice(self.alphabet) for _ in range(length)).strip()
        # An all-space draw would be an empty step; use a digit instead.
        return text or str(self._rng.randint(0, 9)), False

    def propose(
        self,
        contexts: Sequence[np.ndarray],
        n: int = 1,
        sampling: SamplingConfig | None = None,
    ) -> list[list[StepProposal]]:
        """Return ``n`` random steps for each context; the contexts are not read."""
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        return [
            [_proposal(self.tokenizer, *self._random_step()) for _ in range(n)] for _ in contexts
        ]


class OraclePolicy(StepPolicy):
    """Replay the gold solution of the environment's current problem.

    This policy reads gold data (``problem.gold_steps`` and ``problem.answer``), so its
    score is an upper bound for checking environments and reward wiring, not a baseline
    for models. It proposes the gold step whose index equals the number of steps taken
    in the environment's current state; the contexts passed to :meth:`propose` are not
    read, so every context gets the same step. After the gold steps run out, or for
    problems without gold steps, it proposes ``The answer is \\boxed{ANSWER}``.

    Args:
        env: The environment (a ``ReasoningEnv`` or a wrapper around one).
    """

    name = "oracle"

    def __init__(self, env: Any):
        super().__init__(SamplingConfig())
        base = getattr(env, "unwrapped", env)
        if not hasattr(base, "get_state") or not hasattr(base, "tokenizer"):
            raise TypeError(f"env={env!r} is not a ReasoningEnv; OraclePolicy needs one")
        self.env = base

    def next_step(self) -> tuple[str, bool]:
        """Return the gold step for the current state and whether it is the final answer."""
        state = self.env.get_state()
        problem = state.problem
        gold_steps = list(problem.gold_steps or ())
        index = state.num_steps
        if index < len(gold_steps):
            text = gold_steps[index]
            return text, _is_final_answer(text)
        return f"The answer is \\boxed{{{problem.answer}}}", True

    def propose(
        self,
        contexts: Sequence[np.ndarray],
        n: int = 1,
        sampling: SamplingConfig | None = None,
    ) -> list[list[StepProposal]]:
        """Return the next gold step ``n`` times for each context."""
        if n < 1:
            raise ValueError(f"n={n} must be at least 1")
        text, is_final = self.next_step()
        tokenizer = self.env.tokenizer
        return [[_proposal(tokenizer, text, is_final) for _ in range(n)] for _ in contexts]


def _is_final_answer(text: str) -> bool:
    from reasoning_gym.verify.answers import is_final_answer

    return bool(is_final_answer(text))
