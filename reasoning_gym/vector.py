"""A native vector environment that scores the steps of all its episodes in one PRM call.

``SyncVectorEnv`` over ``N`` single environments calls the process reward model ``N``
times per vector step. :class:`ReasoningVectorEnv` runs ``N`` :class:`ReasoningEnv`
episodes that share one task, one tokenizer and one PRM object, and splits each vector
step into the phases the single environment exposes:

1. ``prepare_step`` validates and encodes every action. Nothing changes yet, so an
   invalid action raises before any episode moves.
2. ``score_pending`` scores all pending steps with one batched ``prm.score`` call.
3. :func:`verify_pendings` verifies the final answers among them in one pass.
4. ``commit_step`` applies each step with its scores.

For the same seeds and actions the observations, rewards, ``terminated``, ``truncated``
and infos equal those of ``gymnasium.vector.SyncVectorEnv`` over single environments,
as long as the PRM scores an item alone as it does in a batch. A neural PRM can differ
in float rounding between batch shapes (about 1e-7 for ``LearnedPRM`` on CPU).

Batched observations are a tuple of ``num_envs`` read-only 1-D int64 arrays of
different lengths, the form ``SyncVectorEnv`` produces for the ``Sequence`` observation
space. :func:`reasoning_gym.batching.pad_batch` turns them into ``(input_ids,
attention_mask)``. Actions are a sequence of ``num_envs`` items, each a str or a 1-D
array of token ids.

Create it with ``gym.make_vec("Reasoning-v0", num_envs=N, task=...)``: every Reasoning
id registers this class as its ``vector_entry_point``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from reasoning_gym.env import PendingStep, ReasoningEnv
from reasoning_gym.errors import InvalidActionError

logger = logging.getLogger(__name__)

#: Reset options that may hold one value per environment (a list, tuple or array).
PER_ENV_OPTIONS = ("index", "problem")


class ReasoningVectorEnv(VectorEnv):
    """``num_envs`` Reasoning episodes stepped together with batched PRM calls.

    Args:
        num_envs: Number of episodes.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default, as ``SyncVectorEnv``),
            ``SAME_STEP`` or ``DISABLED``, or its string value. With ``NEXT_STEP`` the
            step that ends an episode returns its final observation and info, and the
            next step ignores that environment's action and returns the observation and
            info of ``reset()`` with reward 0. With ``SAME_STEP`` the ending step returns
            the reset observation, and ``info["final_obs"]`` and ``info["final_info"]``
            (masked by ``info["_final_obs"]``) hold the last observation and info.
            With ``DISABLED`` stepping an ended episode raises ResetNeededError until it
            is reset with ``reset(options={"reset_mask": ...})``.
        max_episode_steps: Set by ``gym.make_vec`` when the registered spec has one;
            lowers ``max_steps`` to it (the episode is truncated there).
        **env_kwargs: Keyword arguments of :class:`ReasoningEnv`. The first environment
            builds the task, tokenizer and PRM from them, and the others reuse those
            objects, so a data set is loaded once and all steps go to one PRM.
    """

    def __init__(
        self,
        num_envs: int = 1,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        **env_kwargs: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be an int, got {type(num_envs).__name__}")
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be at least 1")
        if max_episode_steps is not None:
            if max_episode_steps < 1:
                raise ValueError(f"max_episode_steps={max_episode_steps} must be at least 1")
            default = inspect.signature(ReasoningEnv).parameters["max_steps"].default
            max_steps = int(env_kwargs.get("max_steps", default))
            env_kwargs["max_steps"] = min(max_steps, int(max_episode_steps))

        first = ReasoningEnv(**env_kwargs)
        shared = dict(env_kwargs)
        shared.pop("task_kwargs", None)
        shared.update(task=first.task, tokenizer=first.tokenizer, prm=first.prm)
        envs = [first] + [ReasoningEnv(**shared) for _ in range(int(num_envs) - 1)]
        self._setup(envs, autoreset_mode)

    @classmethod
    def from_envs(
        cls,
        envs: Sequence[ReasoningEnv],
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> ReasoningVectorEnv:
        """Wrap existing environments, which must share one PRM object and reward settings.

        Raises:
            ValueError: When ``envs`` is empty or the environments use different PRM
                objects or reward settings, which one batched PRM call cannot serve.
        """
        envs = list(envs)
        if not envs:
            raise ValueError("envs is empty; pass at least one ReasoningEnv")
        for index, env in enumerate(envs):
            if not isinstance(env, ReasoningEnv):
                raise TypeError(f"envs[{index}] is a {type(env).__name__}, not a ReasoningEnv")
            if env.prm is not envs[0].prm:
                raise ValueError(
                    f"envs[{index}] has a different PRM object than envs[0]; build the "
                    "environments with the same prm=<ProcessRewardModel> instance"
                )
            if env.reward_config != envs[0].reward_config:
                raise ValueError(
                    f"envs[{index}] has reward settings {env.reward_config}, but envs[0] has "
                    f"{envs[0].reward_config}; use the same reward settings"
                )
        vector = cls.__new__(cls)
        vector._setup(envs, autoreset_mode)
        return vector

    def _setup(self, envs: list[ReasoningEnv], autoreset_mode: AutoresetMode | str) -> None:
        if not isinstance(autoreset_mode, AutoresetMode):
            try:
                autoreset_mode = AutoresetMode(autoreset_mode)
            except ValueError:
                known = [mode.value for mode in AutoresetMode]
                raise ValueError(
                    f"autoreset_mode={autoreset_mode!r} is invalid; use an AutoresetMode or "
                    f"one of {known}"
                ) from None
        self.envs = envs
        self.num_envs = len(envs)
        self.autoreset_mode = autoreset_mode
        self.metadata = {**envs[0].metadata, "autoreset_mode": autoreset_mode}
        self.render_mode = envs[0].render_mode
        self.single_observation_space = envs[0].observation_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.single_action_space = envs[0].action_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.closed = False

        self._observations: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * self.num_envs
        self._terminations = np.zeros(self.num_envs, dtype=np.bool_)
        self._truncations = np.zeros(self.num_envs, dtype=np.bool_)
        self._autoreset_envs = np.zeros(self.num_envs, dtype=np.bool_)

    # ------------------------------------------------------------------ shared objects
    @property
    def prm(self) -> Any:
        """The PRM shared by all environments (None when process rewards are off)."""
        return self.envs[0].prm

    @property
    def tokenizer(self) -> Any:
        """The tokenizer shared by all environments."""
        return self.envs[0].tokenizer

    @property
    def task(self) -> Any:
        """The task of the first environment (shared by all when built from kwargs)."""
        return self.envs[0].task

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:
        """The numpy generators of the environments, as ``SyncVectorEnv`` returns them."""
        return tuple(env.np_random for env in self.envs)

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        return tuple(env.np_random_seed for env in self.envs)

    # ------------------------------------------------------------------ reset
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
        """Reset all environments, or those selected by ``options["reset_mask"]``.

        Args:
            seed: None, an int (environment ``i`` gets ``seed + i``) or one seed (or
                None) per environment.
            options: ``"reset_mask"``: a bool array of shape ``(num_envs,)`` selecting
                the environments to reset, as in ``SyncVectorEnv``; the others keep
                their episodes and observations. ``"index"`` and ``"problem"``: a
                single value applies to every reset environment, and a list, tuple or
                array of ``num_envs`` values gives environment ``i`` entry ``i`` (None
                entries draw a problem from that environment's generator). Other keys
                go unchanged to every ``ReasoningEnv.reset``.

        Returns:
            The observations of all environments and the merged infos of the reset ones.
        """
        seeds = self._split_seeds(seed)
        options = dict(options or {})
        reset_mask = self._check_reset_mask(options.pop("reset_mask", None))
        env_options = self._split_options(options)

        self._terminations[reset_mask] = False
        self._truncations[reset_mask] = False
        self._autoreset_envs[reset_mask] = False
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(reset_mask):
            self._observations[i], env_info = self.envs[i].reset(
                seed=seeds[i], options=env_options[i]
            )
            infos = self._add_info(infos, env_info, int(i))
        return tuple(self._observations), infos

    def _split_seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        if isinstance(seed, (list, tuple, np.ndarray)):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"seed has {len(seed)} entries but num_envs={self.num_envs}; pass one "
                    "seed per environment, an int or None"
                )
            return [None if s is None else int(s) for s in seed]
        raise TypeError(f"seed={seed!r} is invalid; pass None, an int or a list of seeds")

    def _check_reset_mask(self, reset_mask: Any) -> np.ndarray:
        if reset_mask is None:
            return np.ones(self.num_envs, dtype=np.bool_)
        if not isinstance(reset_mask, np.ndarray) or reset_mask.dtype != np.bool_:
            raise TypeError(f"options['reset_mask'] must be a numpy bool array, got {reset_mask!r}")
        if reset_mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] has shape {reset_mask.shape}, expected ({self.num_envs},)"
            )
        if not reset_mask.any():
            raise ValueError("options['reset_mask'] selects no environment; set at least one True")
        return reset_mask

    def _split_options(self, options: dict[str, Any]) -> list[dict[str, Any]]:
        per_env = [dict(options) for _ in range(self.num_envs)]
        for key in PER_ENV_OPTIONS:
            values = options.get(key)
            if not isinstance(values, (list, tuple, np.ndarray)):
                continue
            if len(values) != self.num_envs:
                raise ValueError(
                    f"options[{key!r}] has {len(values)} entries but num_envs={self.num_envs}; "
                    "pass one entry per environment (None for no choice) or a single value"
                )
            for i, value in enumerate(values):
                if value is None:
                    del per_env[i][key]
                else:
                    per_env[i][key] = value.item() if isinstance(value, np.generic) else value
        return per_env

    # ------------------------------------------------------------------ step
    def step(
        self, actions: Sequence[Any]
    ) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment; the PRM is called at most once for all of them.

        Args:
            actions: ``num_envs`` actions, each a str or a 1-D array of token ids. With
                ``NEXT_STEP`` autoreset the action of an environment that ended on the
                previous step is ignored.

        Returns:
            ``(observations, rewards, terminated, truncated, infos)``: a tuple of
            ``num_envs`` 1-D int64 arrays, three arrays of shape ``(num_envs,)``, and the
            infos merged as Gymnasium does (key ``k`` with mask ``_k``).
        """
        actions = self._split_actions(actions)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            stepping = [i for i in range(self.num_envs) if not self._autoreset_envs[i]]
        else:
            stepping = list(range(self.num_envs))

        # Phase 1: validate every action before any episode changes.
        pendings = [self.envs[i].prepare_step(actions[i]) for i in stepping]
        # Phases 2 and 3: one PRM call and one verification pass for the whole batch.
        prm_scores = self.envs[0].score_pending(pendings) if pendings else []
        outcomes = verify_pendings(self.envs, stepping, pendings)

        rewards = np.zeros(self.num_envs, dtype=np.float64)
        env_infos: list[list[dict[str, Any]]] = [[] for _ in range(self.num_envs)]
        scored = zip(pendings, prm_scores, outcomes, strict=True)
        committed = dict(zip(stepping, scored, strict=True))
        for i, env in enumerate(self.envs):
            if i not in committed:
                # NEXT_STEP autoreset of an episode that ended on the previous step.
                self._observations[i], reset_info = env.reset()
                self._terminations[i] = False
                self._truncations[i] = False
                env_infos[i].append(reset_info)
                continue
            pending, prm_score, outcome = committed[i]
            obs, reward, terminated, truncated, info = env.commit_step(pending, prm_score, outcome)
            self._observations[i] = obs
            rewards[i] = reward
            self._terminations[i] = terminated
            self._truncations[i] = truncated
            if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
                env_infos[i].append({"final_obs": obs, "final_info": info})
                self._observations[i], info = env.reset()
            env_infos[i].append(info)

        infos: dict[str, Any] = {}
        for i, pieces in enumerate(env_infos):
            for piece in pieces:
                infos = self._add_info(infos, piece, i)
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            tuple(self._observations),
            rewards,
            self._terminations.copy(),
            self._truncations.copy(),
            infos,
        )

    def _split_actions(self, actions: Any) -> list[Any]:
        if isinstance(actions, (str, bytes)) or not hasattr(actions, "__len__"):
            raise InvalidActionError(
                f"actions must be a sequence of {self.num_envs} actions (one str or token-id "
                f"array per environment), got {type(actions).__name__}"
            )
        if len(actions) != self.num_envs:
            raise InvalidActionError(
                f"got {len(actions)} actions for num_envs={self.num_envs}; pass one per environment"
            )
        return list(actions)

    def _add_info(
        self, vector_infos: dict[str, Any], env_info: dict[str, Any], env_num: int
    ) -> dict[str, Any]:
        """Merge one environment's info as ``VectorEnv._add_info`` does.

        Gymnasium 1.x builds a numeric array from the first value of a key and then
        fails on a later None (``info["prm_score"]`` is None for an invalid step), so
        such an array is widened to an object array first.
        """
        for key, value in env_info.items():
            array = vector_infos.get(key)
            is_numeric = isinstance(array, np.ndarray) and array.dtype != object
            if is_numeric and array.ndim == 1 and not _fits_numeric(value):
                vector_infos[key] = array.astype(object)
        return super()._add_info(vector_infos, env_info, env_num)

    # ------------------------------------------------------------------ other API
    def render(self) -> tuple[str | None, ...]:
        """Return each environment's rendering (text with ``render_mode="ansi"``)."""
        return tuple(env.render() for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every environment (or read it if not callable)."""
        results = []
        for env in self.envs:
            attribute = getattr(env, name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Return attribute ``name`` of every environment."""
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name``: one value per environment from a list or tuple, else the same."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(
                f"got {len(values)} values for attribute {name!r} and num_envs={self.num_envs}"
            )
        for env, value in zip(self.envs, values, strict=True):
            setattr(env, name, value)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()


def verify_pendings(
    envs: Sequence[ReasoningEnv], env_indices: Sequence[int], pendings: Sequence[PendingStep]
) -> list[float | None]:
    """Verify the final answers among ``pendings`` in one pass; None for the other steps.

    ``pendings[k]`` belongs to ``envs[env_indices[k]]``. The final steps are grouped by
    task, and each task scores its group with one ``Task.verify_batch`` call.
    """
    outcomes: list[float | None] = [None] * len(pendings)
    by_task: dict[int, list[int]] = {}
    for k, pending in enumerate(pendings):
        if pending.is_final:
            by_task.setdefault(id(envs[env_indices[k]].task), []).append(k)
    for group in by_task.values():
        task = envs[env_indices[group[0]]].task
        problems = [pendings[k].state.problem for k in group]
        texts = [pendings[k].text for k in group]
        values = list(task.verify_batch(problems, texts))
        if len(values) != len(group):
            raise ValueError(
                f"{type(task).__name__}.verify_batch returned {len(values)} scores for "
                f"{len(group)} answers; return one score per answer"
            )
        for k, value in zip(group, values, strict=True):
            outcomes[k] = float(value)
    return outcomes


def _fits_numeric(value: Any) -> bool:
    return isinstance(value, (bool, int, float, np.number))


__all__ = ["PER_ENV_OPTIONS", "ReasoningVectorEnv", "verify_pendings"]
