"""Rollouts: sample reasoning steps from the actor and play them in a Reasoning environment.

Steps are sampled token by token from the actor's own distribution at the rollout
temperature (no masking, no top-p), so the log-probabilities recomputed during the
update describe exactly the distribution the tokens came from. A step ends when the
generated tokens end with the environment's separator ids or with an end-of-sequence
id. Those stop tokens are removed and the ids before them are passed to the
environment, which appends the separator itself. A step also ends after a single token
whose text ends with the separator text (``"\n\n"`` or ``".\n"`` for the separator
``"\n"`` in BPE vocabularies). That token stays in the step, so the context contains
exactly the sampled tokens. The environment's observation is the context of the next
step, and the final observation is the token sequence trained on.

NOTE: after an end-of-sequence id, or when a step reaches ``max_new_tokens``, the
context contains the separator where the actor sampled something else (or nothing), and
the update trains on the separator's log-probability at that position.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from agents.ppo.buffer import Episode

logger = logging.getLogger(__name__)


@torch.no_grad()
def generate_steps(
    model: nn.Module,
    contexts: Sequence[np.ndarray],
    separator_ids: Sequence[int],
    eos_ids: Sequence[int],
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    pad_token_id: int,
    device: torch.device | str = "cpu",
    line_end_ids: Sequence[int] = (),
) -> list[np.ndarray]:
    """Sample one step for every context, in one left-padded batch with a KV cache.

    Args:
        model: Causal LM.
        contexts: Token ids of each state.
        separator_ids: Ids whose appearance at the end of the generated tokens ends a step.
        eos_ids: Ids that end a step.
        max_new_tokens: Maximum tokens per step, stop tokens included.
        temperature: Sampling temperature; 0 decodes greedily.
        generator: Generator of the sampling noise.
        pad_token_id: Id written into left padding (masked out).
        device: Device of ``model``.
        line_end_ids: Ids that end a step and stay in it (see the module docstring).

    Returns:
        The generated ids of each step with the stop tokens removed.  # (L_i,) int64 each
    """
    batch_size = len(contexts)
    width = max(len(c) for c in contexts)
    input_ids = torch.full((batch_size, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch_size, width), dtype=torch.long)
    for row, context in enumerate(contexts):
        input_ids[row, width - len(context) :] = torch.from_numpy(np.array(context, np.int64))
        attention_mask[row, width - len(context) :] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)  # (B, W)

    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
    )
    cache_argument = _cache_argument(model)
    cache = out[cache_argument]
    logits = out.logits[:, -1]  # (B, V)
    next_position = position_ids[:, -1] + 1  # (B,)

    separator = [int(i) for i in separator_ids]
    eos = {int(i) for i in eos_ids}
    line_ends = {int(i) for i in line_end_ids}
    generated: list[list[int]] = [[] for _ in range(batch_size)]
    stop_length = [0] * batch_size  # trailing stop tokens to remove from each row
    done = [False] * batch_size
    for _ in range(max_new_tokens):
        tokens = _sample(logits, temperature, generator)  # (B,)
        for row, token in enumerate(tokens.tolist()):
            if done[row]:
                continue
            generated[row].append(token)
            if token in eos:
                done[row], stop_length[row] = True, 1
            elif token in line_ends:
                done[row] = True
            elif separator and generated[row][-len(separator) :] == separator:
                done[row], stop_length[row] = True, len(separator)
        if all(done):
            break
        attention_mask = torch.cat(
            [attention_mask, torch.ones((batch_size, 1), dtype=torch.long, device=device)], dim=1
        )
        out = model(
            input_ids=tokens[:, None],
            attention_mask=attention_mask,
            position_ids=next_position[:, None],
            use_cache=True,
            **{cache_argument: cache},
        )
        cache = out[cache_argument]
        logits = out.logits[:, -1]
        next_position = next_position + 1

    steps = []
    for row in range(batch_size):
        ids = generated[row][: len(generated[row]) - stop_length[row]]
        steps.append(np.asarray(ids, dtype=np.int64))
    return steps


def line_end_token_ids(
    tokenizer: object, separator: str, separator_ids: Sequence[int]
) -> list[int]:
    """Return the ids of single tokens whose text ends with ``separator``, except its own id.

    Decodes every id of the vocabulary once (about a second for 50k ids), so callers
    compute it once per tokenizer.
    """
    own = {int(separator_ids[0])} if len(separator_ids) == 1 else set()
    found = []
    for token_id in range(int(tokenizer.vocab_size)):
        if token_id not in own and tokenizer.decode([token_id]).endswith(separator):
            found.append(token_id)
    return found


def _cache_argument(model: nn.Module) -> str:
    """Name of the key/value cache argument and output: recent transformers 5.x releases
    call it ``cache``, earlier ones ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _sample(logits: torch.Tensor, temperature: float, generator: torch.Generator | None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@dataclass
class RolloutStats:
    """Counts of one rollout phase."""

    episodes: int = 0
    steps: int = 0
    generated_tokens: int = 0


def play_episodes(
    env_fn: Callable[[], object],
    model: nn.Module,
    problem_indices: Sequence[int],
    groups: Sequence[int],
    max_new_tokens: int,
    temperature: float,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    env: object | None = None,
    line_end_ids: Sequence[int] = (),
) -> tuple[list[Episode], RolloutStats]:
    """Play one episode per problem index, all episodes advancing together.

    One environment plays every episode: its state is switched with ``get_state`` and
    ``set_state`` between them, which copies nothing.

    Args:
        env_fn: Builds the environment when ``env`` is None.
        model: The actor.
        problem_indices: Problem index of each episode (``reset(options={"index": i})``).
        groups: Group id of each episode.
        max_new_tokens: Maximum tokens per step.
        temperature: Sampling temperature (0 is greedy).
        generator: Generator of the sampling noise.
        device: Device of ``model``.
        env: An environment to reuse.
        line_end_ids: Ids that end a step and stay in it, from :func:`line_end_token_ids`.

    Returns:
        The episodes in the order of ``problem_indices`` and rollout counts.
    """
    env = env if env is not None else env_fn()
    base = getattr(env, "unwrapped", env)
    separator_ids = [int(i) for i in base.separator_ids]
    tokenizer = base.tokenizer
    eos_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    pad_token_id = int(tokenizer.pad_token_id)

    states = []
    for index in problem_indices:
        base.reset(options={"index": int(index)})
        states.append(base.get_state())
    correct = [False] * len(states)
    stats = RolloutStats(episodes=len(states))

    active = list(range(len(states)))
    while active:
        contexts = [states[i].ids for i in active]
        steps = generate_steps(
            model,
            contexts,
            separator_ids,
            eos_ids,
            max_new_tokens,
            temperature,
            generator,
            pad_token_id,
            device,
            line_end_ids,
        )
        still_active = []
        for i, step_ids in zip(active, steps, strict=True):
            base.set_state(states[i])
            _, _, terminated, truncated, info = base.step(step_ids)
            states[i] = base.get_state()
            stats.steps += 1
            stats.generated_tokens += len(step_ids)
            if terminated or truncated:
                correct[i] = bool(info.get("correct", False))
            else:
                still_active.append(i)
        active = still_active

    episodes = [
        episode_from_state(state, len(separator_ids), problem_indices[i], groups[i], correct[i])
        for i, state in enumerate(states)
    ]
    return episodes, stats


def episode_from_state(
    state: object, separator_length: int, problem_index: int, group: int, correct: bool
) -> Episode:
    """Build an :class:`Episode` from a finished environment state (``env.get_state()``)."""
    steps = state.steps
    return Episode(
        prompt_ids=np.asarray(state.prompt_ids),
        action_ids=np.asarray(state.ids[state.prompt_length :]),
        step_lengths=[len(step.ids) for step in steps],
        separator_length=separator_length,
        step_rewards=np.array([step.reward for step in steps], dtype=np.float64),
        terminated=bool(state.terminated),
        truncated=bool(state.truncated),
        problem_index=int(problem_index),
        group=int(group),
        correct=bool(correct),
    )
