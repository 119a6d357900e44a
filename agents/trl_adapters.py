"""Adapters that let TRL's GRPOTrainer and RLOOTrainer train on Reasoning environments.

Two ways to connect a task to TRL 1.16:

- Reward functions (:func:`make_reward_fn`): the model writes a whole solution as text,
  one step per line, and the reward is computed afterwards from the task's verifier
  (outcome), a process reward model (PRM) aggregated over the steps (process), or both.
  They work with ``GRPOTrainer(reward_funcs=...)`` and ``RLOOTrainer(reward_funcs=...)``.
- An environment class (:class:`ReasoningToolEnv`) for ``GRPOTrainer(environment_factory=...)``:
  the model calls the tools ``step(text)`` and ``answer(text)``, each call is one action in
  a :class:`reasoning_gym.env.ReasoningEnv`, and ``get_reward()`` scores the episode.

Rows built by :func:`build_dataset` carry the problem index (and seed), and TRL's sampler
repeats every row ``num_generations`` times in a row, so all completions of one GRPO group
are scored against, and (with the environment) reset to, the same problem.

Requirements of TRL 1.16 that the helpers here check or fix:

- Tool calling needs a chat template that renders tool calls and that TRL can parse
  (``trl.chat_template_utils.add_response_schema`` has parsers for Qwen, Llama 3.1/3.2, GLM-4,
  GPT-OSS and a few others). :func:`prepare_tool_tokenizer` swaps a ChatML template
  (SmolLM2, the test tokenizer) for TRL's Qwen2.5 template, which uses the same
  ``<|im_start|>``/``<|im_end|>`` markers, and raises ValueError for other templates.
- TRL cannot train a model loaded from a GGUF file; :func:`prepare_model` converts a
  ``.gguf`` path to a plain safetensors folder and rejects an in-memory GGUF model.
- With ``beta > 0`` TRL loads the reference model from ``model.config._name_or_path``;
  :func:`prepare_model` saves an in-memory model to a folder first when that path is not
  a saved model.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasoning_gym.prm.base import AGGREGATIONS, ProcessRewardModel, StepQuery, aggregate
from reasoning_gym.tasks.base import Problem, Task, make_task

logger = logging.getLogger(__name__)

REWARD_MODES = ("outcome", "process", "both")
CHAT_TEMPLATE_CHOICES = ("auto", "keep", "qwen2_5")

#: Appended to the task instruction in prompts meant for :class:`ReasoningToolEnv`.
TOOL_INSTRUCTION = (
    "Call the tool `step` once for every reasoning step, then call the tool `answer` "
    "with the final answer."
)

# Dataset columns that identify the problem of a row.
PROBLEM_COLUMN = "problem_index"
SEED_COLUMN = "problem_seed"
ANSWER_COLUMN = "answer"


# --------------------------------------------------------------------------- text helpers


def is_final_step(task: Task, text: str) -> bool:
    """Whether ``text`` is a final answer, by the task's own rule when it has one."""
    rule = getattr(task, "is_final_answer", None)
    if rule is not None:
        return bool(rule(text))
    from reasoning_gym.verify.answers import is_final_answer

    return bool(is_final_answer(text))


def _as_final_answer(task: Task, text: str) -> str:
    """Wrap an answer in ``\\boxed{}`` unless it already is in a final-answer form."""
    text = str(text).strip()
    return text if is_final_step(task, text) else f"\\boxed{{{text}}}"


def completion_text(completion: Any, task: Task | None = None, separator: str = "\n") -> str:
    """Flatten one TRL completion into solution text with one step per line.

    Args:
        completion: A string (standard format) or a list of chat messages
            (conversational format). In messages, assistant ``content`` is kept, calls
            of the ``step`` tool contribute their ``text`` argument as a step and calls
            of ``answer`` contribute a final answer; tool results are dropped.
        task: Decides whether an ``answer`` argument is already a final answer.
        separator: Text placed between steps.
    """
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, Sequence):
        raise TypeError(
            "a completion must be a string or a list of chat messages, "
            f"got {type(completion).__name__}"
        )
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, Mapping) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            parts.append(content.strip())
        for call in message.get("tool_calls") or ():
            function = call.get("function", {}) if isinstance(call, Mapping) else {}
            arguments = function.get("arguments")
            if not isinstance(arguments, Mapping) or "text" not in arguments:
                continue
            if function.get("name") == "step":
                parts.append(str(arguments["text"]).strip())
            elif function.get("name") == "answer":
                answer = str(arguments["text"])
                parts.append(_as_final_answer(task, answer) if task else f"\\boxed{{{answer}}}")
    return separator.join(part for part in parts if part)


def split_steps(task: Task, text: str, separator: str = "\n") -> tuple[list[str], str | None]:
    """Split solution text into steps up to and including the first final answer.

    Returns:
        The non-blank steps before the final answer, and the final-answer step or None.
    """
    steps: list[str] = []
    for raw in text.split(separator):
        step = raw.strip()
        if not step:
            continue
        if is_final_step(task, step):
            return steps, step
        steps.append(step)
    return steps, None


# --------------------------------------------------------------------------- dataset


def problem_messages(task: Task, problem: Problem, for_tools: bool = False) -> list[dict[str, str]]:
    """Return the chat prompt of ``problem``: the task instruction, then the question."""
    instruction = task.instruction
    if for_tools:
        instruction = f"{instruction} {TOOL_INSTRUCTION}"
    return [
        {"role": "system", "content": instruction},
        {"role": "user", "content": problem.question},
    ]


def build_dataset(
    task: str | Task,
    num_problems: int | None = None,
    indices: Sequence[int] | None = None,
    seed: int = 0,
    for_tools: bool = False,
    task_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Build a ``datasets.Dataset`` of conversational prompts, one row per problem.

    Columns: ``prompt`` (system instruction and user question), ``problem_index``,
    ``problem_seed``, ``answer`` (gold, read only by reward functions) and ``problem_id``.

    Args:
        task: Task name or Task.
        num_problems: Use problems ``0..num_problems-1``; exclusive with ``indices``.
        indices: Explicit problem indices.
        seed: Seed of procedural tasks.
        for_tools: Whether the instruction also explains the ``step``/``answer`` tools.
        task_kwargs: Options of the task factory when ``task`` is a name.
    """
    from datasets import Dataset

    task = make_task(task, **dict(task_kwargs or {}))
    if (num_problems is None) == (indices is None):
        raise ValueError("pass exactly one of num_problems=N or indices=[...]")
    if indices is None:
        if num_problems < 1:
            raise ValueError(f"num_problems={num_problems} must be at least 1")
        if task.num_problems is not None and num_problems > task.num_problems:
            raise ValueError(
                f"num_problems={num_problems} exceeds the {task.num_problems} problems of task "
                f"{task.name!r}; lower num_problems"
            )
        indices = range(num_problems)
    rows: dict[str, list[Any]] = {
        "prompt": [],
        PROBLEM_COLUMN: [],
        SEED_COLUMN: [],
        ANSWER_COLUMN: [],
        "problem_id": [],
    }
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"problem index {index!r} must be a non-negative integer")
        problem = task.problem(int(index), seed=seed)
        rows["prompt"].append(problem_messages(task, problem, for_tools=for_tools))
        rows[PROBLEM_COLUMN].append(int(index))
        rows[SEED_COLUMN].append(int(seed))
        rows[ANSWER_COLUMN].append(problem.answer)
        rows["problem_id"].append(problem.id)
    return Dataset.from_dict(rows)


# --------------------------------------------------------------------------- reward functions


def _resolve_prm(task: Task, prm: Any, mode: str, aggregation: str) -> ProcessRewardModel | None:
    if mode not in REWARD_MODES:
        raise ValueError(f"mode={mode!r} is not one of {REWARD_MODES}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation={aggregation!r} is not one of {sorted(AGGREGATIONS)}")
    if mode == "outcome":
        return None
    from reasoning_gym.prm import make_prm

    resolved = make_prm("auto" if prm is None else prm, task=task)
    if resolved is None:
        raise ValueError(
            f"mode={mode!r} needs a process reward model, but task {task.name!r} has no step "
            "checker and prm=None; pass prm='mc', prm='learned:PATH', a ProcessRewardModel "
            "or a callable, or use mode='outcome'"
        )
    return resolved


def _row_problem(task: Task, position: int, columns: Mapping[str, Any]) -> Problem:
    """Return the problem of completion ``position`` from the dataset columns TRL passes."""
    indices = columns.get(PROBLEM_COLUMN)
    if indices is not None:
        seeds = columns.get(SEED_COLUMN)
        seed = int(seeds[position]) if seeds is not None else 0
        return task.problem(int(indices[position]), seed=seed)
    answers = columns.get(ANSWER_COLUMN)
    if answers is not None:
        return Problem(id=f"row-{position}", question="", answer=str(answers[position]))
    raise ValueError(
        f"the reward function needs a {PROBLEM_COLUMN!r} or {ANSWER_COLUMN!r} column; build the "
        "dataset with agents.trl_adapters.build_dataset or add one of these columns, and keep "
        "remove_unused_columns=False in the trainer config"
    )


def make_reward_fn(
    task: str | Task,
    prm: Any = None,
    mode: str = "outcome",
    aggregation: str = "min",
    process_weight: float = 1.0,
    outcome_weight: float = 1.0,
    separator: str = "\n",
) -> Callable[..., list[float]]:
    """Build a reward function for ``GRPOTrainer`` / ``RLOOTrainer(reward_funcs=...)``.

    The function takes ``completions`` and the dataset columns ``problem_index`` (with
    ``problem_seed``) or ``answer`` as keyword arguments, as TRL passes them, and returns
    one float per completion:

    - ``"outcome"``: ``outcome_weight * verify(final answer)``, 0 without a final answer.
    - ``"process"``: ``process_weight * aggregate(PRM score of each step)``. The steps are
      the lines of the completion up to and including the first final answer. A
      completion without steps scores 0.
    - ``"both"``: the sum of the two.

    Args:
        task: Task name or Task; its verifier gives the outcome score.
        prm: PRM spec for :func:`reasoning_gym.prm.make_prm`; None uses the task's step
            checker (the oracle PRM) when the mode needs a PRM.
        mode: ``"outcome"``, ``"process"`` or ``"both"``.
        aggregation: How step scores combine: ``"min"``, ``"last"``, ``"product"``, ``"mean"``.
        process_weight: Weight of the process score.
        outcome_weight: Weight of the outcome score.
        separator: Step separator in completion text.
    """
    task = make_task(task)
    process_model = _resolve_prm(task, prm, mode, aggregation)
    if not separator:
        raise ValueError("separator is empty; use a non-empty text such as '\\n'")

    def reward(completions: Sequence[Any], **columns: Any) -> list[float]:
        problems = [_row_problem(task, i, columns) for i in range(len(completions))]
        texts = [completion_text(c, task, separator) for c in completions]
        parsed = [split_steps(task, text, separator) for text in texts]

        outcome = np.zeros(len(completions))
        if mode in ("outcome", "both"):
            for i, (problem, (_, final)) in enumerate(zip(problems, parsed, strict=True)):
                if final is not None:
                    outcome[i] = float(task.verify(problem, final))

        process = np.zeros(len(completions))
        if process_model is not None:
            queries: list[StepQuery] = []
            owners: list[int] = []
            for i, (problem, (steps, final)) in enumerate(zip(problems, parsed, strict=True)):
                solution = steps + ([final] if final is not None else [])
                for k, step in enumerate(solution):
                    queries.append(StepQuery(problem, tuple(solution[:k]), step))
                    owners.append(i)
            # One batched PRM call for every step of every completion.
            scores = process_model.score(queries) if queries else np.zeros(0)
            owners_array = np.asarray(owners, dtype=np.int64)
            for i in range(len(completions)):
                process[i] = aggregate(scores[owners_array == i], aggregation)

        total = outcome_weight * outcome + process_weight * process
        return [float(value) for value in total]

    # TRL logs each reward function under its __name__.
    reward.__name__ = f"reasoning_{mode}_reward"
    return reward


# --------------------------------------------------------------------------- environment


class ReasoningToolEnv:
    """A Reasoning environment in the form ``GRPOTrainer(environment_factory=...)`` expects.

    TRL 1.16 creates instances with no arguments (so pass a factory from
    :func:`make_environment_factory`), calls ``reset(**row)`` with the dataset row of each
    rollout, exposes every public method other than ``reset`` and ``get_reward`` to the
    model as a tool, and calls ``get_reward()`` once the rollout ends. The tools are
    ``step`` and ``answer``; each call is one action of the wrapped ReasoningEnv.

    Args:
        env: The ReasoningEnv to drive (one per instance, because TRL runs rollouts of a
            batch side by side).
        reward_mode: ``"outcome"``, ``"process"`` (aggregate of the PRM scores of the
            steps taken) or ``"both"``.
        aggregation: Aggregation of step scores for the process reward.
        process_weight: Weight of the process reward.
        outcome_weight: Weight of the outcome reward.
    """

    def __init__(
        self,
        env: Any,
        reward_mode: str = "outcome",
        aggregation: str = "min",
        process_weight: float = 1.0,
        outcome_weight: float = 1.0,
    ):
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode={reward_mode!r} is not one of {REWARD_MODES}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={aggregation!r} is not one of {sorted(AGGREGATIONS)}")
        if reward_mode != "outcome" and env.prm is None:
            raise ValueError(
                f"reward_mode={reward_mode!r} needs a PRM, but the environment has none; create "
                "the ReasoningEnv with prm=... or use reward_mode='outcome'"
            )
        self._env = env
        self._reward_mode = reward_mode
        self._aggregation = aggregation
        self._process_weight = float(process_weight)
        self._outcome_weight = float(outcome_weight)
        self._done = True
        self._outcome = 0.0
        self._problem_index: int | None = None

    def reset(self, **row: Any) -> str | None:
        """Start an episode on the row's problem.

        Args:
            **row: The dataset row. ``problem_index`` (and ``problem_seed``) select the
                problem; without them the environment draws one.

        Returns:
            The question when the row's prompt does not already end with it (TRL then
            appends it to the last user message), else None.
        """
        index = row.get(PROBLEM_COLUMN)
        seed = int(row.get(SEED_COLUMN) or 0)
        if index is None:
            self._env.reset()
        else:
            problem = self._env.task.problem(int(index), seed=seed)
            self._env.reset(options={"problem": problem})
        self._problem_index = None if index is None else int(index)
        self._done = False
        self._outcome = 0.0

        question = self._env.problem.question
        prompt = row.get("prompt")
        last = prompt[-1].get("content") if isinstance(prompt, list) and prompt else prompt
        if isinstance(last, str) and question in last:
            return None
        return question

    def step(self, text: str) -> str:
        """Write one reasoning step of the solution.

        Args:
            text: One step of the solution, for example "3 * 7 = 21".

        Returns:
            A confirmation with the number of steps written so far.
        """
        if self._done:
            return "The solution is finished; no more steps are accepted."
        if is_final_step(self._env.task, text):
            return self.answer(text)
        return self._act(str(text))

    def answer(self, text: str) -> str:
        """Give the final answer and finish the solution.

        Args:
            text: The final answer, for example "42".

        Returns:
            A confirmation that the answer was recorded.
        """
        if self._done:
            return "The solution is finished; no more answers are accepted."
        return self._act(_as_final_answer(self._env.task, text))

    def get_reward(self) -> float:
        """Return the episode's reward: outcome, process aggregate, or their weighted sum."""
        reward = 0.0
        if self._reward_mode in ("outcome", "both"):
            reward += self._outcome_weight * self._outcome
        if self._reward_mode in ("process", "both"):
            scores = [s.score for s in self._env.state.steps if s.score is not None]
            reward += self._process_weight * aggregate(scores, self._aggregation)
        return float(reward)

    @property
    def problem_index(self) -> int | None:
        """Index of the current problem, or None when the environment drew it."""
        return self._problem_index

    @property
    def env(self) -> Any:
        """The wrapped ReasoningEnv."""
        return self._env

    def _act(self, text: str) -> str:
        _, _, terminated, truncated, info = self._env.step(text)
        if info.get("invalid_step"):
            message = "The step was empty and was not counted."
        elif terminated:
            self._outcome = float(info.get("outcome_score", 0.0))
            message = "The final answer was recorded."
        else:
            message = f"Step {info['step'] + 1} recorded."
        if truncated:
            message += " The step limit was reached; the solution is finished."
        self._done = terminated or truncated
        return message


def make_environment_factory(
    task: str | Task,
    tokenizer: Any = None,
    prm: Any = "auto",
    reward_mode: str = "outcome",
    aggregation: str = "min",
    process_weight: float = 1.0,
    outcome_weight: float = 1.0,
    max_steps: int = 16,
    task_kwargs: Mapping[str, Any] | None = None,
    **env_kwargs: Any,
) -> Callable[[], ReasoningToolEnv]:
    """Return a no-argument factory of :class:`ReasoningToolEnv` for ``environment_factory``.

    The task is built once and shared, so every instance numbers problems the same way.
    ``tokenizer`` only sets how the environment counts context tokens; pass the model's
    tokenizer so ``max_context_tokens`` means model tokens. Other keyword arguments go to
    :class:`reasoning_gym.env.ReasoningEnv`.
    """
    from reasoning_gym.env import ReasoningEnv

    shared_task = make_task(task, **dict(task_kwargs or {}))
    if reward_mode not in REWARD_MODES:
        raise ValueError(f"reward_mode={reward_mode!r} is not one of {REWARD_MODES}")
    env_prm = prm if reward_mode != "outcome" else None
    if reward_mode != "outcome":
        # Build the PRM once so that all instances share it and its cache.
        from reasoning_gym.prm import make_prm

        env_prm = make_prm(prm, task=shared_task)

    def factory() -> ReasoningToolEnv:
        env = ReasoningEnv(
            task=shared_task,
            tokenizer=tokenizer,
            prm=env_prm,
            reward_mode="process+outcome",
            max_steps=max_steps,
            **env_kwargs,
        )
        return ReasoningToolEnv(
            env,
            reward_mode=reward_mode,
            aggregation=aggregation,
            process_weight=process_weight,
            outcome_weight=outcome_weight,
        )

    return factory


# --------------------------------------------------------------------------- tokenizer and model


def prepare_tool_tokenizer(tokenizer: Any, chat_template: str = "auto") -> Any:
    """Return a copy of ``tokenizer`` whose chat template TRL 1.16 can use for tool calls.

    Args:
        tokenizer: A Hugging Face tokenizer.
        chat_template: ``"auto"`` keeps a template that TRL supports and replaces a ChatML
            one (``<|im_start|>`` markers, as in SmolLM2) with TRL's Qwen2.5 template;
            ``"keep"`` never replaces it; ``"qwen2_5"`` always installs the Qwen2.5 template.

    Raises:
        ValueError: The template cannot render tool calls, or TRL has no response parser
            for it, and it was not replaced.
    """
    from trl.chat_template_utils import (
        add_response_schema,
        qwen2_5_chat_template,
        supports_tool_calling,
    )

    if chat_template not in CHAT_TEMPLATE_CHOICES:
        raise ValueError(f"chat_template={chat_template!r} is not one of {CHAT_TEMPLATE_CHOICES}")
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    template = getattr(tokenizer, "chat_template", None)
    is_chatml = isinstance(template, str) and "<|im_start|>" in template
    if chat_template == "qwen2_5" or (
        chat_template == "auto" and not _tool_template_usable(tokenizer) and is_chatml
    ):
        _require_tokens(tokenizer, ("<|im_start|>", "<|im_end|>"))
        if chat_template == "auto":
            logger.warning(
                "the tokenizer's ChatML template cannot render tool calls for TRL; using TRL's "
                "Qwen2.5 template, which has the same <|im_start|>/<|im_end|> markers"
            )
        tokenizer.chat_template = qwen2_5_chat_template
        for attribute in ("response_template", "response_schema"):
            if getattr(tokenizer, attribute, None) is not None:
                setattr(tokenizer, attribute, None)

    if not supports_tool_calling(tokenizer):
        raise ValueError(
            "the tokenizer's chat template cannot render tool calls (TRL renders a "
            "user -> assistant tool call -> tool conversation and checks the output). Use a "
            "model whose template supports tools (Qwen2.5/Qwen3, Llama 3.1/3.2), or a ChatML "
            "tokenizer with chat_template='qwen2_5'"
        )
    if not _has_response_parser(tokenizer):
        try:
            add_response_schema(tokenizer)
        except ValueError as exc:
            raise ValueError(
                "TRL 1.16 has no response parser for this chat template, so it could not read "
                "the model's tool calls. Set tokenizer.response_template yourself, use a model "
                "with a template TRL knows (Qwen2.5/Qwen3, Llama 3.1/3.2, GLM-4, GPT-OSS), or "
                f"pass chat_template='qwen2_5' for a ChatML tokenizer ({exc})"
            ) from exc
    return tokenizer


def _has_response_parser(tokenizer: Any) -> bool:
    return any(
        getattr(tokenizer, name, None) is not None
        for name in ("response_template", "response_schema")
    )


def _tool_template_usable(tokenizer: Any) -> bool:
    """Return whether the template renders tool calls and TRL can parse its responses."""
    from trl.chat_template_utils import add_response_schema, supports_tool_calling

    if not supports_tool_calling(tokenizer):
        return False
    if _has_response_parser(tokenizer):
        return True
    try:
        add_response_schema(copy.deepcopy(tokenizer))
    except ValueError:
        return False
    return True


def _require_tokens(tokenizer: Any, tokens: Sequence[str]) -> None:
    vocab = tokenizer.get_vocab()
    missing = [token for token in tokens if token not in vocab]
    if missing:
        raise ValueError(
            f"the Qwen2.5 chat template needs the special tokens {missing}, which the tokenizer "
            "lacks; use a ChatML tokenizer or a model whose own template supports tool calls"
        )


def _is_gguf_model(model: Any) -> bool:
    quantization = getattr(model.config, "quantization_config", None)
    method = getattr(quantization, "quant_method", None)
    if method is None and isinstance(quantization, Mapping):
        method = quantization.get("quant_method")
    return (
        str(method).lower().endswith("gguf") or getattr(model.config, "gguf_file", None) is not None
    )


def prepare_model(model: Any, output_dir: str | os.PathLike, needs_reference: bool = False) -> Any:
    """Return a model (object or folder) that TRL 1.16 can train.

    Args:
        model: A ``PreTrainedModel``, a short model name, a local folder, a hub id, or
            a ``.gguf`` file.
        output_dir: Folder for converted or saved copies (``base_model`` inside it).
        needs_reference: Whether the trainer loads a reference model (``beta > 0``).
            TRL loads it from ``model.config._name_or_path``, so an in-memory model whose
            path is not a saved model folder is saved to ``output_dir/base_model`` first.

    Raises:
        ValueError: ``model`` was loaded from a GGUF file in memory.
    """
    base_dir = Path(output_dir) / "base_model"
    if isinstance(model, (str, os.PathLike)):
        path = Path(str(model)).expanduser()
        if path.suffix == ".gguf":
            if not path.is_file():
                raise FileNotFoundError(f"GGUF file {path} does not exist")
            from reasoning_gym.models import convert_gguf

            base_dir.mkdir(parents=True, exist_ok=True)
            logger.info("converting %s to a plain safetensors folder %s", path, base_dir)
            convert_gguf(path, base_dir)
            return str(base_dir)
        from reasoning_gym.models import resolve_model_path

        return resolve_model_path(str(model))

    if not hasattr(model, "config") or not hasattr(model, "save_pretrained"):
        raise TypeError(f"model={model!r} is not a PreTrainedModel, a model name or a folder")
    if _is_gguf_model(model):
        raise ValueError(
            "the model was loaded from a GGUF file; TRL cannot train it. Save it as a plain "
            "folder first (reasoning_gym.models.convert_gguf(GGUF_PATH, FOLDER), or pass the "
            ".gguf path to prepare_model) and train from that folder"
        )
    source = getattr(model.config, "_name_or_path", "") or ""
    if needs_reference and not (Path(source) / "config.json").is_file():
        base_dir.mkdir(parents=True, exist_ok=True)
        logger.info(
            "saving the model to %s because beta > 0 needs a reference model loaded from disk",
            base_dir,
        )
        model.save_pretrained(base_dir)
        model.config._name_or_path = str(base_dir)
    return model


# --------------------------------------------------------------------------- trainers


def make_grpo_trainer(
    model: Any,
    tokenizer: Any,
    task: str | Task,
    args: Any,
    train_dataset: Any = None,
    num_problems: int = 64,
    seed: int = 0,
    use_environment: bool = True,
    reward_mode: str = "outcome",
    prm: Any = None,
    aggregation: str = "min",
    chat_template: str = "auto",
    extra_reward_funcs: Sequence[Callable[..., list[float]]] = (),
    env_kwargs: Mapping[str, Any] | None = None,
    task_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Build a ``trl.GRPOTrainer`` on a reasoning task.

    Args:
        model: A ``PreTrainedModel``, a short model name, a folder or a ``.gguf`` file
            (see :func:`prepare_model`).
        tokenizer: The model's Hugging Face tokenizer.
        task: Task name or Task.
        args: A ``trl.GRPOConfig``.
        train_dataset: Rows with ``prompt`` and ``problem_index``; default
            :func:`build_dataset` with ``num_problems`` problems of ``seed``.
        num_problems: Problems in the default dataset.
        seed: Seed of the default dataset's problems.
        use_environment: Train through :class:`ReasoningToolEnv` tools (the environment
            scores each rollout) instead of scoring free-text completions with
            :func:`make_reward_fn`.
        reward_mode: ``"outcome"``, ``"process"`` or ``"both"``.
        prm: PRM spec for the process reward (None: the task's step checker).
        aggregation: Aggregation of step scores.
        chat_template: See :func:`prepare_tool_tokenizer` (environment mode only).
        extra_reward_funcs: Further TRL reward functions, added with weight 1.
        env_kwargs: Keyword arguments of :class:`reasoning_gym.env.ReasoningEnv`.
        task_kwargs: Options of the task factory when ``task`` is a name.
    """
    from trl import GRPOTrainer

    task = make_task(task, **dict(task_kwargs or {}))
    if args.remove_unused_columns:
        raise ValueError(
            "remove_unused_columns=True would drop the problem_index column that ties each "
            "completion to its problem; set remove_unused_columns=False"
        )
    model = prepare_model(model, args.output_dir, needs_reference=args.beta > 0)
    if train_dataset is None:
        train_dataset = build_dataset(
            task, num_problems=num_problems, seed=seed, for_tools=use_environment
        )
    reward_funcs = list(extra_reward_funcs)
    if use_environment:
        tokenizer = prepare_tool_tokenizer(tokenizer, chat_template=chat_template)
        factory = make_environment_factory(
            task,
            tokenizer=tokenizer,
            prm="auto" if prm is None else prm,
            reward_mode=reward_mode,
            aggregation=aggregation,
            **dict(env_kwargs or {}),
        )
        return GRPOTrainer(
            model=model,
            reward_funcs=reward_funcs or None,
            args=args,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            environment_factory=factory,
        )
    reward_funcs.insert(0, make_reward_fn(task, prm=prm, mode=reward_mode, aggregation=aggregation))
    return GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=train_dataset,
        processing_class=_padded_left(tokenizer),
    )


def make_rloo_trainer(
    model: Any,
    tokenizer: Any,
    task: str | Task,
    args: Any,
    train_dataset: Any = None,
    num_problems: int = 64,
    seed: int = 0,
    reward_mode: str = "outcome",
    prm: Any = None,
    aggregation: str = "min",
    extra_reward_funcs: Sequence[Callable[..., list[float]]] = (),
    task_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Build a ``trl.RLOOTrainer`` whose reward comes from :func:`make_reward_fn`.

    Arguments are those of :func:`make_grpo_trainer`; ``args`` is a ``trl.RLOOConfig``
    (its default ``beta=0.05`` needs a reference model, which :func:`prepare_model` saves).
    """
    from trl import RLOOTrainer

    task = make_task(task, **dict(task_kwargs or {}))
    if args.remove_unused_columns:
        raise ValueError(
            "remove_unused_columns=True would drop the problem_index column that ties each "
            "completion to its problem; set remove_unused_columns=False"
        )
    model = prepare_model(model, args.output_dir, needs_reference=args.beta > 0)
    if train_dataset is None:
        train_dataset = build_dataset(task, num_problems=num_problems, seed=seed)
    reward_funcs = [make_reward_fn(task, prm=prm, mode=reward_mode, aggregation=aggregation)]
    reward_funcs += list(extra_reward_funcs)
    return RLOOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=train_dataset,
        processing_class=_padded_left(tokenizer),
    )


def _padded_left(tokenizer: Any) -> Any:
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
