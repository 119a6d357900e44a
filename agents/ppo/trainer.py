"""Step-level PPO on Reasoning environments, with process rewards on the last token of each step.

One update (``PPOTrainer.train_step``):

1. Rollout: the actor samples the steps of ``episodes_per_update`` episodes (see
   :mod:`agents.ppo.rollout`); the environment returns one reward per step.
2. Rewards: non-finite rewards are reported and clipped, or the update is skipped.
   Returns are optionally normalised per batch or per problem group. Each step's
   reward is placed on its last token, and a per-token KL penalty to the reference
   model is subtracted.
3. Advantages: GAE over tokens; truncated episodes bootstrap from the value of their
   last state. Advantages are whitened over the batch (a constant batch gives zeros).
4. Optimisation: ``update_epochs`` passes over shuffled minibatches with the clipped
   surrogate, clipped value loss and entropy bonus, gradient accumulation and
   gradient-norm clipping, stopping early when the approximate KL exceeds ``target_kl``.

Metrics go to ``<output_dir>/metrics.csv`` and TensorBoard under ``rollout/``,
``losses/``, ``charts/`` and ``eval/``. Checkpoints are written every
``checkpoint_every`` updates and the run resumes from the newest one.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.ppo.buffer import (
    Episode,
    RolloutBatch,
    collate_episodes,
    compute_gae,
    normalize_episode_returns,
    sanitize_rewards,
)
from agents.ppo.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from agents.ppo.config import PPOConfig
from agents.ppo.loss import (
    adaptive_kl_coef,
    entropy_bonus,
    explained_variance,
    kl_penalty,
    masked_whiten,
    policy_loss,
    value_loss,
)
from agents.ppo.modeling import ActorCritic, add_lora
from agents.ppo.rollout import line_end_token_ids, play_episodes

logger = logging.getLogger(__name__)

METRIC_KEYS = (
    "charts/episodes",
    "charts/learning_rate",
    "charts/kl_coef",
    "charts/update_seconds",
    "charts/generated_tokens_per_second",
    "charts/epochs_completed",
    "rollout/correct_rate",
    "rollout/env_return_mean",
    "rollout/env_return_std",
    "rollout/kl_per_episode",
    "rollout/steps_per_episode",
    "rollout/tokens_per_episode",
    "rollout/truncated_rate",
    "rollout/nonfinite_rewards",
    "rollout/skipped",
    "losses/loss",
    "losses/policy_loss",
    "losses/value_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/old_approx_kl",
    "losses/clipfrac",
    "losses/vf_clipfrac",
    "losses/explained_variance",
    "losses/skipped_minibatches",
    "eval/accuracy",
)


def env_task_name(env_id: str) -> str:
    """Map ``Reasoning-<Name>-v0`` to its task name; any other text is a task name."""
    from reasoning_gym.registration import env_ids

    ids = env_ids()
    if env_id in ids:
        task = ids[env_id]
        if task is None:
            raise ValueError(
                f"env id {env_id!r} needs a task; pass a task name such as 'arithmetic'"
            )
        return task
    return env_id


def make_env(config: PPOConfig, tokenizer: Any = None) -> Any:
    """Build the ReasoningEnv described by ``config``, with ``tokenizer`` or the model's."""
    from reasoning_gym.env import ReasoningEnv

    return ReasoningEnv(
        task=env_task_name(config.env_id),
        tokenizer=tokenizer if tokenizer is not None else config.model,
        prm=config.prm,
        reward_mode=config.reward_mode,
        process_weight=config.process_weight,
        outcome_weight=config.outcome_weight,
        max_steps=config.max_steps,
        max_context_tokens=config.max_context_tokens,
        max_step_tokens=config.max_step_tokens,
        task_kwargs=config.task_kwargs,
    )


class MetricsWriter:
    """Writes one row of metrics per update to ``metrics.csv`` and TensorBoard.

    On resume, rows of updates after the checkpoint are removed from the CSV and
    TensorBoard events after it are purged, so a resumed run has no duplicate rows.
    """

    def __init__(self, output_dir: Path, tensorboard: bool, resume_update: int):
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "metrics.csv"
        self.fields = ["update", *METRIC_KEYS]
        kept: list[dict[str, str]] = []
        if self.path.exists() and resume_update > 0:
            with open(self.path, newline="") as handle:
                rows = csv.DictReader(handle)
                kept = [row for row in rows if int(row["update"]) <= resume_update]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self.tensorboard = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(
                str(output_dir / "tensorboard"), purge_step=resume_update + 1
            )

    def write(self, update: int, metrics: dict[str, float]) -> None:
        row = {"update": update, **{key: metrics.get(key, math.nan) for key in METRIC_KEYS}}
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.fields, extrasaction="ignore").writerow(row)
        if self.tensorboard is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tensorboard.add_scalar(key, value, update)
            self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


class PPOTrainer:
    """Step-level PPO trainer.

    Args:
        config: Settings.
        env_fn: Builds a Reasoning environment; defaults to :func:`make_env`. Its
            tokenizer must be the actor's.
        model: Actor causal LM, moved to ``config.device`` and ``config.dtype``; defaults to
            ``reasoning_gym.models.load_model(config.model)``. The reference model is a
            copy of it, so resuming a run needs the same initial model.
        tokenizer: Tokenizer of the default environment when ``model`` is given.
        critic_model: Backbone of a separate critic (``config.critic == "separate"``);
            defaults to ``load_model(config.critic_model)``.

    Example:
        >>> trainer = PPOTrainer(PPOConfig(model="smollm2-135m", num_updates=10))
        >>> history = trainer.train()
    """

    def __init__(
        self,
        config: PPOConfig,
        env_fn: Callable[[], Any] | None = None,
        model: torch.nn.Module | None = None,
        tokenizer: Any = None,
        critic_model: torch.nn.Module | None = None,
    ):
        if not isinstance(config, PPOConfig):
            raise TypeError(f"config must be a PPOConfig, got {type(config).__name__}")
        self.config = config
        self.device = torch.device(config.device)
        self.output_dir = Path(config.output_dir)
        dtype = getattr(torch, config.dtype)

        if env_fn is None:
            if model is not None and tokenizer is None:
                raise ValueError(
                    "a model object was given without its tokenizer; pass tokenizer=... "
                    "or env_fn=... whose environment uses the model's tokenizer"
                )
            env_fn = lambda: make_env(config, tokenizer)  # noqa: E731
        self.env_fn = env_fn
        self.env = env_fn()
        base_env = getattr(self.env, "unwrapped", self.env)
        self.pad_token_id = int(base_env.tokenizer.pad_token_id)
        self.line_end_ids = line_end_token_ids(
            base_env.tokenizer, base_env.step_separator, base_env.separator_ids
        )

        from reasoning_gym.models import load_model

        actor = model if model is not None else load_model(config.model, dtype=dtype)
        actor = actor.to(device=self.device, dtype=dtype)
        if config.use_lora:
            actor = add_lora(actor, config.lora_r, config.lora_alpha, config.lora_dropout)
        critic_backbone = None
        if config.critic == "separate":
            critic_backbone = critic_model
            if critic_backbone is None:
                critic_backbone = load_model(config.critic_model, dtype=dtype)
            critic_backbone = critic_backbone.to(device=self.device, dtype=dtype)
        self.policy = ActorCritic(actor, critic_backbone, use_lora=config.use_lora)
        self.policy.value_head.to(self.device)
        # Dropout stays off: rollout and update log-probabilities must describe one policy.
        self.policy.eval()

        critic_lr = config.critic_learning_rate or config.learning_rate
        self.optimizer = torch.optim.AdamW(
            [
                {"params": list(self.policy.actor_parameters()), "lr": config.learning_rate},
                {"params": list(self.policy.critic_parameters()), "lr": critic_lr},
            ],
            weight_decay=config.weight_decay,
        )

        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.np_rng = np.random.default_rng(config.seed)
        # Not used by PPO itself; saved and restored so code that draws from it resumes exactly.
        self.py_rng = random.Random(config.seed)
        self.kl_coef = float(config.kl_coef)
        self.update = 0
        self.episodes_seen = 0
        self.problem_cursor = 0
        self.history: list[dict[str, float]] = []

        if config.resume:
            checkpoint = latest_checkpoint(self.output_dir)
            if checkpoint is not None:
                self.load(checkpoint)

    # ------------------------------------------------------------------ rollouts

    def collect_rollout(self) -> tuple[list[Episode], dict[str, float]]:
        """Play ``episodes_per_update`` episodes on the next training problems."""
        config = self.config
        indices, groups = [], []
        for group in range(config.problems_per_update):
            index = config.problem_offset + self.problem_cursor
            self.problem_cursor += 1
            indices += [index] * config.samples_per_problem
            groups += [group] * config.samples_per_problem
        start = time.perf_counter()
        episodes, stats = play_episodes(
            self.env_fn,
            self.policy.actor,
            indices,
            groups,
            config.max_step_tokens,
            config.temperature,
            self.generator,
            self.device,
            env=self.env,
            line_end_ids=self.line_end_ids,
        )
        seconds = time.perf_counter() - start
        returns = np.array([float(np.sum(e.step_rewards)) for e in episodes])
        metrics = {
            "rollout/correct_rate": float(np.mean([e.correct for e in episodes])),
            "rollout/env_return_mean": float(np.mean(returns)),
            "rollout/env_return_std": float(np.std(returns)),
            "rollout/steps_per_episode": stats.steps / len(episodes),
            "rollout/tokens_per_episode": float(np.mean([e.num_tokens for e in episodes])),
            "rollout/truncated_rate": float(np.mean([e.truncated for e in episodes])),
            "charts/generated_tokens_per_second": stats.generated_tokens / max(seconds, 1e-9),
        }
        self.episodes_seen += len(episodes)
        return episodes, metrics

    def shape_rewards(self, episodes: list[Episode]) -> tuple[list[np.ndarray], int]:
        """Clean and normalise step rewards; return per-token rewards and the non-finite count."""
        config = self.config
        step_rewards, nonfinite = [], 0
        for episode in episodes:
            cleaned, count = sanitize_rewards(
                episode.step_rewards, config.reward_clip, config.nonfinite_reward
            )
            if count:
                logger.warning(
                    "episode on problem %d returned %d non-finite step rewards %s; %s",
                    episode.problem_index,
                    count,
                    episode.step_rewards.tolist(),
                    "skipping the update" if config.nonfinite_reward == "skip_batch" else "clipped",
                )
            nonfinite += count
            step_rewards.append(cleaned)
        if config.reward_normalization != "none":
            if config.reward_normalization == "group":
                groups = [e.group for e in episodes]
            else:
                groups = [0] * len(episodes)
            step_rewards = normalize_episode_returns(step_rewards, groups, config.normalization_eps)
        token_rewards = []
        for episode, rewards in zip(episodes, step_rewards, strict=True):
            shaped = Episode(**{**episode.__dict__, "step_rewards": rewards})
            token_rewards.append(shaped.token_rewards())
        return token_rewards, nonfinite

    @torch.no_grad()
    def compute_advantages(self, batch: RolloutBatch) -> dict[str, torch.Tensor]:
        """Rollout log-probs, values, KL-penalised rewards, advantages and returns.  # (B, R)"""
        config = self.config
        chunk = max(config.minibatch_size // config.grad_accum_steps, 1)
        size, length = batch.action_mask.shape
        logprobs = torch.zeros(size, length)
        ref_logprobs = torch.zeros(size, length)
        values = torch.zeros(size, length + 1)
        for start in range(0, size, chunk):
            rows = list(range(start, min(start + chunk, size)))
            sub = self._to_device(batch.select(rows))
            width = sub.response_length
            out = self.policy.forward_batch(sub, config.temperature)
            logprobs[rows, :width] = out["logprobs"].float().cpu()
            values[rows, : width + 1] = out["values"].float().cpu()
            reference = self.policy.reference_logprobs(sub, config.temperature)
            ref_logprobs[rows, :width] = reference.float().cpu()

        mask = batch.action_mask
        lengths = batch.num_tokens  # (B,)
        bootstrap = values[torch.arange(size), lengths]  # (B,) value of the last state
        values = values[:, :length] * mask
        kl = kl_penalty(logprobs, ref_logprobs, config.kl_estimator) * mask  # (B, R)
        rewards = batch.env_rewards - self.kl_coef * kl
        advantages, returns = compute_gae(
            rewards, values, mask, bootstrap, batch.terminated, config.gamma, config.gae_lambda
        )
        if config.whiten_advantages:
            advantages = masked_whiten(advantages, mask, eps=config.normalization_eps)
        return {
            "logprobs": logprobs * mask,
            "values": values,
            "advantages": advantages,
            "returns": returns,
            "kl": kl,
        }

    def _to_device(self, batch: RolloutBatch) -> RolloutBatch:
        if self.device.type == "cpu":
            return batch
        fields = {name: getattr(batch, name) for name in batch.__dataclass_fields__}
        return RolloutBatch(
            **{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in fields.items()}
        )

    # ------------------------------------------------------------------ optimisation

    def optimize(self, batch: RolloutBatch, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """Run the PPO epochs over ``batch``; return the mean loss statistics."""
        config = self.config
        size = batch.action_mask.shape[0]

        sums: dict[str, float] = {}
        counted = 0
        skipped = 0
        epochs_completed = 0
        stop = False
        for _ in range(config.update_epochs):
            order = self.np_rng.permutation(size)
            for mb_rows in np.array_split(order, config.num_minibatches):
                stats = self._optimize_minibatch(batch, data, mb_rows)
                if stats is None:
                    skipped += 1
                    continue
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value
                counted += 1
                if config.target_kl is not None and stats["losses/approx_kl"] > config.target_kl:
                    logger.info(
                        "update %d: approx KL %.4f exceeds target_kl %.4f; stopping its epochs",
                        self.update + 1,
                        stats["losses/approx_kl"],
                        config.target_kl,
                    )
                    stop = True
                    break
            if stop:
                break
            epochs_completed += 1

        metrics = {key: value / max(counted, 1) for key, value in sums.items()}
        metrics["losses/skipped_minibatches"] = float(skipped)
        metrics["charts/epochs_completed"] = float(epochs_completed)
        metrics["losses/explained_variance"] = explained_variance(
            data["values"], data["returns"], batch.action_mask
        )
        return metrics

    def _optimize_minibatch(
        self, batch: RolloutBatch, data: dict[str, torch.Tensor], mb_rows: np.ndarray
    ) -> dict[str, float] | None:
        """Take one optimizer step on the minibatch ``mb_rows``; return None if it was skipped."""
        config = self.config
        mb_tokens = batch.action_mask[mb_rows].sum().clamp(min=1.0).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for micro_rows in np.array_split(mb_rows, config.grad_accum_steps):
            if len(micro_rows) == 0:
                continue
            loss, stats = self._loss(batch, data, micro_rows, mb_tokens)
            if not torch.isfinite(loss):
                logger.warning(
                    "update %d: non-finite loss %s on a minibatch; skipping its optimizer step",
                    self.update + 1,
                    loss.item(),
                )
                self.optimizer.zero_grad(set_to_none=True)
                return None
            loss.backward()
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value
        torch.nn.utils.clip_grad_norm_(
            [p for group in self.optimizer.param_groups for p in group["params"]],
            config.max_grad_norm,
        )
        self.optimizer.step()
        return totals

    def _loss(
        self,
        batch: RolloutBatch,
        data: dict[str, torch.Tensor],
        rows: np.ndarray,
        normalizer: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Compute the PPO loss of ``rows`` with token sums divided by ``normalizer``.

        Returns:
            The loss and its parts as floats. Ratio statistics are weighted by the share
            of the normalizer's tokens in ``rows``, so the parts of one minibatch add up.
        """
        config = self.config
        micro = self._to_device(batch.select(rows))
        width = micro.response_length
        old = {k: v[rows, :width].to(self.device) for k, v in data.items()}
        out = self.policy.forward_batch(micro, config.temperature)
        mask = micro.action_mask
        pg_loss, pg_stats = policy_loss(
            out["logprobs"], old["logprobs"], old["advantages"], mask, config.clip_coef,
            normalizer=normalizer,
        )  # fmt: skip
        vf_clip = config.vf_clip_coef if config.clip_vloss else None
        v_loss, v_stats = value_loss(
            out["values"][:, :width], old["values"], old["returns"], mask, vf_clip,
            normalizer=normalizer,
        )  # fmt: skip
        entropy = entropy_bonus(out["entropy"], mask, normalizer=normalizer)
        loss = pg_loss - config.ent_coef * entropy + config.vf_coef * v_loss
        share = float(mask.sum() / normalizer)
        stats = {
            "losses/loss": loss.item(),
            "losses/policy_loss": pg_loss.item(),
            "losses/value_loss": v_loss.item(),
            "losses/entropy": entropy.item(),
        }
        for key, value in {**pg_stats, **v_stats}.items():
            if key != "ratio":
                stats[f"losses/{key}"] = float(value) * share
        return loss, stats

    @torch.no_grad()
    def batch_loss(self, batch: RolloutBatch, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """Evaluate the PPO loss on the whole batch without changing anything."""
        rows = np.arange(batch.action_mask.shape[0])
        normalizer = batch.action_mask.sum().clamp(min=1.0).to(self.device)
        return self._loss(batch, data, rows, normalizer)[1]

    # ------------------------------------------------------------------ the loop

    def train_step(self) -> dict[str, float]:
        """Run one update (rollout, advantages, optimisation) and return its metrics."""
        config = self.config
        start = time.perf_counter()
        episodes, metrics = self.collect_rollout()
        episodes = [e for e in episodes if e.num_tokens > 0]
        token_rewards, nonfinite = self.shape_rewards(episodes)
        metrics["rollout/nonfinite_rewards"] = float(nonfinite)
        skip = not episodes or (nonfinite > 0 and config.nonfinite_reward == "skip_batch")
        metrics["rollout/skipped"] = float(skip)
        if not skip:
            batch = collate_episodes(episodes, self.pad_token_id, token_rewards)
            data = self.compute_advantages(batch)
            kl_per_episode = float(data["kl"].sum(dim=1).mean())
            metrics["rollout/kl_per_episode"] = kl_per_episode
            metrics.update(self.optimize(batch, data))
            self._adapt_kl(kl_per_episode, len(episodes))
        self.update += 1
        metrics["charts/episodes"] = float(self.episodes_seen)
        metrics["charts/learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        metrics["charts/kl_coef"] = self.kl_coef
        if config.eval_every and self.update % config.eval_every == 0:
            metrics["eval/accuracy"] = self.evaluate()["eval/accuracy"]
        metrics["charts/update_seconds"] = time.perf_counter() - start
        return metrics

    def _adapt_kl(self, kl_per_episode: float, episodes: int) -> None:
        target = self.config.adaptive_kl_target
        if target is None:
            return
        self.kl_coef = adaptive_kl_coef(
            self.kl_coef, kl_per_episode, target, episodes, self.config.adaptive_kl_horizon
        )

    def train(self) -> list[dict[str, float]]:
        """Run updates until ``num_updates``, resuming where a checkpoint left off.

        Returns:
            The metrics of each update run by this call.
        """
        config = self.config
        writer = MetricsWriter(self.output_dir, config.tensorboard, self.update)
        history = []
        bar = tqdm(
            total=config.num_updates,
            initial=self.update,
            desc="ppo",
            unit="update",
            disable=not config.progress_bar,
        )
        try:
            while self.update < config.num_updates:
                metrics = self.train_step()
                writer.write(self.update, metrics)
                history.append(metrics)
                self.history.append(metrics)
                bar.update(1)
                bar.set_postfix(
                    correct=f"{metrics['rollout/correct_rate']:.2f}",
                    ret=f"{metrics['rollout/env_return_mean']:.2f}",
                    kl=f"{metrics.get('rollout/kl_per_episode', math.nan):.3f}",
                )
                if config.checkpoint_every and self.update % config.checkpoint_every == 0:
                    self.save()
            # The last update is saved too, so a later call with more updates continues from it.
            if history and config.checkpoint_every and self.update % config.checkpoint_every:
                self.save()
        finally:
            bar.close()
            writer.close()
        return history

    @torch.no_grad()
    def evaluate(self, num_problems: int | None = None, offset: int | None = None) -> dict:
        """Greedy accuracy on held-out problems ``offset .. offset + num_problems - 1``."""
        num_problems = num_problems or self.config.eval_problems
        offset = self.config.eval_offset if offset is None else offset
        indices = list(range(offset, offset + num_problems))
        episodes, _ = play_episodes(
            self.env_fn,
            self.policy.actor,
            indices,
            indices,
            self.config.max_step_tokens,
            0.0,
            None,
            self.device,
            env=self.env,
            line_end_ids=self.line_end_ids,
        )
        return {
            "eval/accuracy": float(np.mean([e.correct for e in episodes])),
            "eval/truncated_rate": float(np.mean([e.truncated for e in episodes])),
        }

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs besides the config."""
        return {
            "model": self.policy.trainable_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_generator": self.generator.get_state(),
            "numpy_generator": self.np_rng.bit_generator.state,
            "python_random": self.py_rng.getstate(),
            "update": self.update,
            "episodes_seen": self.episodes_seen,
            "problem_cursor": self.problem_cursor,
            "kl_coef": self.kl_coef,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_trainable_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["torch_generator"])
        self.np_rng.bit_generator.state = state["numpy_generator"]
        self.py_rng.setstate(_as_random_state(state["python_random"]))
        self.update = int(state["update"])
        self.episodes_seen = int(state["episodes_seen"])
        self.problem_cursor = int(state["problem_cursor"])
        self.kl_coef = float(state["kl_coef"])

    def save(self) -> Path:
        """Write a checkpoint of the current update into ``output_dir/checkpoints``."""
        return save_checkpoint(
            self.output_dir,
            self.update,
            self.state_dict(),
            self.config.to_dict(),
            self.config.keep_checkpoints,
        )

    def load(self, path: str | os.PathLike) -> None:
        """Restore the trainer from a checkpoint folder."""
        self.load_state_dict(load_checkpoint(path))
        logger.info("resumed from %s at update %d", path, self.update)

    def save_model(self, path: str | os.PathLike) -> None:
        """Save the actor with ``save_pretrained`` and the value head as ``value_head.pt``."""
        path = Path(path)
        self.policy.actor.save_pretrained(path)
        torch.save(self.policy.value_head.state_dict(), path / "value_head.pt")


def _as_random_state(state: Any) -> tuple:
    """Turn a ``random.getstate()`` value read back from a checkpoint into a tuple."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
