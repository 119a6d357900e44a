"""ReasoningEnv: one reasoning episode as a Markov decision process over token ids.

- State ``s_t``: the prompt ids (instruction and question) followed by the ids of every
  step taken, each followed by the step separator; ``s_0`` is the prompt.
- Action ``a_t``: the next step, as text or as token ids; a step in an answer format
  (``\\boxed{...}``, ``#### ...``, ``The answer is ...``, ``Answer: ...``) is final.
- Transition: ``s_{t+1} = s_t + ids(a_t) + ids(separator)``, deterministic.
- Reward: see :mod:`reasoning_gym.rewards`; by default ``r_t = w_p * PRM(s_t, a_t)``
  and the final step adds ``w_o * verify(answer, gold)``.
- Termination: a final answer. Truncation (not termination): ``max_steps`` steps taken,
  or ``max_context_tokens`` reached.

The environment never re-tokenizes accumulated text: it encodes each text action once
and appends its ids, so the per-step cost, reward models aside, does not grow with the
context length.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from reasoning_gym.errors import InvalidActionError, ResetNeededError
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.rewards import RewardConfig, StepOutcome, compute_reward, potential_after
from reasoning_gym.state import ReasoningState, StepRecord, TokenBuffer
from reasoning_gym.tasks.base import Problem, Task, make_task
from reasoning_gym.tokenizers import Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)

PROMPT_STYLES = ("auto", "chat", "plain")


@dataclass(frozen=True)
class PendingStep:
    """A validated action waiting for its PRM and verifier scores (used for batching)."""

    state: ReasoningState
    ids: np.ndarray  # (L,) the action's ids after cutting
    text: str
    is_final: bool
    invalid: bool
    step_truncated: bool
    context_full: bool  # the step filled the context up to max_context_tokens

    def query(self) -> StepQuery:
        """Return the PRM query of this step: the state before it, its text and its ids."""
        return StepQuery(
            problem=self.state.problem,
            previous_steps=self.state.step_texts,
            step=self.text,
            context_ids=self.state.ids,
            step_ids=self.ids,
        )


class ReasoningEnv(gym.Env[np.ndarray, Any]):
    """Gymnasium environment in which each step appends one reasoning step.

    Args:
        task: Task name (see ``reasoning_gym.tasks.registered_tasks()``) or a Task.
        tokenizer: None or ``"byte"`` for the built-in byte tokenizer, a Hugging Face
            tokenizer, a local tokenizer folder or a short model name.
        prm: Process reward model: ``"auto"`` (the task's step checker when it has one),
            ``None``, a registered name (``"oracle"``, ``"mc"``, ``"learned:PATH"``,
            ``"judge:MODEL"``), a ProcessRewardModel, or a callable ``f(StepQuery) -> float``.
        reward_mode: ``"outcome"``, ``"process"``, ``"process+outcome"`` or ``"potential"``.
        process_weight: Weight of the PRM score in the reward.
        outcome_weight: Weight of the verifier score in the final reward.
        gamma: Discount for potential-based shaping.
        max_steps: Steps after which the episode is truncated.
        max_context_tokens: Context length (tokens) at which the episode is truncated.
        max_step_tokens: Longer actions are cut to this many tokens, and
            ``info["step_truncated"]`` is True.
        step_separator: Text appended after every step.
        prompt_style: ``"chat"`` uses the tokenizer's chat template, ``"plain"`` a plain
            prompt, ``"auto"`` the template when the tokenizer has one.
        few_shot: Worked examples shown before the question: a count (taken from
            ``task.few_shot_problems``) or a sequence of Problems with ``gold_steps``. An
            example whose question equals the current question is skipped.
        invalid_step_reward: Reward of an empty, whitespace-only or separator-only step.
        render_mode: None or ``"ansi"``.
        task_kwargs: Keyword arguments of the task factory (difficulty, data path, ...).
        copy_observations: Return each observation as a fresh array (the Gymnasium
            contract: observations never share memory). With False, observations are
            read-only views of the shared token buffer and cost nothing to return.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        task: str | Task = "arithmetic",
        tokenizer: Any = None,
        prm: Any = "auto",
        reward_mode: str = "process+outcome",
        process_weight: float = 1.0,
        outcome_weight: float = 1.0,
        gamma: float = 1.0,
        max_steps: int = 16,
        max_context_tokens: int = 4096,
        max_step_tokens: int = 256,
        step_separator: str = "\n",
        prompt_style: str = "auto",
        few_shot: int | Sequence[Problem] = 0,
        invalid_step_reward: float = -0.1,
        render_mode: str | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        copy_observations: bool = True,
    ):
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps} must be at least 1")
        if max_step_tokens < 1:
            raise ValueError(f"max_step_tokens={max_step_tokens} must be at least 1")
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style={prompt_style!r} is not one of {PROMPT_STYLES}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; use None or 'ansi'")
        if not step_separator:
            raise ValueError("step_separator is empty; use a non-empty text such as '\\n'")

        self.task: Task = make_task(task, **dict(task_kwargs or {}))
        self.tokenizer: Tokenizer = load_tokenizer(tokenizer)
        self.reward_config = RewardConfig(
            mode=reward_mode,
            process_weight=process_weight,
            outcome_weight=outcome_weight,
            gamma=gamma,
            invalid_step_reward=invalid_step_reward,
        )
        from reasoning_gym.prm import make_prm

        self.prm: ProcessRewardModel | None = make_prm(prm, task=self.task)
        if self.prm is None and self.reward_config.needs_prm and prm not in (None, "none"):
            logger.info(
                "task %r has no step checker and no PRM was given: process rewards are 0; "
                "pass prm=... to score steps",
                self.task.name,
            )
        self.max_steps = int(max_steps)
        self.max_context_tokens = int(max_context_tokens)
        self.max_step_tokens = int(max_step_tokens)
        self.step_separator = step_separator
        self.separator_ids = np.asarray(self.tokenizer.encode(step_separator), dtype=np.int64)
        self.separator_ids.flags.writeable = False
        self.prompt_style = prompt_style
        self.few_shot, self._few_shot_pool = self._few_shot_examples(few_shot)
        self.render_mode = render_mode
        self.copy_observations = bool(copy_observations)

        self.observation_space = spaces.Sequence(
            spaces.Discrete(self.tokenizer.vocab_size), stack=True
        )
        # Text actions of up to max_step_tokens * 8 characters; token-id actions also work.
        self.action_space = spaces.Text(max_length=self.max_step_tokens * 8)

        self._state: ReasoningState | None = None
        self._last_outcome: dict[str, Any] = {}

    # ------------------------------------------------------------------ properties
    @property
    def problem(self) -> Problem:
        """The current problem; raises ResetNeededError before the first reset."""
        return self._require_state().problem

    @property
    def state(self) -> ReasoningState:
        return self._require_state()

    # ------------------------------------------------------------------ prompts
    def _few_shot_examples(
        self, few_shot: int | Sequence[Problem]
    ) -> tuple[int, tuple[Problem, ...]]:
        """Return (examples per prompt, example pool) for the ``few_shot`` argument."""
        if isinstance(few_shot, (bool, str)) or not isinstance(few_shot, (int, Sequence)):
            raise TypeError(f"few_shot must be an int or a sequence of Problems, got {few_shot!r}")
        if isinstance(few_shot, int):
            if few_shot < 0:
                raise ValueError(f"few_shot={few_shot} must be 0 or more")
            # One spare example replaces an example that repeats the current question.
            pool = tuple(self.task.few_shot_problems(few_shot + 1)) if few_shot else ()
            return few_shot, pool
        pool = tuple(few_shot)
        for example in pool:
            if not isinstance(example, Problem) or not example.gold_steps:
                raise ValueError(
                    f"few-shot example {example!r} is not a Problem with gold_steps; "
                    "give each example its worked steps"
                )
        return len(pool), pool

    def prompt_ids(self, problem: Problem) -> np.ndarray:
        """Token ids of ``s_0`` for ``problem``: instruction, worked examples, question."""
        examples = [
            (example.question, self.step_separator.join(example.gold_steps))
            for example in self._few_shot_pool
            if example.question != problem.question
        ][: self.few_shot]
        use_chat = self.prompt_style == "chat" or self.prompt_style == "auto"
        ids = (
            self.tokenizer.chat_prompt(self.task.instruction, problem.question, examples)
            if use_chat
            else None
        )
        if ids is None:
            if self.prompt_style == "chat":
                raise ValueError(
                    f"prompt_style='chat' but tokenizer {self.tokenizer!r} has no chat template; "
                    "use prompt_style='plain' or 'auto'"
                )
            worked = "".join(
                f"Question: {question}\nSolution:\n{solution}\n\n"
                for question, solution in examples
            )
            text = f"{self.task.instruction}\n\n{worked}Question: {problem.question}\nSolution:\n"
            ids = self.tokenizer.encode(text)
        return np.asarray(ids, dtype=np.int64)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: Seeds this env's own generator; the same seed gives the same problem.
            options: ``{"problem": Problem}`` or ``{"index": i}`` selects the problem.
        """
        super().reset(seed=seed)
        problem = self._select_problem(options or {})
        prompt = self.prompt_ids(problem)
        if len(prompt) >= self.max_context_tokens:
            raise ValueError(
                f"the prompt of problem {problem.id!r} has {len(prompt)} tokens, not fewer than "
                f"max_context_tokens={self.max_context_tokens}; raise max_context_tokens"
            )
        self._state = ReasoningState(
            problem=problem,
            prompt_length=len(prompt),
            buffer=TokenBuffer(prompt),
            length=len(prompt),
            last_step=None,
            task_name=self.task.name,
        )
        self._last_outcome = {}
        info = {
            "problem_id": problem.id,
            "step": 0,
            "context_tokens": len(prompt),
        }
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Append one step; see the module docstring for the reward and end conditions."""
        pending = self.prepare_step(action)
        prm_score = self.score_pending([pending])[0]
        outcome = self.verify_pending(pending)
        return self.commit_step(pending, prm_score, outcome)

    # The three phases below let ReasoningVectorEnv batch PRM calls across episodes.
    def prepare_step(self, action: Any) -> PendingStep:
        """Validate and encode ``action``; nothing in the episode changes yet."""
        state = self._require_state()
        if state.done:
            raise ResetNeededError(
                f"step() called after the episode ended (terminated={state.terminated}, "
                f"truncated={state.truncated}); call reset() first"
            )
        ids = self._action_ids(action)
        step_truncated = False
        if len(ids) > self.max_step_tokens:
            ids = ids[: self.max_step_tokens]
            step_truncated = True
        room = self.max_context_tokens - state.length - len(self.separator_ids)
        context_full = len(ids) >= room
        if len(ids) > max(room, 0):
            ids = ids[: max(room, 0)]
            step_truncated = True
        text = self.tokenizer.decode(ids)
        invalid = _is_blank(text, self.step_separator)
        is_final = not invalid and _is_final(self.task, text)
        return PendingStep(state, ids, text, is_final, invalid, step_truncated, context_full)

    def score_pending(self, pendings: list[PendingStep]) -> list[float | None]:
        """PRM scores of pending steps, in one batched PRM call."""
        scores: list[float | None] = [None] * len(pendings)
        if self.prm is None or not self.reward_config.needs_prm:
            return scores
        valid = [i for i, p in enumerate(pendings) if not p.invalid]
        if not valid:
            return scores
        values = self.prm.score([pendings[i].query() for i in valid])
        for i, value in zip(valid, values):
            scores[i] = float(value)
        return scores

    def verify_pending(self, pending: PendingStep) -> float | None:
        """Verifier score of a final answer, else None. The only reader of the gold answer."""
        if not pending.is_final:
            return None
        return float(self.task.verify(pending.state.problem, pending.text))

    def commit_step(
        self, pending: PendingStep, prm_score: float | None, outcome_score: float | None
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply a prepared step with its scores; returns the Gymnasium step tuple."""
        state = pending.state
        if self._state is not state:
            raise ResetNeededError("the episode changed between prepare_step and commit_step")
        terminated = pending.is_final
        step_outcome = StepOutcome(
            prm_score=prm_score,
            outcome_score=outcome_score,
            potential_before=state.potential,
            terminal=terminated,
            invalid=pending.invalid,
        )
        reward = compute_reward(self.reward_config, step_outcome)
        appended = np.concatenate([pending.ids, self.separator_ids])
        buffer = state.buffer.append_at(state.length, appended)
        length = state.length + len(appended)
        index = state.num_steps
        record = StepRecord(
            ids=pending.ids,
            text=pending.text,
            score=prm_score,
            reward=reward,
            is_final=pending.is_final,
            invalid=pending.invalid,
            parent=state.last_step,
            index=index,
        )
        truncated = not terminated and (
            index + 1 >= self.max_steps or pending.context_full or length >= self.max_context_tokens
        )
        self._state = ReasoningState(
            problem=state.problem,
            prompt_length=state.prompt_length,
            buffer=buffer,
            length=length,
            last_step=record,
            terminated=terminated,
            truncated=truncated,
            potential=potential_after(self.reward_config, step_outcome),
            task_name=state.task_name,
        )
        info: dict[str, Any] = {
            "step": index,
            "is_final": pending.is_final,
            "prm_score": prm_score,
            "context_tokens": length,
            "step_truncated": pending.step_truncated,
            "invalid_step": pending.invalid,
        }
        if terminated or truncated:
            info.update(self._episode_end_info(pending, outcome_score))
        return self._observation(), reward, terminated, truncated, info

    def _episode_end_info(
        self, pending: PendingStep, outcome_score: float | None
    ) -> dict[str, Any]:
        from reasoning_gym.verify.answers import extract_answer

        answer = extract_answer(pending.text) if pending.is_final else None
        end = {
            "answer": answer,
            "gold_answer": pending.state.problem.answer,
            "correct": bool(outcome_score is not None and outcome_score >= 1.0),
            "outcome_score": float(outcome_score or 0.0),
        }
        self._last_outcome = end
        return end

    # ------------------------------------------------------------------ snapshots
    def get_state(self) -> ReasoningState:
        """Immutable snapshot of the episode; it shares the token prefix, copying nothing."""
        return self._require_state()

    def set_state(self, state: ReasoningState) -> None:
        """Restore a snapshot taken by ``get_state`` (of this or an equally configured env)."""
        if not isinstance(state, ReasoningState):
            raise TypeError(f"set_state expects a ReasoningState from get_state(), got {state!r}")
        if state.task_name != self.task.name:
            raise ValueError(
                f"the snapshot comes from an environment of task {state.task_name!r}, but this "
                f"environment runs task {self.task.name!r}; restore it into an environment "
                "made with the same task"
            )
        self._state = state

    # ------------------------------------------------------------------ rendering
    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        state = self._require_state()
        lines = [f"Question: {state.problem.question}"]
        for step in state.steps:
            score = "-" if step.score is None else f"{step.score:.3f}"
            flag = ""
            if step.is_final:
                flag = " [final]"
            elif step.invalid:
                flag = " [invalid]"
            lines.append(
                f"  step {step.index}: {step.text!r} prm={score} r={step.reward:+.3f}{flag}"
            )
        if state.terminated:
            correct = self._last_outcome.get("correct")
            lines.append(
                f"Outcome: {'correct' if correct else 'wrong'} (gold {state.problem.answer})"
            )
        elif state.truncated:
            lines.append("Outcome: truncated before a final answer")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ helpers
    def _observation(self) -> np.ndarray:
        # A copy is one memcpy of the context (about 64 KiB at 8k tokens).
        ids = self._state.ids
        return ids.copy() if self.copy_observations else ids

    def _require_state(self) -> ReasoningState:
        if self._state is None:
            raise ResetNeededError("the environment has no episode; call reset() first")
        return self._state

    def _select_problem(self, options: dict[str, Any]) -> Problem:
        unknown = set(options) - {"problem", "index"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; use 'problem' or 'index'")
        if "problem" in options:
            problem = options["problem"]
            if not isinstance(problem, Problem):
                raise TypeError(
                    f"options['problem'] must be a Problem, got {type(problem).__name__}"
                )
            return problem
        total = self.task.num_problems
        if "index" in options:
            index = options["index"]
            if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or index < 0:
                raise ValueError(f"options['index']={index!r} must be a non-negative integer")
            if total is not None and index >= total:
                raise ValueError(
                    f"options['index']={index} is out of range: task {self.task.name!r} "
                    f"has {total} problems (indices 0..{total - 1})"
                )
            return self.task.problem(int(index))
        high = total if total is not None else 2**31 - 1
        return self.task.problem(int(self.np_random.integers(0, high)))

    def _action_ids(self, action: Any) -> np.ndarray:
        if isinstance(action, str):
            return np.asarray(self.tokenizer.encode(action), dtype=np.int64)
        if isinstance(action, (list, tuple)):
            action = np.asarray(action) if len(action) else np.zeros(0, dtype=np.int64)
        if isinstance(action, np.ndarray) or _is_tensor(action):
            ids = np.asarray(action)
            if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
                raise InvalidActionError(
                    f"a token-id action must be a 1-D integer array, got dtype={ids.dtype} "
                    f"shape={ids.shape}"
                )
            ids = ids.astype(np.int64, copy=False)
            if ids.size and (ids.min() < 0 or ids.max() >= self.tokenizer.vocab_size):
                bad = ids[(ids < 0) | (ids >= self.tokenizer.vocab_size)][:5].tolist()
                raise InvalidActionError(
                    f"token ids {bad} are outside the vocabulary [0, {self.tokenizer.vocab_size}) "
                    f"of {self.tokenizer!r}; encode actions with the environment's tokenizer"
                )
            return ids
        raise InvalidActionError(
            f"an action must be a str or a 1-D array of token ids, got {type(action).__name__}; "
            "use reasoning_gym.actions.step_action(text) or pass the ids"
        )


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "numpy")


def _is_blank(text: str, separator: str) -> bool:
    return not text.replace(separator, "").strip()


def _is_final(task: Task, text: str) -> bool:
    is_final = getattr(task, "is_final_answer", None)
    if is_final is not None:
        return bool(is_final(text))
    from reasoning_gym.verify.answers import is_final_answer

    return is_final_answer(text)
