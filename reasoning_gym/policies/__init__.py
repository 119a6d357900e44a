"""Step policies and the factory that builds them from a name.

``make_policy`` accepts ``"random"``, ``"oracle"``, ``"hf:<model>"`` or a plain model
spec (short name, local folder or hub id), which means ``"hf:<model>"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal


def _make_random(tokenizer: Any = None, seed: int | None = None, **kwargs: Any) -> StepPolicy:
    from reasoning_gym.policies.baselines import RandomPolicy

    return RandomPolicy(tokenizer=tokenizer, seed=seed, **kwargs)


def _make_oracle(env: Any = None, **kwargs: Any) -> StepPolicy:
    from reasoning_gym.policies.baselines import OraclePolicy

    if env is None:
        raise ValueError("the 'oracle' policy replays gold steps and needs env=<ReasoningEnv>")
    return OraclePolicy(env)


def make_hf_policy(
    model: str,
    tokenizer: Any = None,
    sampling: SamplingConfig | None = None,
    separator: str = "\n",
    device: str = "cpu",
    dtype: str = "auto",
    cache_reuse: bool = True,
    **kwargs: Any,
) -> StepPolicy:
    """Load ``model`` (and its tokenizer unless one is given) into an :class:`HFPolicy`."""
    from reasoning_gym.models import load_model
    from reasoning_gym.policies.hf import HFPolicy
    from reasoning_gym.tokenizers import load_tokenizer

    loaded = load_model(model, dtype=dtype, device=device)
    return HFPolicy(
        loaded,
        tokenizer if tokenizer is not None else load_tokenizer(model),
        sampling=sampling,
        separator=separator,
        device=device,
        cache_reuse=cache_reuse,
        **kwargs,
    )


#: Policy name -> factory(**kwargs). Models are reached with ``"hf:<model>"``.
POLICIES: dict[str, Callable[..., StepPolicy]] = {
    "random": _make_random,
    "oracle": _make_oracle,
}


def make_policy(spec: str | StepPolicy, **kwargs: Any) -> StepPolicy:
    """Build a step policy.

    Args:
        spec: A name from :data:`POLICIES`, ``"hf:<model>"``, a plain model spec, or a
            ready :class:`StepPolicy` (returned unchanged).
        **kwargs: Passed to the factory: ``tokenizer``/``seed`` for ``random``, ``env``
            for ``oracle``, and ``sampling``, ``separator``, ``device``, ``dtype``,
            ``cache_reuse``, ``tokenizer`` for models.

    Raises:
        ModelNotFoundError: A model spec that is not pulled, not a folder and not on the hub.
    """
    if isinstance(spec, StepPolicy):
        return spec
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"policy spec {spec!r} must be a non-empty string or a StepPolicy")
    if spec in POLICIES:
        return POLICIES[spec](**kwargs)
    model = spec[len("hf:") :] if spec.startswith("hf:") else spec
    if not model:
        raise ValueError("policy spec 'hf:' names no model; use for example 'hf:smollm2-135m'")
    return make_hf_policy(model, **kwargs)


__all__ = [
    "POLICIES",
    "SamplingConfig",
    "StepPolicy",
    "StepProposal",
    "make_hf_policy",
    "make_policy",
]
