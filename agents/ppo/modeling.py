"""Actor, critic and reference model of step-level PPO.

The actor is a Hugging Face causal LM (optionally wrapped with LoRA adapters). The
critic is a linear value head, either on the actor's last hidden state or on a
separate backbone. The reference model is a frozen copy of the initial actor. With
LoRA it is the actor with its adapters disabled, so no copy is made.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from agents.ppo.buffer import RolloutBatch
from agents.ppo.loss import logprobs_and_entropy

logger = logging.getLogger(__name__)


class ValueHead(nn.Module):
    """Linear map from a hidden state to a scalar value, kept in float32."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        # A zero head predicts V = 0 everywhere at first, so the first advantages are
        # the rewards themselves instead of noise from random weights.
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)


def hidden_size_of(model: nn.Module) -> int:
    """Hidden size of a Hugging Face model (its config's ``hidden_size`` or ``n_embd``)."""
    config = model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, name, None)
        if value is None and hasattr(config, "get_text_config"):
            value = getattr(config.get_text_config(), name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"cannot find the hidden size in the config of {type(model).__name__}")


def add_lora(model: nn.Module, r: int, alpha: int, dropout: float) -> nn.Module:
    """Wrap ``model`` with LoRA adapters on all linear layers (peft)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


class ActorCritic(nn.Module):
    """Actor LM, value head, optional separate critic backbone and the reference model.

    Args:
        actor: Causal LM being trained (may be a peft model).
        critic_backbone: A separate causal LM whose last hidden state feeds the value
            head, or None to use the actor's.
        use_lora: Whether ``actor`` carries LoRA adapters; the reference model is then
            the actor with adapters disabled.
    """

    def __init__(
        self, actor: nn.Module, critic_backbone: nn.Module | None = None, use_lora: bool = False
    ):
        super().__init__()
        self.actor = actor
        self.critic_backbone = critic_backbone
        self.use_lora = use_lora
        source = critic_backbone if critic_backbone is not None else actor
        self.value_head = ValueHead(hidden_size_of(source))
        reference = None
        if not use_lora:
            reference = copy.deepcopy(actor)
            reference.requires_grad_(False)
            reference.eval()
        # Stored outside nn.Module registration so state_dict() and parameters() skip it.
        self.__dict__["reference"] = reference

    def actor_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the actor (LoRA adapters only, with LoRA)."""
        return (p for p in self.actor.parameters() if p.requires_grad)

    def critic_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the critic: the value head and a separate backbone."""
        yield from self.value_head.parameters()
        if self.critic_backbone is not None:
            yield from (p for p in self.critic_backbone.parameters() if p.requires_grad)

    @contextlib.contextmanager
    def _reference_actor(self) -> Iterator[nn.Module]:
        if self.use_lora:
            with self.actor.disable_adapter():
                yield self.actor
        else:
            yield self.reference

    def forward_batch(
        self, batch: RolloutBatch, temperature: float, with_values: bool = True
    ) -> dict[str, torch.Tensor]:
        """Run the actor (and critic) on a batch.

        Returns:
            ``logprobs`` and ``entropy`` of each action token (B, R). With
            ``with_values`` also ``values`` (B, R + 1): the value of the state before each
            action token, and in the last column the value after the last column.
        """
        q, r = batch.query_length, batch.response_length
        need_actor_hidden = with_values and self.critic_backbone is None
        out = self.actor(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            output_hidden_states=need_actor_hidden,
            use_cache=False,
        )
        tokens = batch.input_ids[:, q : q + r]  # (B, R)
        logits = out.logits[:, q - 1 : q - 1 + r]  # (B, R, V)
        logprobs, entropy = logprobs_and_entropy(logits, tokens, temperature)
        result = {"logprobs": logprobs, "entropy": entropy}
        if with_values:
            if self.critic_backbone is None:
                hidden = out.hidden_states[-1]
            else:
                hidden = self.critic_backbone(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids,
                    output_hidden_states=True,
                    use_cache=False,
                ).hidden_states[-1]
            result["values"] = self.value_head(hidden[:, q - 1 : q + r])  # (B, R + 1)
        return result

    @torch.no_grad()
    def reference_logprobs(self, batch: RolloutBatch, temperature: float) -> torch.Tensor:
        """Log-probabilities of the action tokens under the reference model.  # (B, R)"""
        q, r = batch.query_length, batch.response_length
        with self._reference_actor() as reference:
            logits = reference(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                use_cache=False,
            ).logits[:, q - 1 : q - 1 + r]
        return logprobs_and_entropy(logits, batch.input_ids[:, q : q + r], temperature)[0]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Trainable tensors by name (the whole actor without LoRA), for checkpoints."""
        return {
            name: param.detach().clone()
            for name, param in self.named_parameters()
            if param.requires_grad
        }

    def load_trainable_state_dict(self, state: dict[str, Any]) -> None:
        """Load tensors saved by :meth:`trainable_state_dict`; every name must match."""
        params = dict(self.named_parameters())
        unknown = sorted(set(state) - set(params))
        missing = sorted(n for n, p in params.items() if p.requires_grad and n not in state)
        if unknown or missing:
            raise ValueError(
                f"checkpoint does not match the model: unknown {unknown[:5]}, missing "
                f"{missing[:5]}; resume with the same model, critic and LoRA settings"
            )
        with torch.no_grad():
            for name, tensor in state.items():
                params[name].copy_(tensor)
