"""Step advantages of process-supervised GRPO against hand-computed tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.grpo_process.advantages import group_step_advantages


def test_two_solutions_hand_computed():
    # Rewards 1, 0 | 1 -> mean 2/3, std sqrt(2/9).
    result = group_step_advantages([[1.0, 0.0], [1.0]])
    std = math.sqrt(2 / 9)
    high, low = (1 - 2 / 3) / std, (0 - 2 / 3) / std
    np.testing.assert_allclose(result.normalized_rewards[0], [high, low])
    np.testing.assert_allclose(result.advantages[0], [high + low, low])
    np.testing.assert_allclose(result.advantages[1], [high])
    assert result.num_nonfinite == 0
    assert result.degenerate is False


def test_single_step_solutions():
    result = group_step_advantages([[1.0], [0.0]])
    np.testing.assert_allclose(result.advantages[0], [1.0])
    np.testing.assert_allclose(result.advantages[1], [-1.0])


def test_equal_rewards_give_zero():
    result = group_step_advantages([[0.7, 0.7], [0.7]])
    assert result.degenerate is True
    for advantages in result.advantages:
        np.testing.assert_array_equal(advantages, 0.0)


def test_epsilon_spread_is_zero():
    residue = np.float32(0.7) - np.float64(0.7)  # float32 residue, about 1e-8
    result = group_step_advantages([[0.7, 0.7 + residue], [0.7]], eps=1e-6)
    assert result.degenerate is True
    np.testing.assert_array_equal(result.advantages[0], 0.0)


def test_nan_rewards_are_excluded():
    result = group_step_advantages([[1.0, float("nan")], [0.0]])
    assert result.num_nonfinite == 1
    # Statistics over {1, 0}: mean 0.5, std 0.5; the NaN step counts 0.
    np.testing.assert_allclose(result.normalized_rewards[0], [1.0, 0.0])
    np.testing.assert_allclose(result.advantages[0], [1.0, 0.0])
    np.testing.assert_allclose(result.advantages[1], [-1.0])
    assert all(np.isfinite(a).all() for a in result.advantages)


def test_invalid_eps():
    with pytest.raises(ValueError, match="eps"):
        group_step_advantages([[1.0]], eps=0.0)
