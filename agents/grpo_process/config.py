"""Settings of process-supervised GRPO, validated when the config is built."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from agents.ppo.config import PPOConfig

REWARD_SOURCES = ("process", "outcome", "process+outcome")


@dataclass
class GRPOProcessConfig(PPOConfig):
    """Settings of :class:`agents.grpo_process.trainer.GRPOProcessTrainer`.

    The fields of :class:`PPOConfig` keep their meaning, with four differences.
    ``samples_per_problem`` is the group size ``G``. The environment runs with
    ``reward_mode="outcome"`` and no PRM by default, because step scores come from
    ``step_prm`` after the rollout. There is no critic, so the value settings and
    ``gamma``/``gae_lambda`` are unused. ``kl_coef`` weighs a KL term added to the loss
    (as in DeepSeekMath's GRPO) instead of a KL penalty subtracted from the rewards.

    Attributes:
        step_prm: PRM spec that scores every step after the rollout (``"oracle"``,
            ``"learned:PATH"``, ``"mc:K"``, a ProcessRewardModel, ...). Unused when
            ``reward_source="outcome"``.
        reward_source: ``"process"`` (step reward = ``process_weight`` * PRM score),
            ``"outcome"`` (one reward per solution: the environment's return, as in
            outcome-supervised GRPO) or ``"process+outcome"`` (PRM score plus the
            environment's reward of the step, which contains the verifier score on the
            final step).
        advantage_eps: Group standard deviations below this count as zero, so such a
            group gets zero advantages.
    """

    reward_mode: str = "outcome"
    prm: Any = None
    samples_per_problem: int = 4
    episodes_per_update: int = 16
    update_epochs: int = 1
    num_minibatches: int = 1
    kl_coef: float = 0.04
    kl_estimator: str = "k3"
    vf_coef: float = 0.0
    whiten_advantages: bool = False
    output_dir: str = "runs/grpo_process"

    step_prm: Any = "oracle"
    reward_source: str = "process"
    advantage_eps: float = 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples_per_problem < 2:
            raise ValueError(
                f"samples_per_problem={self.samples_per_problem} is the GRPO group size and "
                "must be at least 2, since advantages compare solutions of one problem"
            )
        if self.reward_source not in REWARD_SOURCES:
            raise ValueError(f"reward_source={self.reward_source!r} is not one of {REWARD_SOURCES}")
        if self.reward_source != "outcome" and self.step_prm is None:
            raise ValueError(
                f"reward_source={self.reward_source!r} needs step_prm (e.g. 'oracle' or "
                "'learned:PATH'); use reward_source='outcome' for GRPO without a PRM"
            )
        eps = self.advantage_eps
        if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f"advantage_eps={eps!r} is invalid: use a small positive number")
        if self.adaptive_kl_target is not None:
            raise ValueError(
                "adaptive_kl_target is not supported by process-supervised GRPO, whose KL "
                "term is part of the loss; set it to None and choose kl_coef"
            )

    @property
    def group_size(self) -> int:
        """Solutions sampled per problem (``samples_per_problem``)."""
        return self.samples_per_problem

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict (stored in checkpoints)."""
        # dataclasses.asdict would deep-copy a PRM instance (a whole model), so the
        # fields are read one by one and PRM objects are stored as their repr.
        data: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name in ("prm", "step_prm") and not isinstance(value, (str, type(None))):
                value = repr(value)
            elif isinstance(value, (dict, list)):
                value = copy.deepcopy(value)
            data[item.name] = value
        return data
