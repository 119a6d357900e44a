"""Atomic training checkpoints: write into a temporary folder, then rename it into place.

A checkpoint is the folder ``<output_dir>/checkpoints/update_<NNNNNN>`` holding
``state.pt`` (trainable weights, optimizer, RNG states, counters) and ``config.json``.
It is written under a hidden temporary name and moved with ``os.replace``, so a run
killed while saving leaves either the previous checkpoints or the complete new one,
never a partial folder under the final name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^update_(\d{6,})$")
STATE_FILE = "state.pt"


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Return complete checkpoints as ``(update, folder)``, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = CHECKPOINT_PATTERN.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """Return the folder of the newest complete checkpoint, or None."""
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1][1] if checkpoints else None


def save_checkpoint(
    output_dir: str | os.PathLike,
    update: int,
    state: dict[str, Any],
    config: dict[str, Any],
    keep: int,
) -> Path:
    """Write a checkpoint atomically and delete all but the ``keep`` newest ones.

    Args:
        output_dir: Run folder.
        update: Number of completed updates; names the folder.
        state: Tensors and plain Python values for ``torch.save``.
        config: JSON-serialisable run settings, stored next to the state.
        keep: Number of newest checkpoints to keep (at least 1).

    Returns:
        The checkpoint folder.
    """
    root = checkpoint_root(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"update_{update:06d}"
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-update_{update:06d}-", dir=root))
    try:
        torch.save(state, temporary / STATE_FILE)
        with open(temporary / "config.json", "w") as handle:
            json.dump(config, handle, indent=2, default=repr)
        if final.exists():
            # os.replace cannot overwrite a non-empty folder: move the old one aside first.
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=root))
            os.replace(final, stale / final.name)
            shutil.rmtree(stale)
        os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    logger.info("saved checkpoint %s", final)

    for _, old in list_checkpoints(output_dir)[: -max(keep, 1)]:
        shutil.rmtree(old, ignore_errors=True)
        logger.info("deleted old checkpoint %s", old)
    return final


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load the state of a checkpoint folder written by :func:`save_checkpoint`.

    The state is loaded with ``weights_only=True``: it contains only tensors,
    containers and plain numbers, so no pickled code runs.
    """
    file = Path(path) / STATE_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"checkpoint file {file} not found; pass a folder written by save_checkpoint"
        )
    return torch.load(file, map_location="cpu", weights_only=True)
