"""Turn a batch of variable-length token-id observations into padded model inputs.

A :class:`reasoning_gym.vector.ReasoningVectorEnv` (like ``SyncVectorEnv`` over single
environments) returns its observations as a tuple of 1-D int64 arrays of different
lengths. :func:`pad_batch` turns them into ``(input_ids, attention_mask)`` of shape
``(B, T)``. Use right padding for scoring and training and left padding for
generation, so that every row's last real token sits in the last column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PADDING_SIDES = ("right", "left")
TENSOR_TYPES = ("np", "pt")


def pad_batch(
    observations: Sequence[Any],
    pad_id: int = 0,
    side: str = "right",
    return_tensors: str = "np",
    pad_to_multiple_of: int | None = None,
    max_length: int | None = None,
) -> tuple[Any, Any]:
    """Pad a batch of 1-D token-id sequences into ``(input_ids, attention_mask)``.

    Args:
        observations: Sequences of token ids, such as the tuple of arrays a vector
            environment returns. Lists, numpy arrays and 1-D torch tensors are accepted.
        pad_id: Id written into padding positions.
        side: ``"right"`` puts padding after the tokens, ``"left"`` before them.
        return_tensors: ``"np"`` for numpy int64 arrays, ``"pt"`` for torch long tensors.
        pad_to_multiple_of: Round the padded length ``T`` up to a multiple of this.
        max_length: Maximum number of tokens per row; longer rows raise ValueError, so
            no context is silently cut.

    Returns:
        ``input_ids`` of shape (B, T) and ``attention_mask`` of shape (B, T), with 1 on
        real tokens and 0 on padding. An empty batch gives arrays of shape (0, 0).

    Raises:
        ValueError: On an unknown ``side`` or ``return_tensors``, a row that is not 1-D,
            or a row longer than ``max_length``.
        TypeError: On a row that does not hold integers.
    """
    if side not in PADDING_SIDES:
        raise ValueError(f"side={side!r} is invalid; use one of {PADDING_SIDES}")
    if return_tensors not in TENSOR_TYPES:
        raise ValueError(f"return_tensors={return_tensors!r} is invalid; use one of {TENSOR_TYPES}")
    if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
        raise ValueError(f"pad_to_multiple_of={pad_to_multiple_of} must be at least 1 or None")
    if max_length is not None and max_length < 0:
        raise ValueError(f"max_length={max_length} must be non-negative or None")

    rows = [_as_ids(row, index) for index, row in enumerate(observations)]
    lengths = [len(row) for row in rows]
    longest = max(lengths, default=0)
    if max_length is not None and longest > max_length:
        index = lengths.index(longest)
        raise ValueError(
            f"row {index} has {longest} tokens, more than max_length={max_length}; "
            "raise max_length or shorten the contexts"
        )
    width = longest
    if pad_to_multiple_of is not None and width % pad_to_multiple_of:
        width += pad_to_multiple_of - width % pad_to_multiple_of

    input_ids = np.full((len(rows), width), int(pad_id), dtype=np.int64)  # (B, T)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)  # (B, T)
    for index, row in enumerate(rows):
        start = 0 if side == "right" else width - len(row)
        input_ids[index, start : start + len(row)] = row
        attention_mask[index, start : start + len(row)] = 1

    if return_tensors == "pt":
        import torch

        return torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
    return input_ids, attention_mask


def unpad_batch(input_ids: Any, attention_mask: Any) -> tuple[np.ndarray, ...]:
    """Return the real tokens of each row of a padded batch, the inverse of :func:`pad_batch`.

    Args:
        input_ids: Padded ids of shape (B, T), numpy or torch.
        attention_mask: Mask of shape (B, T) with 1 on real tokens.

    Returns:
        A tuple of B int64 arrays, in the form a vector environment returns observations.
    """
    ids = _to_numpy(input_ids)
    mask = _to_numpy(attention_mask)
    if ids.ndim != 2 or ids.shape != mask.shape:
        raise ValueError(
            f"input_ids {ids.shape} and attention_mask {mask.shape} must both have shape (B, T)"
        )
    return tuple(ids[row][mask[row].astype(bool)].astype(np.int64) for row in range(len(ids)))


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _as_ids(row: Any, index: int) -> np.ndarray:
    array = _to_numpy(row)
    if array.ndim != 1:
        raise ValueError(f"row {index} has shape {array.shape}; each row must be 1-D token ids")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"row {index} has dtype {array.dtype}; token ids must be integers")
    return array.astype(np.int64, copy=False)
