"""STaR: self-taught reasoner training (Zelikman et al., 2022, arXiv:2203.14465).

Each round:

1. The current policy solves every training problem step by step through a
   :class:`reasoning_gym.env.ReasoningEnv` (its proposals are token-id actions).
2. Solutions whose final answer the task verifies are kept ("direct").
3. Rationalization: for each problem that was not solved, the policy tries again on a
   copy of the problem whose question ends with a hint giving the gold answer. A
   rationale is kept only if it reaches that answer and does not quote the hint. The kept
   training example pairs the ORIGINAL question's prompt with the rationale's steps, so the
   hint never appears in training text.
4. The model is fine-tuned with TRL's SFTTrainer on the kept examples (loss on the
   rationale tokens only), starting again from the base model as in the original method,
   or from the previous round's model with ``continue_training=True``.
5. The new model is evaluated greedily on held-out problems.

Each finished round is checkpointed under ``output_dir/round_<k>/`` (model folder and
``round.json``, each written to a temporary name and renamed), so an interrupted run
resumes after the last finished round. ``history.json`` and ``star_rounds.png`` summarise
all rounds; round 0 is the base model's held-out accuracy.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasoning_gym.policies.base import SamplingConfig, StepPolicy
from reasoning_gym.tasks.base import Problem, Task, make_task

logger = logging.getLogger(__name__)

DEFAULT_HINT_TEMPLATE = "{question} (Hint: the answer is {answer}.)"
ROUND_JSON = "round.json"
HISTORY_JSON = "history.json"
PLOT_PNG = "star_rounds.png"


@dataclass
class StarConfig:
    """Settings of a STaR run.

    Attributes:
        rounds: Number of STaR rounds (generate, filter, fine-tune, evaluate).
        num_train_problems: Training problems, indices ``train_start`` onwards.
        num_eval_problems: Held-out problems, indices ``eval_start`` onwards.
        train_start: First training problem index.
        eval_start: First held-out index; None places it right after the training problems.
        task_seed: Seed of procedural tasks.
        rationalize: Whether failed problems get a second try with the answer as a hint.
        hint_template: Format of the hinted question; must contain ``{question}`` and
            ``{answer}``.
        temperature: Sampling temperature while generating rationales (0 is greedy);
            evaluation is always greedy.
        max_steps: Steps per episode before truncation.
        max_step_tokens: Tokens per generated step.
        max_context_tokens: Context length at which an episode is truncated.
        step_separator: Text between steps (the environment's and the policy's).
        continue_training: Fine-tune the previous round's model instead of the base model.
        learning_rate: SFT learning rate.
        num_train_epochs: SFT epochs per round.
        batch_size: SFT batch size per device.
        device: Torch device for generation and training.
        seed: Seed of sampling and of SFT data order.
        output_dir: Folder of checkpoints, round JSON files and the plot.
    """

    rounds: int = 3
    num_train_problems: int = 64
    num_eval_problems: int = 32
    train_start: int = 0
    eval_start: int | None = None
    task_seed: int = 0
    rationalize: bool = True
    hint_template: str = DEFAULT_HINT_TEMPLATE
    temperature: float = 0.0
    max_steps: int = 8
    max_step_tokens: int = 64
    max_context_tokens: int = 1024
    step_separator: str = "\n"
    continue_training: bool = False
    learning_rate: float = 5e-5
    num_train_epochs: float = 2.0
    batch_size: int = 8
    device: str = "cpu"
    seed: int = 0
    output_dir: str = "star_output"

    def __post_init__(self) -> None:
        for name in ("rounds", "num_train_problems", "num_eval_problems", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("max_step_tokens", "max_context_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.train_start < 0:
            raise ValueError(f"train_start={self.train_start} must be non-negative")
        if self.eval_start is None:
            self.eval_start = self.train_start + self.num_train_problems
        train = range(self.train_start, self.train_start + self.num_train_problems)
        held_out = range(self.eval_start, self.eval_start + self.num_eval_problems)
        if self.eval_start < 0 or (set(train) & set(held_out)):
            raise ValueError(
                f"held-out problems {held_out.start}..{held_out.stop - 1} overlap the training "
                f"problems {train.start}..{train.stop - 1}; choose eval_start outside that range"
            )
        if "{question}" not in self.hint_template or "{answer}" not in self.hint_template:
            raise ValueError(
                f"hint_template={self.hint_template!r} must contain {{question}} and {{answer}}"
            )
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} is negative; use 0 for greedy")
        if self.learning_rate <= 0 or self.num_train_epochs <= 0:
            raise ValueError(
                f"learning_rate={self.learning_rate} and num_train_epochs={self.num_train_epochs} "
                "must be positive"
            )
        if not self.step_separator:
            raise ValueError("step_separator is empty; use a non-empty text such as '\\n'")

    @property
    def train_indices(self) -> range:
        return range(self.train_start, self.train_start + self.num_train_problems)

    @property
    def eval_indices(self) -> range:
        start = int(self.eval_start or 0)
        return range(start, start + self.num_eval_problems)


@dataclass
class RationaleExample:
    """One kept (question, rationale, answer) training example.

    Attributes:
        problem_id: Id of the original problem.
        question: The original question (never the hinted one).
        answer: The gold answer.
        steps: Text of each rationale step, the final answer last.
        source: ``"direct"`` or ``"rationalization"``.
        input_ids: Prompt ids of the original question followed by the step ids, each
            followed by the separator ids, then the end-of-sequence id.
        labels: ``input_ids`` with the prompt positions set to -100.
    """

    problem_id: str
    question: str
    answer: str
    steps: list[str]
    source: str
    input_ids: list[int] = field(repr=False)
    labels: list[int] = field(repr=False)


@dataclass
class RoundResult:
    """Statistics of one STaR round (round 0: the base model, evaluated only).

    Attributes:
        round: Round number, from 1 (0 for the base model).
        attempted: Training problems attempted.
        kept_direct: Problems solved directly whose rationale was kept.
        kept_rationalized: Problems kept through rationalization.
        rationalization_attempts: Problems tried again with the hint.
        rejected_hint_leaks: Rationalizations dropped because a step quoted the hint.
        train_examples: Examples the model was fine-tuned on.
        heldout_correct: Held-out problems solved by this round's model.
        heldout_total: Held-out problems evaluated.
        heldout_accuracy: ``heldout_correct / heldout_total``.
        seconds: Wall-clock time of the round.
    """

    round: int
    attempted: int = 0
    kept_direct: int = 0
    kept_rationalized: int = 0
    rationalization_attempts: int = 0
    rejected_hint_leaks: int = 0
    train_examples: int = 0
    heldout_correct: int = 0
    heldout_total: int = 0
    heldout_accuracy: float = 0.0
    seconds: float = 0.0


# --------------------------------------------------------------------------- rationales


def hinted_problem(problem: Problem, template: str = DEFAULT_HINT_TEMPLATE) -> Problem:
    """Return a copy of ``problem`` whose question carries the gold answer as a hint."""
    return Problem(
        id=f"{problem.id}#hint",
        question=template.format(question=problem.question, answer=problem.answer),
        answer=problem.answer,
        gold_steps=None,
        metadata={**dict(problem.metadata), "hinted": True},
    )


def hint_text(problem: Problem, template: str = DEFAULT_HINT_TEMPLATE) -> str:
    """Return the text the hint adds to the question (the template without the question)."""
    return template.format(question="", answer=problem.answer).strip()


def _quotes_hint(steps: Sequence[str], hint: str) -> bool:
    """Return whether a step copies the hint sentence or its opening word, such as "Hint"."""
    opening = hint.split(":", 1)[0].strip(" ([{").lower() if ":" in hint else hint.lower()
    text = "\n".join(steps).lower()
    return hint.lower() in text or (len(opening) >= 3 and opening in text)


def training_example(
    env: Any,
    problem: Problem,
    step_ids: Sequence[np.ndarray],
    step_texts: Sequence[str],
    source: str,
    eos_token_id: int | None,
) -> RationaleExample:
    """Pair the prompt of ``problem`` (the original question) with rationale step ids."""
    prompt = [int(i) for i in env.prompt_ids(problem)]
    separator = [int(i) for i in env.separator_ids]
    completion: list[int] = []
    for ids in step_ids:
        completion += [int(i) for i in ids] + separator
    if eos_token_id is not None:
        completion.append(int(eos_token_id))
    return RationaleExample(
        problem_id=problem.id,
        question=problem.question,
        answer=problem.answer,
        steps=list(step_texts),
        source=source,
        input_ids=prompt + completion,
        labels=[-100] * len(prompt) + completion,
    )


def _attempt(
    env: Any, policy: StepPolicy, problem: Problem, sampling: SamplingConfig
) -> tuple[bool, list[np.ndarray], list[str]]:
    """Play one episode on ``problem``; return (verified correct, step ids, step texts)."""
    from reasoning_gym.episodes import run_episode

    record = run_episode(env, policy, options={"problem": problem}, sampling=sampling)
    state = env.unwrapped.get_state()
    steps = [step for step in state.steps if not step.invalid]
    return record.correct, [step.ids for step in steps], [step.text for step in steps]


def collect_rationales(
    env: Any,
    policy: StepPolicy,
    problems: Sequence[Problem],
    rationalize: bool = True,
    hint_template: str = DEFAULT_HINT_TEMPLATE,
    sampling: SamplingConfig | None = None,
    eos_token_id: int | None = None,
    progress: bool = False,
) -> tuple[list[RationaleExample], RoundResult]:
    """Generate rationales for ``problems`` and keep those whose answer verifies.

    Args:
        env: The ReasoningEnv; its verifier decides correctness.
        policy: Step policy using the environment's tokenizer.
        problems: Training problems.
        rationalize: Whether to retry failed problems with the answer as a hint.
        hint_template: Format of the hinted question.
        sampling: Sampling settings of the policy.
        eos_token_id: Appended to every training example when not None.
        progress: Whether to show a tqdm progress bar.

    Returns:
        The kept examples and a :class:`RoundResult` with the counts filled in.
    """
    from tqdm.auto import tqdm

    sampling = sampling or SamplingConfig()
    stats = RoundResult(round=0, attempted=len(problems))
    kept: list[RationaleExample] = []
    for problem in tqdm(problems, desc="rationales", disable=not progress):
        correct, ids, texts = _attempt(env, policy, problem, sampling)
        if correct:
            kept.append(training_example(env, problem, ids, texts, "direct", eos_token_id))
            stats.kept_direct += 1
            continue
        if not rationalize:
            continue
        stats.rationalization_attempts += 1
        hinted = hinted_problem(problem, hint_template)
        correct, ids, texts = _attempt(env, policy, hinted, sampling)
        if not correct:
            continue
        if _quotes_hint(texts, hint_text(problem, hint_template)):
            stats.rejected_hint_leaks += 1
            continue
        # The example pairs the ORIGINAL problem's prompt with the hinted episode's steps.
        example = training_example(env, problem, ids, texts, "rationalization", eos_token_id)
        kept.append(example)
        stats.kept_rationalized += 1
    stats.train_examples = len(kept)
    return kept, stats


def evaluate(
    env: Any, policy: StepPolicy, problems: Sequence[Problem], progress: bool = False
) -> tuple[int, int]:
    """Solve ``problems`` greedily; return (number verified correct, number of problems)."""
    from tqdm.auto import tqdm

    greedy = SamplingConfig(temperature=0.0, max_step_tokens=policy.sampling.max_step_tokens)
    correct = 0
    for problem in tqdm(problems, desc="held-out", disable=not progress):
        solved, _, _ = _attempt(env, policy, problem, greedy)
        correct += int(solved)
    return correct, len(problems)


# --------------------------------------------------------------------------- fine-tuning


def fine_tune(
    model: Any,
    tokenizer: Any,
    examples: Sequence[RationaleExample],
    config: StarConfig,
    work_dir: str | os.PathLike,
) -> Any:
    """Fine-tune ``model`` with TRL's SFTTrainer on the kept examples; returns the model.

    The dataset is already tokenized (``input_ids`` and ``labels``), so the tokens
    trained on are exactly the ones the environment saw, and the prompt is masked out.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    dataset = Dataset.from_dict(
        {
            "input_ids": [example.input_ids for example in examples],
            "labels": [example.labels for example in examples],
        }
    )
    args = SFTConfig(
        output_dir=str(work_dir),
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        per_device_train_batch_size=config.batch_size,
        use_cpu=config.device == "cpu",
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        max_length=None,
        seed=config.seed,
        bf16=False,
        disable_tqdm=True,
    )
    model.train()
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    model = trainer.model
    model.eval()
    return model


# --------------------------------------------------------------------------- checkpoints


def _write_json_atomic(path: Path, data: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _save_model_atomic(model: Any, tokenizer: Any, folder: Path) -> None:
    temporary = folder.with_name(folder.name + ".tmp")
    if temporary.exists():
        shutil.rmtree(temporary)
    model.save_pretrained(temporary)
    tokenizer.save_pretrained(temporary)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(temporary, folder)


def finished_rounds(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Return the ``round.json`` contents of every finished round, in round order.

    A round counts as finished only when its ``round.json`` exists, and that file is
    written after the round's model folder.
    """
    root = Path(output_dir)
    results = []
    round_number = 0
    while (root / f"round_{round_number}" / ROUND_JSON).is_file():
        path = root / f"round_{round_number}" / ROUND_JSON
        results.append(json.loads(path.read_text(encoding="utf-8")))
        round_number += 1
    return results


def plot_history(history: Sequence[dict[str, Any]], path: str | os.PathLike, title: str) -> None:
    """Plot held-out accuracy and kept examples per round into a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [row["round"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(rounds, [row["heldout_accuracy"] for row in history], marker="o")
    left.set_xlabel("round (0 = base model)")
    left.set_ylabel("held-out accuracy")
    left.set_ylim(0, 1)
    left.grid(alpha=0.3)
    trained = [row for row in history if row["round"] > 0]
    x = np.asarray([row["round"] for row in trained])
    right.bar(x - 0.2, [row["kept_direct"] for row in trained], width=0.4, label="direct")
    right.bar(
        x + 0.2, [row["kept_rationalized"] for row in trained], width=0.4, label="rationalized"
    )
    right.set_xlabel("round")
    right.set_ylabel("kept examples")
    right.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --------------------------------------------------------------------------- trainer


PolicyFactory = Callable[[Any, Any, StarConfig], StepPolicy]


def default_policy_factory(model: Any, tokenizer: Any, config: StarConfig) -> StepPolicy:
    """Return an :class:`reasoning_gym.policies.hf.HFPolicy` for ``model``."""
    from reasoning_gym.policies.hf import HFPolicy

    sampling = SamplingConfig(
        temperature=config.temperature, max_step_tokens=config.max_step_tokens, seed=config.seed
    )
    return HFPolicy(
        model, tokenizer, sampling=sampling, separator=config.step_separator, device=config.device
    )


class StarTrainer:
    """Run STaR rounds on a task, checkpointing each finished round.

    Args:
        model: Base model: a short model name, a saved model folder, or a
            ``PreTrainedModel`` (saved to ``output_dir/base_model`` so that every round
            can restart from it).
        tokenizer: Its Hugging Face tokenizer; None loads it from the model folder.
        task: Task name or Task.
        config: Run settings.
        task_kwargs: Options of the task factory when ``task`` is a name.
        prm: PRM of the environment (only the verifier decides what is kept).
        policy_factory: ``f(model, tokenizer, config) -> StepPolicy``; default HFPolicy.
        progress: Whether to show progress bars.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        task: str | Task,
        config: StarConfig,
        task_kwargs: dict[str, Any] | None = None,
        prm: Any = None,
        policy_factory: PolicyFactory | None = None,
        progress: bool = False,
    ):
        from reasoning_gym.env import ReasoningEnv

        self.config = config
        self.task = make_task(task, **dict(task_kwargs or {}))
        self.output_dir = Path(config.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.base_path = self._base_model_path(model, tokenizer)
        self.tokenizer = tokenizer if tokenizer is not None else self._load_tokenizer()
        self.env = ReasoningEnv(
            task=self.task,
            tokenizer=self.tokenizer,
            prm=prm,
            reward_mode="outcome",
            max_steps=config.max_steps,
            max_step_tokens=config.max_step_tokens,
            max_context_tokens=config.max_context_tokens,
            step_separator=config.step_separator,
        )
        self.policy_factory = policy_factory or default_policy_factory
        self.progress = progress
        self.train_problems = [
            self.task.problem(i, seed=config.task_seed) for i in config.train_indices
        ]
        self.eval_problems = [
            self.task.problem(i, seed=config.task_seed) for i in config.eval_indices
        ]

    # ------------------------------------------------------------------ setup

    def _base_model_path(self, model: Any, tokenizer: Any) -> Path:
        if isinstance(model, (str, os.PathLike)):
            from reasoning_gym.models import resolve_model_path

            resolved = resolve_model_path(str(model))
            if not Path(resolved).is_dir():
                raise ValueError(
                    f"model {model!r} resolved to {resolved!r}, which is not a local folder; "
                    "STaR reloads the base model every round, so pass a saved folder or a "
                    "pulled short name"
                )
            return Path(resolved)
        if tokenizer is None:
            raise ValueError("pass the tokenizer together with an in-memory model")
        folder = self.output_dir / "base_model"
        if not (folder / "config.json").is_file():
            _save_model_atomic(model, tokenizer, folder)
        return folder

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.base_path)

    def _load_model(self, path: Path) -> Any:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
        model.to(self.config.device)
        model.eval()
        return model

    def _round_dir(self, round_number: int) -> Path:
        return self.output_dir / f"round_{round_number}"

    def _model_path(self, round_number: int) -> Path:
        return self.base_path if round_number == 0 else self._round_dir(round_number) / "model"

    # ------------------------------------------------------------------ rounds

    def _evaluate(self, model: Any) -> tuple[int, int]:
        policy = self.policy_factory(model, self.tokenizer, self.config)
        return evaluate(self.env, policy, self.eval_problems, progress=self.progress)

    def _finish_round(self, result: RoundResult, model: Any | None) -> None:
        folder = self._round_dir(result.round)
        folder.mkdir(parents=True, exist_ok=True)
        if model is not None:
            _save_model_atomic(model, self.tokenizer, folder / "model")
        _write_json_atomic(folder / ROUND_JSON, asdict(result))

    def run_round(self, round_number: int) -> RoundResult:
        """Run round ``round_number`` (from 1), save its checkpoint and return its result."""
        started = time.perf_counter()
        config = self.config
        generator = self._load_model(self._model_path(round_number - 1))
        policy = self.policy_factory(generator, self.tokenizer, config)
        sampling = SamplingConfig(
            temperature=config.temperature,
            max_step_tokens=config.max_step_tokens,
            seed=config.seed + round_number,
        )
        examples, result = collect_rationales(
            self.env,
            policy,
            self.train_problems,
            rationalize=config.rationalize,
            hint_template=config.hint_template,
            sampling=sampling,
            eos_token_id=self.tokenizer.eos_token_id,
            progress=self.progress,
        )
        result.round = round_number
        self._write_examples(round_number, examples)
        logger.info(
            "round %d: %d attempted, %d kept directly, %d kept by rationalization",
            round_number,
            result.attempted,
            result.kept_direct,
            result.kept_rationalized,
        )

        start_from = round_number - 1 if config.continue_training else 0
        model = generator if start_from == round_number - 1 else None
        if model is None:
            del generator
            model = self._load_model(self._model_path(start_from))
        if examples:
            work_dir = self._round_dir(round_number) / "sft"
            model = fine_tune(model, self.tokenizer, examples, config, work_dir)
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            logger.warning(
                "round %d kept no examples; the model is not fine-tuned this round", round_number
            )
        result.heldout_correct, result.heldout_total = self._evaluate(model)
        result.heldout_accuracy = result.heldout_correct / max(result.heldout_total, 1)
        result.seconds = time.perf_counter() - started
        self._finish_round(result, model)
        logger.info(
            "round %d: held-out accuracy %.3f (%d/%d)",
            round_number,
            result.heldout_accuracy,
            result.heldout_correct,
            result.heldout_total,
        )
        return result

    def _write_examples(self, round_number: int, examples: Sequence[RationaleExample]) -> None:
        folder = self._round_dir(round_number)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "examples.jsonl"
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            for example in examples:
                row = {k: v for k, v in asdict(example).items() if k not in ("input_ids", "labels")}
                handle.write(json.dumps(row) + "\n")
        os.replace(temporary, path)

    def run(self) -> list[dict[str, Any]]:
        """Run the missing rounds (resuming after the last finished one); return the history."""
        history = finished_rounds(self.output_dir)
        if history:
            self._check_resumable()
            logger.info("resuming after finished round %d", history[-1]["round"])
        if not history:
            started = time.perf_counter()
            correct, total = self._evaluate(self._load_model(self.base_path))
            base = RoundResult(
                round=0,
                heldout_correct=correct,
                heldout_total=total,
                heldout_accuracy=correct / max(total, 1),
                seconds=time.perf_counter() - started,
            )
            self._finish_round(base, None)
            history.append(asdict(base))
        for round_number in range(len(history), self.config.rounds + 1):
            history.append(asdict(self.run_round(round_number)))
            self._write_history(history)
        self._write_history(history)
        return history

    def _check_resumable(self) -> None:
        """Raise ValueError when the finished rounds in ``output_dir`` used other settings."""
        path = self.output_dir / HISTORY_JSON
        if not path.is_file():
            return
        saved = json.loads(path.read_text(encoding="utf-8"))
        current = asdict(self.config)
        keys = ("num_train_problems", "num_eval_problems", "train_start", "eval_start")
        keys += ("task_seed", "rationalize", "hint_template", "continue_training")
        changed = [k for k in keys if saved.get("config", {}).get(k) != current[k]]
        if saved.get("task") != self.task.name:
            changed.append("task")
        if changed:
            raise ValueError(
                f"{self.output_dir} contains rounds run with different {changed}; use a new "
                "output_dir or the same settings to resume"
            )

    def _write_history(self, history: Sequence[dict[str, Any]]) -> None:
        _write_json_atomic(
            self.output_dir / HISTORY_JSON,
            {"config": asdict(self.config), "task": self.task.name, "rounds": list(history)},
        )
        switch = "on" if self.config.rationalize else "off"
        title = f"STaR on {self.task.name} (rationalization {switch})"
        plot_history(history, self.output_dir / PLOT_PNG, title)
