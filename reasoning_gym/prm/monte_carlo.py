"""Monte-Carlo step labels (Math-Shepherd, Wang et al., 2024, arXiv:2312.08935).

A step's value is estimated by rolling the policy out from the state just after the step
to a final answer ``k`` times and checking each answer against the gold one: the soft
label is the fraction of correct rollouts, the hard label 1.0 when any rollout is correct.
Because it reads the gold answer, this PRM is meant for labelling training data and for
analysis, not for test-time search.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reasoning_gym.policies.base import SamplingConfig, StepPolicy
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.tasks.base import Problem, Task

logger = logging.getLogger(__name__)

_BOXED = re.compile(r"\\boxed\{")


def _is_final_answer(text: str) -> bool:
    try:
        from reasoning_gym.verify.answers import is_final_answer
    except ImportError:  # the verifier module is optional here; \boxed{} marks an answer
        return bool(_BOXED.search(text))
    return is_final_answer(text)


@dataclass
class _Rollout:
    query: int
    problem: Problem
    ids: np.ndarray  # (T,) int64
    done: bool = False
    correct: float = 0.0
    steps: list[str] = field(default_factory=list)


class MonteCarloPRM(ProcessRewardModel):
    """Scores a step by the success rate of ``k`` policy rollouts continued after it.

    Each rollout depth costs one ``policy.propose`` call over all open rollouts of the
    batch (``k`` per query). A step that is itself a final answer is scored by
    ``task.verify`` directly. A rollout that reaches ``max_steps`` without a final answer
    counts as wrong.

    Args:
        policy: The rollout policy.
        task: The task whose ``verify`` judges final answers (a Task or a name).
        k: Rollouts per step.
        label: ``"soft"`` (fraction correct) or ``"hard"`` (1.0 if any is correct).
        sampling: Sampling of the rollouts; defaults to temperature 1.0. With greedy
            sampling the ``k`` rollouts would be identical, so one is run and counted k times.
        max_steps: Maximum steps of a rollout after the scored step.
        separator_ids: Token ids appended after every step (the environment's
            ``separator_ids``); default: the tokenizer's encoding of ``"\\n"``.
        tokenizer: Tokenizer used to build contexts from text when a query has no
            ``context_ids``/``step_ids``; default: ``policy.tokenizer``.
        cache_size: Entries of the score cache.
    """

    name = "mc"
    uses_gold_answer = True

    def __init__(
        self,
        policy: StepPolicy,
        task: Task | str,
        k: int = 8,
        label: str = "soft",
        sampling: SamplingConfig | None = None,
        max_steps: int = 16,
        separator_ids: Sequence[int] | np.ndarray | None = None,
        tokenizer: Any = None,
        cache_size: int = 65536,
    ):
        super().__init__(cache_size=cache_size)
        from reasoning_gym.tasks.base import make_task

        if not isinstance(policy, StepPolicy):
            raise TypeError(
                f"policy must be a StepPolicy, got {type(policy).__name__}; wrap your model "
                "in one of reasoning_gym.policies"
            )
        if k < 1:
            raise ValueError(f"k={k} must be at least 1")
        if label not in ("soft", "hard"):
            raise ValueError(f"label={label!r} is invalid; use 'soft' or 'hard'")
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps} must be at least 1")
        self.policy = policy
        self.task = make_task(task)
        self.k = k
        self.label = label
        self.sampling = sampling or SamplingConfig(temperature=1.0)
        self.max_steps = max_steps
        self.tokenizer = tokenizer if tokenizer is not None else getattr(policy, "tokenizer", None)
        if self.tokenizer is not None and not hasattr(self.tokenizer, "chat_prompt"):
            from reasoning_gym.tokenizers import load_tokenizer

            self.tokenizer = load_tokenizer(self.tokenizer)
        if separator_ids is None:
            if self.tokenizer is None:
                raise ValueError(
                    "pass separator_ids= (the environment's separator_ids) or tokenizer= so "
                    "the Monte-Carlo PRM can append the step separator"
                )
            separator_ids = self.tokenizer.encode("\n")
        self.separator_ids = np.asarray(separator_ids, dtype=np.int64)
        self.name = f"mc:{k}"
        self.propose_calls = 0

    def context_after(self, query: StepQuery) -> np.ndarray:
        """Token ids of the state after the query's step: context + step + separator.

        Without ``query.context_ids``/``step_ids`` the state is rebuilt from text with the
        tokenizer, using the environment's prompt layout: the chat template (system = task
        instruction, user = question) when the tokenizer has one, else
        ``"{instruction}\\n\\nQuestion: {question}\\nSolution:\\n"``; then each step's ids
        followed by the separator. Re-encoding text can tokenize differently from the
        policy's own output, so pass ids when they are known.
        """
        if query.context_ids is not None and query.step_ids is not None:
            parts = [query.context_ids, query.step_ids, self.separator_ids]
            return np.concatenate([np.asarray(part, dtype=np.int64) for part in parts])
        if self.tokenizer is None:
            raise ValueError(
                "the query has no context_ids/step_ids and the Monte-Carlo PRM has no "
                "tokenizer to encode its text; pass tokenizer= to MonteCarloPRM"
            )
        problem = query.problem
        prompt = self.tokenizer.chat_prompt(self.task.instruction, problem.question)
        if prompt is None:
            text = f"{self.task.instruction}\n\nQuestion: {problem.question}\nSolution:\n"
            prompt = self.tokenizer.encode(text)
        parts = [np.asarray(prompt, dtype=np.int64)]
        for step in (*query.previous_steps, query.step):
            parts.append(np.asarray(self.tokenizer.encode(step), dtype=np.int64))
            parts.append(self.separator_ids)
        return np.concatenate(parts)

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        scores = np.zeros(len(queries), dtype=np.float64)
        rollouts_per_query = 1 if self.sampling.greedy else self.k
        rollouts: list[_Rollout] = []
        for i, query in enumerate(queries):
            if _is_final_answer(query.step):
                scores[i] = float(self.task.verify(query.problem, query.step))
                continue
            start = self.context_after(query)
            rollouts += [_Rollout(i, query.problem, start) for _ in range(rollouts_per_query)]

        for _ in range(self.max_steps):
            open_rollouts = [rollout for rollout in rollouts if not rollout.done]
            if not open_rollouts:
                break
            proposals = self.policy.propose(
                [rollout.ids for rollout in open_rollouts], n=1, sampling=self.sampling
            )
            self.propose_calls += 1
            if len(proposals) != len(open_rollouts):
                raise ValueError(
                    f"policy {self.policy.name!r} returned {len(proposals)} proposal lists for "
                    f"{len(open_rollouts)} contexts"
                )
            for rollout, options in zip(open_rollouts, proposals, strict=True):
                proposal = options[0]
                token_ids = np.asarray(proposal.token_ids, dtype=np.int64)
                rollout.ids = np.concatenate([rollout.ids, token_ids, self.separator_ids])
                rollout.steps.append(proposal.text)
                if proposal.is_final or _is_final_answer(proposal.text):
                    rollout.done = True
                    rollout.correct = float(self.task.verify(rollout.problem, proposal.text))

        unfinished = sum(not rollout.done for rollout in rollouts)
        if unfinished:
            logger.debug(
                "%d rollout(s) reached max_steps=%d unfinished", unfinished, self.max_steps
            )
        outcomes: dict[int, list[float]] = {}
        for rollout in rollouts:
            outcomes.setdefault(rollout.query, []).append(rollout.correct)
        for i, values in outcomes.items():
            scores[i] = float(np.mean(values)) if self.label == "soft" else float(max(values))
        return scores
