"""Settings of the step-level PPO trainer, validated when the config is built."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

KL_ESTIMATORS = ("k1", "k3")
CRITIC_KINDS = ("value_head", "separate")
REWARD_NORMALIZATIONS = ("none", "batch", "group")
NONFINITE_REWARD_POLICIES = ("clip", "skip_batch")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class PPOConfig:
    """Settings of :class:`agents.ppo.trainer.PPOTrainer`.

    Token-level quantities (log-probabilities, values, advantages) are indexed by the
    generated tokens; ``gamma`` and ``gae_lambda`` discount per token.

    Attributes:
        env_id: Task name (``"arithmetic"``) or environment id (``"Reasoning-Arithmetic-v0"``).
        model: Model name or folder for the actor, loaded with ``reasoning_gym.models``.
        reward_mode: Reward mode of the environment (``"outcome"``, ``"process+outcome"``, ...).
        prm: PRM spec of the environment (``"auto"``, ``"oracle"``, None, ...).
        process_weight: Environment weight of the PRM score.
        outcome_weight: Environment weight of the verifier score.
        max_steps: Steps per episode before the environment truncates it.
        max_step_tokens: Maximum tokens the actor generates for one step.
        max_context_tokens: Context length at which the environment truncates an episode.
        task_kwargs: Keyword arguments of the task factory (difficulty, data path, ...).
        num_updates: Number of PPO updates (rollout + optimisation phases).
        episodes_per_update: Episodes collected per update (the rollout batch).
        samples_per_problem: Episodes per problem in a rollout; ``"group"`` reward
            normalisation compares episodes of the same problem.
        temperature: Sampling temperature of rollouts (> 0).
        learning_rate: AdamW learning rate of the actor (and of a value head).
        critic_learning_rate: Learning rate of the critic parameters; None uses ``learning_rate``.
        weight_decay: AdamW weight decay.
        update_epochs: Passes over the rollout batch per update.
        num_minibatches: Minibatches per epoch; episodes are shuffled and split evenly.
        grad_accum_steps: Micro-batches per minibatch, summed before one optimizer step.
        max_grad_norm: Gradient-norm clipping threshold.
        gamma: Per-token discount of GAE.
        gae_lambda: GAE lambda.
        clip_coef: PPO ratio clipping epsilon.
        clip_vloss: Whether the value loss is clipped around the rollout values.
        vf_clip_coef: Clipping range of the value loss (same units as the rewards).
        vf_coef: Weight of the value loss.
        ent_coef: Weight of the entropy bonus.
        whiten_advantages: Whether advantages are normalised to mean 0, std 1 per minibatch.
        target_kl: Approximate-KL threshold that stops the epochs of an update early; None
            disables early stopping.
        kl_coef: Coefficient of the per-token KL penalty to the reference model.
        kl_estimator: ``"k1"`` (``log p - log p_ref``) or ``"k3"``
            (``(r - 1) - log r`` with ``r = p_ref / p``), both from Schulman's
            "Approximating KL Divergence" (blog post, 2020).
        adaptive_kl_target: Target KL per episode of the adaptive controller of Ziegler
            et al. (2019); None keeps ``kl_coef`` fixed.
        adaptive_kl_horizon: Horizon (episodes) of the adaptive KL controller.
        reward_clip: Environment rewards are clipped to ``[-reward_clip, reward_clip]``.
        nonfinite_reward: What to do with a NaN or infinite reward: ``"clip"`` (NaN becomes
            0 and infinities become +-reward_clip) or ``"skip_batch"`` (the update is skipped).
        reward_normalization: ``"none"``, ``"batch"`` or ``"group"``: scale episode returns
            to mean 0 and std 1 over the batch or over the episodes of each problem.
        normalization_eps: Standard deviation below which returns count as identical.
        critic: ``"value_head"`` (a linear head on the actor's backbone) or ``"separate"``.
        critic_model: Model of a separate critic; it must share the actor's tokenizer.
        use_lora: Train LoRA adapters (peft) instead of all actor weights.
        lora_r: LoRA rank.
        lora_alpha: LoRA alpha.
        lora_dropout: LoRA dropout.
        dtype: Parameter dtype of the models.
        device: Torch device, for example ``"cpu"`` or ``"cuda"``.
        seed: Seed of the trainer's generators (sampling, shuffling, problem choice).
        problem_offset: Index of the first training problem; training problems are
            ``problem_offset, problem_offset + 1, ...``.
        output_dir: Folder of metrics, TensorBoard logs and checkpoints.
        checkpoint_every: Updates between checkpoints; 0 disables checkpoints.
        keep_checkpoints: Number of most recent checkpoints kept.
        resume: Resume from the latest checkpoint in ``output_dir`` when one exists.
        tensorboard: Whether to write TensorBoard event files.
        progress_bar: Whether to show a tqdm progress bar.
        eval_every: Updates between greedy evaluations; 0 disables them.
        eval_problems: Number of held-out problems of each evaluation.
        eval_offset: Index of the first held-out problem.
    """

    env_id: str = "arithmetic"
    model: str = "smollm2-135m"
    reward_mode: str = "process+outcome"
    prm: Any = "auto"
    process_weight: float = 1.0
    outcome_weight: float = 1.0
    max_steps: int = 8
    max_step_tokens: int = 64
    max_context_tokens: int = 1024
    task_kwargs: dict[str, Any] = field(default_factory=dict)

    num_updates: int = 100
    episodes_per_update: int = 16
    samples_per_problem: int = 1
    temperature: float = 1.0

    learning_rate: float = 1e-5
    critic_learning_rate: float | None = None
    weight_decay: float = 0.0
    update_epochs: int = 2
    num_minibatches: int = 2
    grad_accum_steps: int = 1
    max_grad_norm: float = 1.0

    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    clip_vloss: bool = True
    vf_clip_coef: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    whiten_advantages: bool = True
    target_kl: float | None = None

    kl_coef: float = 0.05
    kl_estimator: str = "k1"
    adaptive_kl_target: float | None = None
    adaptive_kl_horizon: int = 10000

    reward_clip: float = 10.0
    nonfinite_reward: str = "clip"
    reward_normalization: str = "none"
    normalization_eps: float = 1e-6

    critic: str = "value_head"
    critic_model: str | None = None
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    dtype: str = "float32"
    device: str = "cpu"

    seed: int = 0
    problem_offset: int = 0
    output_dir: str = "runs/ppo"
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    resume: bool = True
    tensorboard: bool = True
    progress_bar: bool = True
    eval_every: int = 0
    eval_problems: int = 32
    eval_offset: int = 1_000_000

    def __post_init__(self) -> None:
        self._check_positive_ints()
        self._check_ranges()
        self._check_choices()
        if self.episodes_per_update % self.samples_per_problem:
            raise ValueError(
                f"episodes_per_update={self.episodes_per_update} is not a multiple of "
                f"samples_per_problem={self.samples_per_problem}; make it one"
            )
        if self.num_minibatches > self.episodes_per_update:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} exceeds episodes_per_update="
                f"{self.episodes_per_update}; use at most one minibatch per episode"
            )
        if self.minibatch_size < self.grad_accum_steps:
            raise ValueError(
                f"a minibatch has {self.minibatch_size} episodes, fewer than grad_accum_steps="
                f"{self.grad_accum_steps}; lower grad_accum_steps or num_minibatches"
            )
        if self.critic == "separate" and not self.critic_model:
            raise ValueError("critic='separate' needs critic_model=NAME (same tokenizer as model)")
        if self.reward_normalization == "group" and self.samples_per_problem < 2:
            raise ValueError(
                "reward_normalization='group' needs samples_per_problem >= 2; "
                "raise samples_per_problem or use 'batch'"
            )

    def _check_positive_ints(self) -> None:
        for name in (
            "max_steps",
            "max_step_tokens",
            "max_context_tokens",
            "num_updates",
            "episodes_per_update",
            "samples_per_problem",
            "update_epochs",
            "num_minibatches",
            "grad_accum_steps",
            "adaptive_kl_horizon",
            "keep_checkpoints",
            "eval_problems",
            "lora_r",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in ("checkpoint_every", "eval_every", "problem_offset", "eval_offset", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r} must be a non-negative integer (0 disables)")

    def _check_ranges(self) -> None:
        def require(name: str, ok: bool, fix: str) -> None:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: {fix}")

        def finite(name: str) -> bool:
            value = getattr(self, name)
            return isinstance(value, (int, float)) and math.isfinite(value)

        require("temperature", finite("temperature") and self.temperature > 0, "use a value > 0")
        require("learning_rate", finite("learning_rate") and self.learning_rate > 0, "use > 0")
        if self.critic_learning_rate is not None:
            require(
                "critic_learning_rate",
                finite("critic_learning_rate") and self.critic_learning_rate > 0,
                "use a value > 0, or None to reuse learning_rate",
            )
        require("weight_decay", finite("weight_decay") and self.weight_decay >= 0, "use >= 0")
        require("max_grad_norm", finite("max_grad_norm") and self.max_grad_norm > 0, "use > 0")
        require("gamma", finite("gamma") and 0 <= self.gamma <= 1, "use a value in [0, 1]")
        require("gae_lambda", finite("gae_lambda") and 0 <= self.gae_lambda <= 1, "use [0, 1]")
        require("clip_coef", finite("clip_coef") and self.clip_coef > 0, "use a value > 0")
        require("vf_clip_coef", finite("vf_clip_coef") and self.vf_clip_coef > 0, "use > 0")
        require("vf_coef", finite("vf_coef") and self.vf_coef >= 0, "use a value >= 0")
        require("ent_coef", finite("ent_coef"), "use a finite number")
        require("kl_coef", finite("kl_coef") and self.kl_coef >= 0, "use a value >= 0")
        require("reward_clip", finite("reward_clip") and self.reward_clip > 0, "use > 0")
        require(
            "normalization_eps",
            finite("normalization_eps") and self.normalization_eps > 0,
            "use a small positive number such as 1e-6",
        )
        require("lora_dropout", 0 <= self.lora_dropout < 1, "use a value in [0, 1)")
        if self.target_kl is not None:
            require("target_kl", finite("target_kl") and self.target_kl > 0, "use > 0 or None")
        if self.adaptive_kl_target is not None:
            require(
                "adaptive_kl_target",
                finite("adaptive_kl_target") and self.adaptive_kl_target > 0,
                "use a value > 0, or None for a fixed kl_coef",
            )

    def _check_choices(self) -> None:
        choices = {
            "kl_estimator": KL_ESTIMATORS,
            "critic": CRITIC_KINDS,
            "reward_normalization": REWARD_NORMALIZATIONS,
            "nonfinite_reward": NONFINITE_REWARD_POLICIES,
            "dtype": DTYPES,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {allowed}")

    @property
    def minibatch_size(self) -> int:
        """Episodes per minibatch, rounded down (the first minibatches get the remainder)."""
        return self.episodes_per_update // self.num_minibatches

    @property
    def problems_per_update(self) -> int:
        """Distinct problems per rollout."""
        return self.episodes_per_update // self.samples_per_problem

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict (stored in checkpoints)."""
        data = dataclasses.asdict(self)
        if not isinstance(data["prm"], (str, type(None))):
            data["prm"] = repr(data["prm"])
        return data
