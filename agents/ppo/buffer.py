"""Rollout storage for step-level PPO: episodes, per-token rewards, padding and GAE.

Each episode is one token sequence: the prompt ``s_0`` followed by the generated
tokens of every step, each step followed by the separator the environment appends.
Every token after the prompt is an action of the token-level MDP (the separator is
the actor's decision to end the step), so log-probabilities, values and advantages
have one entry per token after the prompt.

Reward placement: the environment's reward for a step goes on the step's last token.
An empty step has no token of its own, so its reward goes on the first separator
token appended after it. All other tokens get reward 0 (the KL penalty is added
per token by the trainer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger(__name__)


@dataclass
class Episode:
    """One finished (terminated or truncated) episode.

    Attributes:
        prompt_ids: Token ids of the initial observation.  # (P,)
        action_ids: Token ids after the prompt: steps and separators.  # (N,)
        step_lengths: Tokens of each step, separator excluded.
        separator_length: Tokens of the separator appended after every step.
        step_rewards: Reward the environment returned for each step.  # (S,)
        terminated: Whether the episode ended with a final answer.
        truncated: Whether the environment cut the episode (max steps or context).
        problem_index: Index of the problem in the task.
        group: Episodes with the same group id solved the same problem in one rollout.
        correct: Whether the final answer was correct.
    """

    prompt_ids: np.ndarray
    action_ids: np.ndarray
    step_lengths: list[int]
    separator_length: int
    step_rewards: np.ndarray
    terminated: bool
    truncated: bool
    problem_index: int = 0
    group: int = 0
    correct: bool = False

    def __post_init__(self) -> None:
        expected = sum(self.step_lengths) + self.separator_length * len(self.step_lengths)
        if expected != len(self.action_ids):
            raise ValueError(
                f"episode has {len(self.action_ids)} action tokens but its steps account for "
                f"{expected} (step lengths {self.step_lengths}, separator {self.separator_length})"
            )
        if len(self.step_rewards) != len(self.step_lengths):
            raise ValueError(
                f"episode has {len(self.step_rewards)} step rewards for "
                f"{len(self.step_lengths)} steps; pass one reward per step"
            )

    @property
    def num_tokens(self) -> int:
        return int(len(self.action_ids))

    def token_rewards(self) -> np.ndarray:
        """Return the per-token environment rewards of this episode.  # (N,)"""
        return place_step_rewards(self.step_lengths, self.separator_length, self.step_rewards)


def place_step_rewards(
    step_lengths: Sequence[int], separator_length: int, step_rewards: Sequence[float]
) -> np.ndarray:
    """Spread step rewards over the action tokens of an episode.

    Args:
        step_lengths: Tokens of each step, separator excluded.
        separator_length: Tokens appended after every step.
        step_rewards: One reward per step.

    Returns:
        Per-token rewards of shape ``(sum(step_lengths) + separator_length * S,)``. A
        step's reward sits on its last token, or on the first separator token after an
        empty step. With an empty separator too, it sits on the previous token, or on
        the next one when the episode has no token yet.

    Raises:
        ValueError: if the lengths and rewards disagree or no token can hold a reward.
    """
    if len(step_lengths) != len(step_rewards):
        raise ValueError(f"{len(step_lengths)} step lengths but {len(step_rewards)} rewards")
    if separator_length < 0 or any(length < 0 for length in step_lengths):
        raise ValueError(f"negative length in steps {list(step_lengths)} or {separator_length}")
    total = int(sum(step_lengths)) + separator_length * len(step_lengths)
    rewards = np.zeros(total, dtype=np.float64)
    carried = 0.0  # rewards of empty steps seen before the first token
    offset = 0
    for length, reward in zip(step_lengths, step_rewards, strict=True):
        if length > 0:
            position = offset + length - 1
        elif separator_length > 0:
            position = offset
        elif offset > 0:
            position = offset - 1
        else:
            carried += float(reward)
            continue
        rewards[position] += float(reward) + carried
        carried = 0.0
        offset += length + separator_length
    if carried != 0.0:
        if total == 0:
            raise ValueError("an episode without tokens cannot hold its step rewards")
        rewards[0] += carried
    return rewards


def sanitize_rewards(
    rewards: np.ndarray, clip: float, nonfinite: str = "clip"
) -> tuple[np.ndarray, int]:
    """Clip rewards to ``[-clip, clip]`` and replace NaN with 0.

    Args:
        rewards: Any-shaped float array.
        clip: Bound of the clipping range (> 0).
        nonfinite: ``"clip"`` or ``"skip_batch"``. Both return the cleaned array; the
            caller skips the update for ``"skip_batch"`` when the count is non-zero.

    Returns:
        The cleaned array and the number of NaN or infinite entries found.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    bad = ~np.isfinite(rewards)
    count = int(bad.sum())
    cleaned = np.nan_to_num(rewards, nan=0.0, posinf=clip, neginf=-clip)
    return np.clip(cleaned, -clip, clip), count


def normalize_episode_returns(
    step_rewards: Sequence[np.ndarray], groups: Sequence[int], eps: float
) -> list[np.ndarray]:
    """Scale each group's episode returns to mean 0 and standard deviation 1.

    An episode's step rewards are divided by the group's standard deviation and the
    group mean (divided likewise) is subtracted from its last step, so its return
    becomes ``(R - mean) / std`` while the shape of its process rewards is kept. A
    group whose returns have a standard deviation below ``eps`` (all outcomes equal)
    gets all-zero rewards: it carries no learning signal, and dividing by a tiny
    standard deviation would only amplify rounding noise.

    Args:
        step_rewards: Finite step rewards of each episode.
        groups: Group id of each episode (one id for batch normalisation).
        eps: Standard deviation below which the returns of a group count as equal.
    """
    if len(step_rewards) != len(groups):
        raise ValueError(f"{len(step_rewards)} episodes but {len(groups)} group ids")
    out = [np.asarray(r, dtype=np.float64).copy() for r in step_rewards]
    returns = np.array([float(r.sum()) for r in out])
    group_ids = np.asarray(groups)
    for group in np.unique(group_ids):
        members = np.flatnonzero(group_ids == group)
        mean = float(returns[members].mean())
        std = float(returns[members].std())
        for i in members:
            if std < eps or len(out[i]) == 0:
                out[i][:] = 0.0
                continue
            out[i] /= std
            out[i][-1] -= mean / std
    return out


@dataclass
class RolloutBatch:
    """Episodes padded into tensors; responses start at column ``query_length``.

    Prompts are left-padded to ``query_length`` and the action tokens right-padded to
    ``response_length``, so the action token ``k`` of every row is at input column
    ``query_length + k`` and is predicted by the logits of column ``query_length + k - 1``.

    Attributes:
        input_ids: Prompt and action tokens.  # (B, Q + R) int64
        attention_mask: 1 on real tokens.  # (B, Q + R) int64
        position_ids: Positions counted from each row's first real token.  # (B, Q + R)
        action_mask: 1 on real action tokens.  # (B, R) float
        env_rewards: Environment rewards per action token.  # (B, R) float
        terminated: Whether each episode ended with a final answer.  # (B,) bool
        query_length: Q.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    action_mask: torch.Tensor
    env_rewards: torch.Tensor
    terminated: torch.Tensor
    query_length: int

    @property
    def response_length(self) -> int:
        return int(self.action_mask.shape[1])

    @property
    def num_tokens(self) -> torch.Tensor:
        """Action tokens of each row.  # (B,)"""
        return self.action_mask.sum(dim=1).long()

    def select(self, rows: torch.Tensor | Sequence[int]) -> RolloutBatch:
        """Return the rows ``rows`` without the columns that are padding in all of them.

        Left prompt columns and right response columns that only hold padding are
        dropped, so action token ``k`` keeps index ``k``: slice per-token tensors of the
        full batch with ``[:, :selected.response_length]``.
        """
        index = torch.as_tensor(rows, dtype=torch.long)
        attention_mask = self.attention_mask[index]
        action_mask = self.action_mask[index]
        real_columns = attention_mask.any(dim=0).nonzero()
        first = int(real_columns.min()) if len(real_columns) else 0
        first = min(first, self.query_length - 1)  # keep the column predicting token 0
        response_length = max(int(action_mask.sum(dim=1).max()), 1)
        end = self.query_length + response_length
        return RolloutBatch(
            input_ids=self.input_ids[index, first:end],
            attention_mask=attention_mask[:, first:end],
            position_ids=self.position_ids[index, first:end],
            action_mask=action_mask[:, :response_length],
            env_rewards=self.env_rewards[index, :response_length],
            terminated=self.terminated[index],
            query_length=self.query_length - first,
        )


def collate_episodes(
    episodes: Sequence[Episode],
    pad_token_id: int,
    token_rewards: Sequence[np.ndarray] | None = None,
) -> RolloutBatch:
    """Pad episodes into a :class:`RolloutBatch`.

    Args:
        episodes: Episodes with at least one action token each.
        pad_token_id: Id written into padding (masked out everywhere).
        token_rewards: Per-token rewards of each episode; defaults to each episode's
            ``token_rewards()``.
    """
    if not episodes:
        raise ValueError("cannot collate an empty list of episodes")
    for episode in episodes:
        if episode.num_tokens == 0:
            raise ValueError("an episode without action tokens cannot be trained on; drop it")
    if token_rewards is None:
        token_rewards = [episode.token_rewards() for episode in episodes]
    batch_size = len(episodes)
    query_length = max(len(e.prompt_ids) for e in episodes)
    response_length = max(e.num_tokens for e in episodes)
    width = query_length + response_length

    input_ids = torch.full((batch_size, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch_size, width), dtype=torch.long)
    action_mask = torch.zeros((batch_size, response_length), dtype=torch.float32)
    env_rewards = torch.zeros((batch_size, response_length), dtype=torch.float32)
    for row, (episode, rewards) in enumerate(zip(episodes, token_rewards, strict=True)):
        prompt_length = len(episode.prompt_ids)
        n = episode.num_tokens
        start = query_length - prompt_length
        prompt = torch.from_numpy(np.array(episode.prompt_ids, dtype=np.int64))
        actions = torch.from_numpy(np.array(episode.action_ids, dtype=np.int64))
        input_ids[row, start:query_length] = prompt
        input_ids[row, query_length : query_length + n] = actions
        attention_mask[row, start : query_length + n] = 1
        action_mask[row, :n] = 1.0
        env_rewards[row, :n] = torch.as_tensor(np.asarray(rewards), dtype=torch.float32)
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    terminated = torch.tensor([e.terminated for e in episodes], dtype=torch.bool)
    return RolloutBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        action_mask=action_mask,
        env_rewards=env_rewards,
        terminated=terminated,
        query_length=query_length,
    )


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    bootstrap_values: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute generalized advantage estimates over right-padded token sequences.

    ``delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)`` and
    ``A_t = delta_t + gamma * lambda * A_{t+1}``, from Schulman et al. (2015), "High-
    Dimensional Continuous Control Using Generalized Advantage Estimation",
    https://arxiv.org/abs/1506.02438. After the last token of a row,
    ``V(s_N)`` is ``bootstrap_values`` when the episode was truncated and 0 when it
    terminated, so a truncated episode is not treated as having ended.

    Args:
        rewards: Per-token rewards.  # (B, T)
        values: Value ``V(s_t)`` of the state before each token.  # (B, T)
        mask: 1 on real tokens, which form a prefix of each row.  # (B, T)
        bootstrap_values: Value of the state after each row's last token.  # (B,)
        terminated: Whether each row ended in a terminal state.  # (B,) bool
        gamma: Per-token discount.
        gae_lambda: GAE lambda.

    Returns:
        Advantages and returns (advantages + values), 0 on padding.  # (B, T) each
    """
    mask = mask.to(values.dtype)
    batch_size, length = values.shape
    lengths = mask.sum(dim=1).long()  # (B,)
    final_value = torch.where(
        terminated.bool(), torch.zeros_like(bootstrap_values), bootstrap_values
    )  # (B,)
    next_values = torch.zeros_like(values)  # (B, T)
    next_values[:, :-1] = values[:, 1:] * mask[:, 1:]
    rows = torch.arange(batch_size)
    has_tokens = lengths > 0
    next_values[rows[has_tokens], lengths[has_tokens] - 1] = final_value[has_tokens].to(
        values.dtype
    )
    deltas = (rewards + gamma * next_values - values) * mask  # (B, T)

    advantages = torch.zeros_like(values)
    running = torch.zeros(batch_size, dtype=values.dtype)
    for t in reversed(range(length)):
        running = deltas[:, t] + gamma * gae_lambda * running
        running = running * mask[:, t]
        advantages[:, t] = running
    returns = (advantages + values) * mask
    return advantages, returns
