"""PPO losses and masked statistics over padded token tensors.

Every loss is a sum over real tokens divided by ``normalizer`` (by default the number
of real tokens), so micro-batches of one minibatch can pass the minibatch's token
count and their summed gradients equal the gradient of the whole minibatch.
"""

from __future__ import annotations

import torch
from trl.trainer.utils import entropy_from_logits, selective_log_softmax


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over entries where ``mask`` is 1 (0 when the mask is empty)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, shift_mean: bool = True
) -> torch.Tensor:
    """Normalise masked entries to mean 0 and standard deviation 1.

    A standard deviation below ``eps`` counts as 0: the result is then all zeros
    (``shift_mean=True``) or ``values`` unchanged, never values divided by a tiny
    number. Entries outside the mask are returned as 0.
    """
    mask = mask.to(values.dtype)
    count = mask.sum()
    if count < 1:
        return torch.zeros_like(values)
    mean = (values * mask).sum() / count
    variance = (((values - mean) * mask) ** 2).sum() / count
    std = variance.sqrt()
    if std < eps:
        return torch.zeros_like(values) if shift_mean else values * mask
    centred = values - mean if shift_mean else values
    return centred / std * mask


def logprobs_and_entropy(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of ``tokens`` and entropy of each distribution (nats).

    Args:
        logits: Logits that predict each token.  # (B, T, V)
        tokens: Token ids.  # (B, T)
        temperature: Sampling temperature the rollout used; logits are divided by it.

    Returns:
        Log-probabilities and entropies.  # (B, T) each
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = selective_log_softmax(logits, tokens)
    entropy = entropy_from_logits(logits)
    return logprobs, entropy


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of ``KL(pi || pi_ref)`` from sampled tokens.

    ``"k1"`` is ``log p - log p_ref`` (unbiased, can be negative); ``"k3"`` is
    ``(r - 1) - log r`` with ``r = p_ref / p`` (unbiased, never negative), from
    J. Schulman, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html.
    """
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"kl estimator {estimator!r} is not one of ('k1', 'k3')")


def policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_coef: float,
    normalizer: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss of PPO (Schulman et al. 2017, arXiv:1707.06347, eq. 7).

    Per token: ``max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps))``.

    Args:
        new_logprobs: Log-probabilities under the current policy.  # (B, T)
        old_logprobs: Log-probabilities under the rollout policy.  # (B, T)
        advantages: Advantages.  # (B, T)
        mask: 1 on real tokens.  # (B, T)
        clip_coef: Clipping epsilon.
        normalizer: Divisor of the token sum; defaults to the number of real tokens.

    Returns:
        The loss and detached statistics: ``approx_kl`` (``(r - 1) - log r``),
        ``old_approx_kl`` (``-log r``), ``clipfrac`` and ``ratio`` (token means).
    """
    mask = mask.to(new_logprobs.dtype)
    if normalizer is None:
        normalizer = mask.sum().clamp(min=1.0)
    log_ratio = new_logprobs - old_logprobs
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    loss = (torch.maximum(unclipped, clipped) * mask).sum() / normalizer
    with torch.no_grad():
        stats = {
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask),
            "old_approx_kl": masked_mean(-log_ratio, mask),
            "clipfrac": masked_mean(((ratio - 1.0).abs() > clip_coef).float(), mask),
            "ratio": masked_mean(ratio, mask),
        }
    return loss, stats


def value_loss(
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_coef: float | None,
    normalizer: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Value loss ``0.5 * (V - R)^2``, optionally clipped around the rollout values.

    With clipping, the per-token loss is ``0.5 * max((V - R)^2, (V_clip - R)^2)``
    where ``V_clip = V_old + clip(V - V_old, -c, c)``, as in the PPO2 baselines code.

    Args:
        new_values: Current value predictions.  # (B, T)
        old_values: Value predictions at rollout time.  # (B, T)
        returns: GAE returns.  # (B, T)
        mask: 1 on real tokens.  # (B, T)
        clip_coef: Clipping range ``c``, or None for the unclipped loss.
        normalizer: Divisor of the token sum; defaults to the number of real tokens.
    """
    mask = mask.to(new_values.dtype)
    if normalizer is None:
        normalizer = mask.sum().clamp(min=1.0)
    unclipped = (new_values - returns) ** 2
    if clip_coef is None:
        per_token = unclipped
        clipfrac = torch.zeros(())
    else:
        clipped_values = old_values + torch.clamp(new_values - old_values, -clip_coef, clip_coef)
        per_token = torch.maximum(unclipped, (clipped_values - returns) ** 2)
        with torch.no_grad():
            clipfrac = masked_mean(((new_values - old_values).abs() > clip_coef).float(), mask)
    loss = 0.5 * (per_token * mask).sum() / normalizer
    return loss, {"vf_clipfrac": clipfrac}


def entropy_bonus(
    entropy: torch.Tensor, mask: torch.Tensor, normalizer: torch.Tensor | float | None = None
) -> torch.Tensor:
    """Token-summed entropy divided by ``normalizer`` (default: number of real tokens)."""
    mask = mask.to(entropy.dtype)
    if normalizer is None:
        normalizer = mask.sum().clamp(min=1.0)
    return (entropy * mask).sum() / normalizer


def explained_variance(
    predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> float:
    """``1 - Var(targets - predictions) / Var(targets)`` over masked entries (NaN if Var = 0)."""
    mask = mask.to(targets.dtype)
    mean = masked_mean(targets, mask)
    var_targets = masked_mean((targets - mean) ** 2, mask)
    residual = targets - predictions
    residual_mean = masked_mean(residual, mask)
    var_residual = masked_mean((residual - residual_mean) ** 2, mask)
    if var_targets.item() == 0:
        return float("nan")
    return float(1 - var_residual / var_targets)


def adaptive_kl_coef(coef: float, kl: float, target: float, steps: int, horizon: int) -> float:
    """Update the KL coefficient with the proportional controller of Ziegler et al. (2019),
    "Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593.

    ``error = clip(kl / target - 1, -0.2, 0.2)`` and ``coef *= 1 + error * steps / horizon``.
    """
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return coef * (1.0 + error * steps / horizon)
