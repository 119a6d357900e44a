"""Self-reinforced training: the policy and a learned PRM improve each other in rounds.

Round ``k``:

1. Rollout: the current policy samples ``label_samples`` solutions for each of
   ``label_problems`` training problems.
2. Labels: every step is labelled by Monte-Carlo estimation with the current policy
   (soft label = fraction of ``mc_rollouts`` continuations that reach the right answer,
   as in Math-Shepherd) or by the task's exact step checker (``labeler="oracle"``, a
   ceiling). With Monte-Carlo labels on a task with a step checker, the agreement of
   the labels with the checker is recorded too.
3. PRM: the learned PRM continues training from the previous round on all labels so far.
4. Policy: PPO with the PRM score as process reward, or process-supervised GRPO with
   the PRM's step rewards. Each round's trainer starts with a reference model copied
   from the policy at the start of that round.
5. Evaluation: greedy accuracy of the policy on held-out problems and the PRM's
   ProcessBench F1 on gold and corrupted gold solutions labelled by construction and
   checked with the task's step checker, so drift of the PRM is visible.

Before round 1 the initial policy and PRM are evaluated as round 0. Each finished round
is written atomically to ``<output_dir>/rounds/round_<k>/`` (``policy.pt``, ``prm/``,
``labels.jsonl``, ``round.json``); a resumed run loads the newest finished round and
does not repeat it. ``history.json`` and ``curves.png`` summarise all rounds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.ppo.buffer import Episode
from agents.ppo.rollout import play_episodes
from agents.self_reinforced_config import SelfReinforcedConfig
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.prm.data import LabeledSolution, read_jsonl, write_jsonl

logger = logging.getLogger(__name__)

ROUND_PATTERN = re.compile(r"^round_(\d{3,})$")
POLICY_FILE = "policy.pt"
LABELS_FILE = "labels.jsonl"
ROUND_FILE = "round.json"


class SelfReinforcedLoop:
    """Alternates step labelling, PRM training and policy improvement.

    Args:
        config: Settings.
        model: The policy's causal LM; defaults to ``load_model(config.model)``.
        env_fn: Builds the environment; it should use ``reward_mode="outcome"`` and no
            PRM. Defaults to a ReasoningEnv of ``config.env_id`` with the model's tokenizer.
        prm: The initial learned PRM (a :class:`LearnedPRM`); defaults to
            ``LearnedPRM.from_base(config.prm_base or config.model)``.
        tokenizer: Tokenizer of the default environment when ``model`` is given.

    Example:
        >>> loop = SelfReinforcedLoop(SelfReinforcedConfig(model="smollm2-135m", rounds=2))
        >>> history = loop.run()
    """

    def __init__(
        self,
        config: SelfReinforcedConfig,
        model: torch.nn.Module | None = None,
        env_fn: Callable[[], Any] | None = None,
        prm: Any = None,
        tokenizer: Any = None,
    ):
        if not isinstance(config, SelfReinforcedConfig):
            raise TypeError(f"config must be a SelfReinforcedConfig, got {type(config).__name__}")
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.device = torch.device(config.device)
        if env_fn is None:
            if model is not None and tokenizer is None:
                raise ValueError(
                    "a model object was given without its tokenizer; pass tokenizer=... or "
                    "env_fn=... whose environment uses the model's tokenizer"
                )
            env_fn = self._default_env_fn(tokenizer if tokenizer is not None else config.model)
        self.env_fn = env_fn
        self.env = env_fn()
        self.base_env = getattr(self.env, "unwrapped", self.env)
        self.task = self.base_env.task

        if model is None:
            from reasoning_gym.models import load_model

            model = load_model(config.model)
        self.actor = model.to(self.device)
        self.actor.eval()
        if prm is None:
            from reasoning_gym.prm.learned import LearnedPRM

            prm = LearnedPRM.from_base(config.prm_base or config.model, seed=config.seed)
        self.prm = prm
        self.labels: list[LabeledSolution] = []
        self.history: list[dict[str, Any]] = []
        self.completed_rounds = 0
        self._probe: list[LabeledSolution] | None = None
        if config.resume:
            self._resume()

    def _default_env_fn(self, tokenizer: Any) -> Callable[[], Any]:
        from agents.ppo.trainer import env_task_name
        from reasoning_gym.env import ReasoningEnv

        config = self.config

        def env_fn() -> Any:
            return ReasoningEnv(
                task=env_task_name(config.env_id),
                tokenizer=tokenizer,
                prm=None,
                reward_mode="outcome",
                max_steps=config.max_steps,
                max_step_tokens=config.max_step_tokens,
                max_context_tokens=config.max_context_tokens,
                task_kwargs=config.task_kwargs,
            )

        return env_fn

    # ------------------------------------------------------------------ the loop

    def run(self) -> list[dict[str, Any]]:
        """Run the rounds not finished yet; return the records of all rounds (0 included)."""
        if not self.history:
            record = {"round": 0, **self.evaluate()}
            self.history.append(record)
            self._write_round_zero(record)
            self._write_summary()
        while self.completed_rounds < self.config.rounds:
            record = self.run_round(self.completed_rounds + 1)
            self.history.append(record)
            self._write_summary()
        return self.history

    def run_round(self, round_number: int) -> dict[str, Any]:
        """Run round ``round_number`` (label, train the PRM, update the policy, evaluate)."""
        started = time.perf_counter()
        record: dict[str, Any] = {"round": round_number}
        logger.info("round %d: rolling out and labelling", round_number)

        episodes = self.rollout(round_number)
        new_labels, label_stats = self.label(episodes, round_number)
        self.labels.extend(new_labels)
        record.update(label_stats)
        record["labels_total"] = len(self.labels)
        record["label_seconds"] = time.perf_counter() - started

        phase = time.perf_counter()
        record["prm_loss"] = self.train_prm(round_number)
        record["prm_seconds"] = time.perf_counter() - phase

        phase = time.perf_counter()
        record.update(self.improve_policy(round_number))
        record["policy_seconds"] = time.perf_counter() - phase

        record.update(self.evaluate())
        record["seconds"] = time.perf_counter() - started
        self._save_round(round_number, record)
        self.completed_rounds = round_number
        logger.info(
            "round %d finished: accuracy %.3f, PRM F1 %.3f",
            round_number,
            record["accuracy"],
            record["prm_f1"],
        )
        return record

    # ------------------------------------------------------------------ 1-2: rollout and labels

    def rollout(self, round_number: int) -> list[Episode]:
        """Sample ``label_samples`` solutions for each labelled problem of the round."""
        config = self.config
        start = config.round_start(round_number)
        indices, groups = [], []
        for group in range(config.label_problems):
            indices += [start + group] * config.label_samples
            groups += [group] * config.label_samples
        generator = torch.Generator(device=self.device).manual_seed(
            config.seed * 1_000_003 + round_number
        )
        episodes, _ = play_episodes(
            self.env_fn,
            self.actor,
            indices,
            groups,
            config.max_step_tokens,
            config.label_temperature,
            generator,
            self.device,
            env=self.env,
        )
        return episodes

    def step_queries(self, episodes: Sequence[Episode]) -> list[list[StepQuery]]:
        """Build one query per step of each episode, with its context and step ids."""
        separator = np.asarray(self.base_env.separator_ids, dtype=np.int64)
        result = []
        for episode in episodes:
            self.base_env.reset(options={"index": int(episode.problem_index)})
            problem = self.base_env.problem
            queries: list[StepQuery] = []
            texts: list[str] = []
            context = np.asarray(episode.prompt_ids, dtype=np.int64)
            offset = 0
            for length in episode.step_lengths:
                ids = np.asarray(episode.action_ids[offset : offset + length], dtype=np.int64)
                offset += length + episode.separator_length
                text = self.base_env.tokenizer.decode(ids)
                queries.append(StepQuery(problem, tuple(texts), text, context, ids))
                texts.append(text)
                context = np.concatenate([context, ids, separator])
            result.append(queries)
        return result

    def label(
        self, episodes: Sequence[Episode], round_number: int
    ) -> tuple[list[LabeledSolution], dict[str, float]]:
        """Label every step of ``episodes``; return the labelled solutions and statistics."""
        config = self.config
        per_episode = self.step_queries(episodes)
        flat = [query for queries in per_episode for query in queries]
        oracle = self._oracle()
        if config.labeler == "oracle":
            if oracle is None:
                raise ValueError(
                    f"labeler='oracle' needs a task with a step checker; task "
                    f"{self.task.name!r} has none, so use labeler='mc'"
                )
            scores = oracle.score(flat) if flat else np.zeros(0)
        else:
            scores = self._monte_carlo(round_number).score(flat) if flat else np.zeros(0)

        stats: dict[str, float] = {
            "labelled_solutions": float(len(episodes)),
            "labelled_steps": float(len(flat)),
            "rollout_correct_rate": float(np.mean([e.correct for e in episodes]))
            if episodes
            else math.nan,
            "label_mean": float(np.mean(scores)) if len(scores) else math.nan,
            "label_oracle_agreement": math.nan,
        }
        if oracle is not None and config.labeler == "mc" and flat:
            exact = oracle.score(flat)
            stats["label_oracle_agreement"] = float(np.mean((scores >= 0.5) == (exact >= 0.5)))

        solutions, offset = [], 0
        for episode, queries in zip(episodes, per_episode, strict=True):
            labels = [float(score) for score in scores[offset : offset + len(queries)]]
            offset += len(queries)
            if not queries:
                continue
            meta = {
                "round": round_number,
                "problem_index": int(episode.problem_index),
                "labeler": config.labeler,
                "correct": bool(episode.correct),
            }
            completions = [query.step for query in queries]
            solutions.append(
                LabeledSolution(queries[0].problem.question, completions, labels, meta)
            )
        return solutions, stats

    def _oracle(self) -> ProcessRewardModel | None:
        if not self.task.has_step_checker:
            return None
        from reasoning_gym.prm.oracle import OraclePRM

        return OraclePRM(self.task)

    def _monte_carlo(self, round_number: int) -> ProcessRewardModel:
        from reasoning_gym.policies.base import SamplingConfig
        from reasoning_gym.policies.hf import HFPolicy
        from reasoning_gym.prm.monte_carlo import MonteCarloPRM

        config = self.config
        sampling = SamplingConfig(
            temperature=config.label_temperature,
            max_step_tokens=config.max_step_tokens,
            seed=config.seed * 1_000_003 + round_number,
        )
        policy = HFPolicy(
            self.actor,
            self.base_env.tokenizer,
            sampling=sampling,
            separator=self.base_env.step_separator,
            device=config.device,
        )
        return MonteCarloPRM(
            policy,
            self.task,
            k=config.mc_rollouts,
            label="soft",
            sampling=sampling,
            max_steps=config.max_steps,
            separator_ids=self.base_env.separator_ids,
        )

    # ------------------------------------------------------------------ 3: PRM

    def train_prm(self, round_number: int) -> float:
        """Continue training the PRM on all labels; return the mean loss of the round.

        The weights carry over from the previous round, but the AdamW state and the
        learning-rate warm-up start afresh every round.
        """
        from reasoning_gym.prm.training import PRMTrainConfig, train_prm

        config = self.config
        settings = PRMTrainConfig(
            max_steps=config.prm_train_steps,
            batch_size=config.prm_batch_size,
            learning_rate=config.prm_learning_rate,
            warmup_steps=min(10, config.prm_train_steps),
            checkpoint_every=0,
            log_every=max(config.prm_train_steps, 1),
            seed=config.seed * 1_000_003 + round_number,
        )
        result = train_prm(self.prm, self.labels, settings, progress=config.progress_bar)
        return float(np.mean(result.losses)) if result.losses else math.nan

    # ------------------------------------------------------------------ 4: policy

    def improve_policy(self, round_number: int) -> dict[str, float]:
        """Run ``updates_per_round`` policy updates with the current PRM.

        ``policy_overrides`` replace the settings built here, the seed and problem range
        included.
        """
        config = self.config
        work_dir = self.output_dir / "work" / f"round_{round_number:03d}"
        shutil.rmtree(work_dir, ignore_errors=True)  # an interrupted round starts over
        common = {
            "env_id": config.env_id,
            "model": config.model,
            "task_kwargs": dict(config.task_kwargs),
            "max_steps": config.max_steps,
            "max_step_tokens": config.max_step_tokens,
            "max_context_tokens": config.max_context_tokens,
            "num_updates": config.updates_per_round,
            "episodes_per_update": config.episodes_per_update,
            "learning_rate": config.learning_rate,
            "kl_coef": config.kl_coef,
            "seed": config.seed * 1_000_003 + round_number,
            "problem_offset": config.round_start(round_number) + config.label_problems,
            "output_dir": str(work_dir),
            "checkpoint_every": 0,
            "resume": False,
            "tensorboard": False,
            "progress_bar": config.progress_bar,
            "eval_every": 0,
            "device": config.device,
        }
        prm_label = f"learned (self-reinforced round {round_number})"
        if config.policy_update == "grpo-process":
            from agents.grpo_process.config import GRPOProcessConfig
            from agents.grpo_process.trainer import GRPOProcessTrainer

            settings = GRPOProcessConfig(
                **{
                    **common,
                    "samples_per_problem": config.group_size,
                    "step_prm": prm_label,
                    "reward_source": config.grpo_reward_source,
                    **config.policy_overrides,
                }
            )
            trainer = GRPOProcessTrainer(
                settings, env_fn=self.env_fn, model=self.actor, prm=self.prm
            )
        else:
            from agents.ppo.config import PPOConfig
            from agents.ppo.trainer import PPOTrainer

            settings = PPOConfig(
                **{
                    **common,
                    "reward_mode": "process+outcome",
                    "prm": prm_label,
                    **config.policy_overrides,
                }
            )
            trainer = PPOTrainer(settings, env_fn=self._env_fn_with_prm(), model=self.actor)
        history = trainer.train()
        self.actor = trainer.policy.actor
        self.actor.eval()
        shutil.rmtree(work_dir, ignore_errors=True)
        rates = [m.get("rollout/correct_rate", math.nan) for m in history]
        return {
            "policy_updates": float(len(history)),
            "policy_rollout_correct_rate": float(np.nanmean(rates)) if rates else math.nan,
        }

    def _env_fn_with_prm(self) -> Callable[[], Any]:
        """Build an environment factory for PPO: the task of ``env_fn`` with PRM rewards."""
        from reasoning_gym.env import ReasoningEnv

        base = self.base_env
        config = self.config
        prm = self.prm

        def env_fn() -> Any:
            return ReasoningEnv(
                task=base.task,
                tokenizer=base.tokenizer,
                prm=prm,
                reward_mode="process+outcome",
                max_steps=config.max_steps,
                max_step_tokens=config.max_step_tokens,
                max_context_tokens=config.max_context_tokens,
                step_separator=base.step_separator,
            )

        return env_fn

    # ------------------------------------------------------------------ 5: evaluation

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Measure the policy's greedy held-out accuracy and the PRM's ProcessBench F1."""
        config = self.config
        indices = list(range(config.eval_offset, config.eval_offset + config.eval_problems))
        episodes, _ = play_episodes(
            self.env_fn,
            self.actor,
            indices,
            indices,
            config.max_step_tokens,
            0.0,
            None,
            self.device,
            env=self.env,
        )
        result = {"accuracy": float(np.mean([e.correct for e in episodes]))}
        result.update(self.evaluate_prm())
        return result

    def prm_probe(self) -> list[LabeledSolution]:
        """Return gold and corrupted gold solutions with exact labels (empty if unsupported)."""
        if self._probe is None:
            self._probe = []
            if self.config.prm_eval_solutions:
                from reasoning_gym.prm.corrupt import corrupted_solutions

                try:
                    self._probe = corrupted_solutions(
                        self.task,
                        self.config.prm_eval_solutions,
                        seed=0,
                        start_index=self.config.prm_eval_offset,
                    )
                except ValueError as error:
                    logger.warning("PRM probe unavailable, its F1 is NaN: %s", error)
        return self._probe

    def evaluate_prm(self) -> dict[str, float]:
        """Compute the PRM's ProcessBench F1 on the probe, at a calibrated threshold and at 0.5."""
        from reasoning_gym.prm.evaluate import evaluate_prm

        probe = self.prm_probe()
        if len(probe) < 4:
            return {"prm_f1": math.nan, "prm_f1_at_0.5": math.nan, "prm_threshold": math.nan}
        self.prm.clear_cache()
        calibrated = evaluate_prm(self.prm, probe, seed=self.config.seed)
        fixed = evaluate_prm(self.prm, probe, threshold=0.5)
        return {
            "prm_f1": calibrated.test.f1,
            "prm_f1_at_0.5": fixed.test.f1,
            "prm_threshold": calibrated.threshold,
        }

    # ------------------------------------------------------------------ checkpoints

    @property
    def rounds_dir(self) -> Path:
        return self.output_dir / "rounds"

    def finished_rounds(self) -> list[tuple[int, Path]]:
        """List finished round folders as ``(round, folder)``, oldest first, round 0 included."""
        if not self.rounds_dir.is_dir():
            return []
        found = []
        for child in self.rounds_dir.iterdir():
            match = ROUND_PATTERN.match(child.name)
            if match and (child / ROUND_FILE).is_file():
                found.append((int(match.group(1)), child))
        return sorted(found)

    def _write_atomically(self, name: str, write: Callable[[Path], None]) -> Path:
        """Fill a temporary folder with ``write`` and rename it to ``rounds/<name>``."""
        self.rounds_dir.mkdir(parents=True, exist_ok=True)
        final = self.rounds_dir / name
        temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.rounds_dir))
        try:
            write(temporary)
            if final.exists():
                stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=self.rounds_dir))
                os.replace(final, stale / name)
                shutil.rmtree(stale)
            os.replace(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return final

    def _write_round_zero(self, record: dict[str, Any]) -> None:
        def write(folder: Path) -> None:
            _write_json(folder / ROUND_FILE, record)

        self._write_atomically("round_000", write)

    def _save_round(self, round_number: int, record: dict[str, Any]) -> None:
        def write(folder: Path) -> None:
            torch.save(
                {k: v.detach().cpu() for k, v in self.actor.state_dict().items()},
                folder / POLICY_FILE,
            )
            self.prm.save_pretrained(folder / "prm")
            write_jsonl(folder / LABELS_FILE, self.labels)
            _write_json(folder / ROUND_FILE, record)

        path = self._write_atomically(f"round_{round_number:03d}", write)
        logger.info("saved round %d to %s", round_number, path)

    def _resume(self) -> None:
        rounds = self.finished_rounds()
        if not rounds:
            return
        self.history = [json.loads((path / ROUND_FILE).read_text()) for _, path in rounds]
        number, path = rounds[-1]
        if number == 0:
            return
        state = torch.load(path / POLICY_FILE, map_location=self.device, weights_only=True)
        self.actor.load_state_dict(state)
        self.actor.eval()
        self._load_prm(path / "prm")
        self.labels = read_jsonl(path / LABELS_FILE)
        self.completed_rounds = number
        logger.info("resumed after round %d from %s", number, path)

    def _load_prm(self, folder: Path) -> None:
        """Load PRM weights saved by ``save_pretrained`` into the current PRM's model."""
        from transformers import AutoModelForTokenClassification

        loaded = AutoModelForTokenClassification.from_pretrained(folder)
        self.prm.model.load_state_dict(loaded.state_dict())
        self.prm.model.eval()
        self.prm.clear_cache()

    def _write_summary(self) -> None:
        _write_json(self.output_dir / "history.json", self.history)
        try:
            plot_history(self.history, self.output_dir / "curves.png")
        except ImportError as error:
            logger.warning("matplotlib is not available, so no plot was written: %s", error)


def _write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename; NaN becomes null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(_finite(data), indent=2), encoding="utf-8")
    os.replace(temporary, path)


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_finite(value) for value in data]
    return data


def plot_history(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Plot held-out accuracy and PRM F1 against the round number into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [record["round"] for record in history]

    def values(key: str) -> list[float]:
        return [math.nan if record.get(key) is None else record[key] for record in history]

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rounds, values("accuracy"), marker="o", label="policy accuracy (held-out, greedy)")
    ax.plot(rounds, values("prm_f1"), marker="s", label="PRM F1 vs exact labels")
    ax.set_xlabel("round")
    ax.set_ylabel("value")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(rounds)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Self-reinforced policy and PRM")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
