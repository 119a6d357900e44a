"""Process-supervised GRPO: a group of solutions per problem, PRM step rewards, no critic.

One update (``GRPOProcessTrainer.train_step``):

1. Rollout: for each of ``problems_per_update`` problems, ``G = samples_per_problem``
   solutions are sampled through the environment (``reset(options={"index": i})`` for all
   ``G``, so the group shares the problem), with the rollout code of PPO.
2. Step rewards: every step of every solution is scored by the step PRM in one batched
   ``prm.score`` call. With ``reward_source="outcome"`` each solution has one reward,
   the environment's return, and the PRM is not called.
3. Advantages: :func:`group_step_advantages` normalises all rewards of a group together
   and sums the normalised rewards from each step to the end. The advantage of a step
   is placed on all of that step's tokens, separator included. A group whose rewards
   are all equal (spread below ``advantage_eps``) gets zero advantages. NaN or infinite
   rewards are counted (``rollout/nonfinite_rewards``), logged, and excluded from the
   group statistics, and their steps get a normalised reward of 0.
4. Optimisation: PPO's clipped surrogate (:func:`agents.ppo.loss.policy_loss`) plus
   ``kl_coef`` times the per-token KL to the frozen reference model (the actor at
   construction time), as in Shao et al. (2024), "DeepSeekMath", arXiv:2402.03300,
   equation 3. There is no value network.

Metrics of every update are appended to ``<output_dir>/grpo_metrics.jsonl`` (all keys)
besides PPO's ``metrics.csv`` (its fixed columns). Checkpoints are PPO's.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from agents.grpo_process.advantages import group_step_advantages
from agents.grpo_process.config import GRPOProcessConfig
from agents.ppo.buffer import Episode, RolloutBatch, collate_episodes
from agents.ppo.loss import entropy_bonus, kl_penalty, policy_loss
from agents.ppo.trainer import PPOTrainer
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery

logger = logging.getLogger(__name__)

METRICS_FILE = "grpo_metrics.jsonl"


def step_token_ids(episode: Episode) -> list[np.ndarray]:
    """Split an episode's action tokens into the ids of each step (separators removed)."""
    steps, offset = [], 0
    for length in episode.step_lengths:
        steps.append(np.asarray(episode.action_ids[offset : offset + length], dtype=np.int64))
        offset += length + episode.separator_length
    return steps


def spread_step_values(episode: Episode, step_values: Sequence[float]) -> np.ndarray:
    """Give every token of each step, its separator included, the value of that step.  # (N,)"""
    if len(step_values) != len(episode.step_lengths):
        raise ValueError(
            f"{len(step_values)} step values for an episode of {len(episode.step_lengths)} steps"
        )
    lengths = [length + episode.separator_length for length in episode.step_lengths]
    return np.repeat(np.asarray(step_values, dtype=np.float64), lengths)


class GRPOProcessTrainer(PPOTrainer):
    """Process-supervised GRPO on a Reasoning environment.

    Args:
        config: Settings.
        env_fn: Builds the environment (see :class:`PPOTrainer`); it should run with
            ``reward_mode="outcome"`` so that step rewards come from the step PRM only.
        model: Actor causal LM; defaults to ``load_model(config.model)``.
        tokenizer: Tokenizer of the default environment when ``model`` is given.
        prm: The step PRM; defaults to ``make_prm(config.step_prm, task=env.task)``.
            Assign ``trainer.prm`` to swap it between updates.

    Example:
        >>> trainer = GRPOProcessTrainer(GRPOProcessConfig(model="smollm2-135m"))
        >>> history = trainer.train()
    """

    def __init__(
        self,
        config: GRPOProcessConfig,
        env_fn: Callable[[], Any] | None = None,
        model: torch.nn.Module | None = None,
        tokenizer: Any = None,
        prm: ProcessRewardModel | None = None,
    ):
        if not isinstance(config, GRPOProcessConfig):
            raise TypeError(f"config must be a GRPOProcessConfig, got {type(config).__name__}")
        super().__init__(config, env_fn=env_fn, model=model, tokenizer=tokenizer)
        self.config: GRPOProcessConfig = config
        if prm is None and config.reward_source != "outcome":
            prm = self._make_step_prm(config.step_prm)
        self.prm = prm
        self._problems: dict[int, Any] = {}
        self._truncate_metrics_file()

    def _make_step_prm(self, spec: Any) -> ProcessRewardModel:
        from reasoning_gym.prm import make_prm

        base = getattr(self.env, "unwrapped", self.env)
        kwargs: dict[str, Any] = {}
        if isinstance(spec, str) and spec.strip().lower().startswith("mc"):
            from reasoning_gym.policies.hf import HFPolicy

            # Monte-Carlo step values are estimated with the actor being trained.
            kwargs = {
                "policy": HFPolicy(
                    self.policy.actor,
                    base.tokenizer,
                    separator=base.step_separator,
                    device=self.config.device,
                ),
                "separator_ids": base.separator_ids,
                "max_steps": self.config.max_steps,
            }
        prm = make_prm(spec, task=base.task, **kwargs)
        if prm is None:
            raise ValueError(
                f"step_prm={spec!r} builds no PRM for task {base.task.name!r}; pass 'oracle' "
                "(tasks with a step checker), 'learned:PATH' or 'mc:K'"
            )
        return prm

    # ------------------------------------------------------------------ rewards

    def _problem(self, index: int) -> Any:
        """Return the Problem of training index ``index`` as the environment builds it."""
        if index not in self._problems:
            base = getattr(self.env, "unwrapped", self.env)
            base.reset(options={"index": int(index)})
            self._problems[index] = base.problem
        return self._problems[index]

    def score_steps(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        """Score every step of every episode with the step PRM in one batched call.

        Returns:
            One array of PRM scores per episode.  # (num_steps_i,) each
        """
        if self.prm is None:
            raise ValueError("no step PRM is set; pass prm= or set config.step_prm")
        base = getattr(self.env, "unwrapped", self.env)
        separator = np.asarray(base.separator_ids, dtype=np.int64)
        queries: list[StepQuery] = []
        for episode in episodes:
            problem = self._problem(episode.problem_index)
            texts: list[str] = []
            context = np.asarray(episode.prompt_ids, dtype=np.int64)
            for ids in step_token_ids(episode):
                text = base.tokenizer.decode(ids)
                queries.append(StepQuery(problem, tuple(texts), text, context, ids))
                texts.append(text)
                context = np.concatenate([context, ids, separator])
        flat = np.zeros(0)
        if queries:
            # ProcessRewardModel.score replaces NaN by 0.0, which would count a failed
            # score as a wrong step. The raw scores keep NaN so that the group statistics
            # can exclude it, at the cost of bypassing the PRM's score cache.
            flat = np.asarray(self.prm._score_batch(queries), dtype=np.float64)
            if flat.shape != (len(queries),):
                raise ValueError(
                    f"PRM {self.prm.name!r} returned scores of shape {flat.shape} for "
                    f"{len(queries)} steps; it must return one score per step"
                )
        scores, offset = [], 0
        for episode in episodes:
            count = len(episode.step_lengths)
            scores.append(flat[offset : offset + count])
            offset += count
        return scores

    def step_rewards(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        """Rewards that enter the group normalisation, per ``reward_source``.

        Finite rewards are clipped to ``[-reward_clip, reward_clip]``; NaN stays NaN so the
        group normalisation can exclude it.
        """
        config = self.config
        if config.reward_source == "outcome":
            rewards = [np.array([float(np.sum(e.step_rewards))]) for e in episodes]
        else:
            scores = self.score_steps(episodes)
            rewards = [config.process_weight * s for s in scores]
            if config.reward_source == "process+outcome":
                rewards = [r + e.step_rewards for r, e in zip(rewards, episodes, strict=True)]
        return [np.clip(r, -config.reward_clip, config.reward_clip) for r in rewards]

    def token_advantages(
        self, episodes: Sequence[Episode]
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Group-normalised advantages of every action token, and reward statistics.

        Returns:
            One array per episode with the advantage of each action token, and metrics:
            ``rollout/nonfinite_rewards``, ``rollout/degenerate_groups`` (fraction),
            ``rollout/step_reward_mean`` and ``rollout/advantage_abs_mean``.
        """
        rewards = self.step_rewards(episodes)
        groups: dict[int, list[int]] = {}
        for position, episode in enumerate(episodes):
            groups.setdefault(episode.group, []).append(position)

        advantages: list[np.ndarray] = [np.zeros(0)] * len(episodes)
        nonfinite = degenerate = 0
        for members in groups.values():
            result = group_step_advantages(
                [rewards[i] for i in members], eps=self.config.advantage_eps
            )
            nonfinite += result.num_nonfinite
            degenerate += int(result.degenerate)
            for i, step_advantages in zip(members, result.advantages, strict=True):
                episode = episodes[i]
                if self.config.reward_source == "outcome":
                    # One reward per solution: its advantage goes on every token.
                    advantages[i] = np.full(episode.num_tokens, float(step_advantages[0]))
                else:
                    advantages[i] = spread_step_values(episode, step_advantages)
        if nonfinite:
            bad = sorted(
                {
                    e.problem_index
                    for e, r in zip(episodes, rewards, strict=True)
                    if not np.isfinite(r).all()
                }
            )
            logger.warning(
                "update %d: %d NaN or infinite step reward(s) on problems %s; they are "
                "excluded from the group statistics",
                self.update + 1,
                nonfinite,
                bad,
            )
        flat = np.concatenate(rewards) if rewards else np.zeros(0)
        finite = flat[np.isfinite(flat)]
        all_tokens = np.concatenate(advantages) if advantages else np.zeros(0)
        metrics = {
            "rollout/nonfinite_rewards": float(nonfinite),
            "rollout/degenerate_groups": degenerate / max(len(groups), 1),
            "rollout/step_reward_mean": float(finite.mean()) if finite.size else math.nan,
            "rollout/advantage_abs_mean": float(np.abs(all_tokens).mean())
            if all_tokens.size
            else 0.0,
        }
        return advantages, metrics

    # ------------------------------------------------------------------ tensors and loss

    @torch.no_grad()
    def rollout_tensors(
        self, batch: RolloutBatch, token_advantages: Sequence[np.ndarray]
    ) -> dict[str, torch.Tensor]:
        """Rollout and reference log-probabilities, advantages and KL of each action token.

        Returns:
            ``logprobs``, ``ref_logprobs``, ``advantages`` and ``kl`` of shape (B, R), and
            all-zero ``values`` and ``returns`` (there is no critic; PPO's optimisation
            loop reads them for its explained-variance statistic, which is then NaN).
        """
        config = self.config
        chunk = max(config.minibatch_size // config.grad_accum_steps, 1)
        size, length = batch.action_mask.shape
        logprobs = torch.zeros(size, length)
        ref_logprobs = torch.zeros(size, length)
        for start in range(0, size, chunk):
            rows = list(range(start, min(start + chunk, size)))
            sub = self._to_device(batch.select(rows))
            width = sub.response_length
            out = self.policy.forward_batch(sub, config.temperature, with_values=False)
            logprobs[rows, :width] = out["logprobs"].float().cpu()
            reference = self.policy.reference_logprobs(sub, config.temperature)
            ref_logprobs[rows, :width] = reference.float().cpu()

        mask = batch.action_mask  # (B, R)
        advantages = torch.zeros(size, length)  # (B, R)
        for row, values in enumerate(token_advantages):
            advantages[row, : len(values)] = torch.as_tensor(values, dtype=torch.float32)
        kl = kl_penalty(logprobs, ref_logprobs, config.kl_estimator) * mask  # (B, R)
        return {
            "logprobs": logprobs * mask,
            "ref_logprobs": ref_logprobs * mask,
            "advantages": advantages * mask,
            "kl": kl,
            "values": torch.zeros(size, length),
            "returns": torch.zeros(size, length),
        }

    def _loss(
        self,
        batch: RolloutBatch,
        data: dict[str, torch.Tensor],
        rows: np.ndarray,
        normalizer: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Clipped surrogate plus ``kl_coef`` times the KL to the reference, minus entropy."""
        config = self.config
        micro = self._to_device(batch.select(rows))
        width = micro.response_length
        old = {k: v[rows, :width].to(self.device) for k, v in data.items()}
        out = self.policy.forward_batch(micro, config.temperature, with_values=False)
        mask = micro.action_mask
        pg_loss, pg_stats = policy_loss(
            out["logprobs"], old["logprobs"], old["advantages"], mask, config.clip_coef,
            normalizer=normalizer,
        )  # fmt: skip
        kl = kl_penalty(out["logprobs"], old["ref_logprobs"], config.kl_estimator)  # (B, R)
        kl_loss = (kl * mask).sum() / normalizer
        entropy = entropy_bonus(out["entropy"], mask, normalizer=normalizer)
        loss = pg_loss + config.kl_coef * kl_loss - config.ent_coef * entropy
        share = float(mask.sum() / normalizer)
        stats = {
            "losses/loss": loss.item(),
            "losses/policy_loss": pg_loss.item(),
            "losses/kl_loss": kl_loss.item(),
            "losses/entropy": entropy.item(),
        }
        for key, value in pg_stats.items():
            if key != "ratio":
                stats[f"losses/{key}"] = float(value) * share
        return loss, stats

    # ------------------------------------------------------------------ the loop

    def train_step(self) -> dict[str, float]:
        """Run one update (group rollout, PRM scoring, advantages, optimisation)."""
        config = self.config
        start = time.perf_counter()
        episodes, metrics = self.collect_rollout()
        episodes = [e for e in episodes if e.num_tokens > 0]
        advantages, reward_metrics = self.token_advantages(episodes)
        metrics.update(reward_metrics)
        nonfinite = reward_metrics["rollout/nonfinite_rewards"]
        skip = not episodes or (nonfinite > 0 and config.nonfinite_reward == "skip_batch")
        metrics["rollout/skipped"] = float(skip)
        if not skip:
            batch = collate_episodes(episodes, self.pad_token_id)
            data = self.rollout_tensors(batch, advantages)
            metrics["rollout/kl_per_episode"] = float(data["kl"].sum(dim=1).mean())
            metrics.update(self.optimize(batch, data))
            metrics["losses/explained_variance"] = math.nan
        self.update += 1
        metrics["charts/episodes"] = float(self.episodes_seen)
        metrics["charts/learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        metrics["charts/kl_coef"] = self.kl_coef
        if config.eval_every and self.update % config.eval_every == 0:
            metrics["eval/accuracy"] = self.evaluate()["eval/accuracy"]
        metrics["charts/update_seconds"] = time.perf_counter() - start
        self._append_metrics(metrics)
        return metrics

    @torch.no_grad()
    def batch_loss(self, batch: RolloutBatch, data: dict[str, torch.Tensor]) -> dict[str, float]:
        """Evaluate the loss on the whole batch without changing anything."""
        rows = np.arange(batch.action_mask.shape[0])
        normalizer = batch.action_mask.sum().clamp(min=1.0).to(self.device)
        return self._loss(batch, data, rows, normalizer)[1]

    def _append_metrics(self, metrics: dict[str, float]) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        record = {"update": self.update}
        for key, value in metrics.items():
            record[key] = value if math.isfinite(value) else None
        with open(self.output_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _truncate_metrics_file(self) -> None:
        """Drop metric rows of updates after the resumed checkpoint (they are rerun)."""
        path = self.output_dir / METRICS_FILE
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line and json.loads(line)["update"] <= self.update]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
