"""Training loop of the learned PRM: binary cross-entropy on the step-tag logits.

Labels may be hard (0/1) or soft (Monte-Carlo fractions); NaN labels are masked out.
Checkpoints hold the PRM (``save_pretrained``), the optimizer state and the step counter,
and the order of examples in each epoch is a function of ``(seed, epoch)``, so a resumed
run continues with the same batches it would have seen.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasoning_gym.prm.data import LabeledSolution
from reasoning_gym.prm.learned import LearnedPRM, pad_batch, tag_logits

logger = logging.getLogger(__name__)

_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class PRMTrainConfig:
    """Settings of :func:`train_prm`.

    Attributes:
        max_steps: Optimizer steps to run in total (a resumed run counts the earlier ones).
        batch_size: Solutions per optimizer step.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: Steps of linear learning-rate warm-up.
        max_grad_norm: Gradient-norm clipping; 0 disables it.
        checkpoint_every: Save a checkpoint every this many steps (0: only at the end).
        keep_checkpoints: Number of most recent checkpoints kept on disk.
        log_every: Append the mean loss to ``train_log.jsonl`` every this many steps.
        seed: Seed of the example order.
        max_length: Solutions with more input tokens are skipped (with a warning).
    """

    max_steps: int = 300
    batch_size: int = 8
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_grad_norm: float = 1.0
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    max_length: int = 2048

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "log_every", "max_length", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("warmup_steps", "checkpoint_every", "weight_decay", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must not be negative")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate} must be positive")


@dataclass
class PRMTrainResult:
    """Outcome of :func:`train_prm`.

    Attributes:
        losses: Mean loss of every optimizer step run in this call.
        step: The global step reached.
        resumed_from: Step of the checkpoint resumed from, or 0.
        skipped: Solutions skipped as longer than ``max_length`` or without labels.
        seconds: Wall-clock seconds of this call.
    """

    losses: list[float] = field(default_factory=list)
    step: int = 0
    resumed_from: int = 0
    skipped: int = 0
    seconds: float = 0.0


def encode_examples(
    prm: LearnedPRM, solutions: Sequence[LabeledSolution], max_length: int
) -> tuple[list[tuple[list[int], list[int], list[float]]], int]:
    """Encode solutions into ``(ids, tag positions, labels)``; return them and the skip count."""
    examples = []
    skipped = 0
    for solution in solutions:
        ids, positions = prm.inputs(solution.prompt, solution.completions)
        labelled = [not math.isnan(label) for label in solution.labels]
        if len(ids) > max_length or not any(labelled):
            skipped += 1
            continue
        examples.append((ids, positions, list(solution.labels)))
    if skipped:
        logger.warning(
            "skipped %d of %d solutions (longer than %d tokens or without labels)",
            skipped,
            len(solutions),
            max_length,
        )
    return examples, skipped


def batch_loss(prm: LearnedPRM, batch: Sequence[tuple[list[int], list[int], list[float]]]) -> Any:
    """Mean binary cross-entropy over the labelled step tags of a batch."""
    import torch
    import torch.nn.functional as functional

    input_ids, attention_mask = pad_batch([ids for ids, _, _ in batch], prm.pad_id)
    device = prm.device
    logits = tag_logits(prm.model, input_ids.to(device), attention_mask.to(device))  # (B, T)
    rows, columns, targets = [], [], []
    for row, (_, positions, labels) in enumerate(batch):
        for position, label in zip(positions, labels, strict=True):
            if not math.isnan(label):
                rows.append(row)
                columns.append(position)
                targets.append(label)
    selected = logits[torch.as_tensor(rows), torch.as_tensor(columns)].float()  # (N,)
    target = torch.as_tensor(targets, dtype=torch.float32, device=selected.device)  # (N,)
    return functional.binary_cross_entropy_with_logits(selected, target)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """Return the ``checkpoint-N`` folder with the largest N under ``out_dir``, or None."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return None
    found = [
        (int(match.group(1)), path)
        for path in out_dir.iterdir()
        if path.is_dir() and (match := _CHECKPOINT_PATTERN.match(path.name))
        if (path / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def _save_checkpoint(prm: LearnedPRM, optimizer: Any, out_dir: Path, step: int, keep: int) -> Path:
    import torch

    path = out_dir / f"checkpoint-{step}"
    partial = out_dir / f".checkpoint-{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    prm.save_pretrained(partial)
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")
    (partial / "trainer_state.json").write_text(json.dumps({"step": step}), encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)  # a crash mid-save leaves only the .partial folder behind
    checkpoints = sorted(
        (int(match.group(1)), child)
        for child in out_dir.iterdir()
        if (match := _CHECKPOINT_PATTERN.match(child.name))
    )
    for _, old in checkpoints[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def train_prm(
    prm: LearnedPRM,
    solutions: Sequence[LabeledSolution],
    config: PRMTrainConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> PRMTrainResult:
    """Train ``prm`` in place on step-labelled solutions.

    Args:
        prm: The PRM to train (its model is switched to train mode and back to eval).
        solutions: Training data; labels may be soft, NaN labels are masked.
        config: Training settings.
        out_dir: Folder of checkpoints, ``train_log.jsonl`` and, at the end, the final
            model (``save_pretrained``); None trains in memory only.
        resume: Continue from the latest checkpoint in ``out_dir``.
        progress: Show a tqdm progress bar.
    """
    import torch
    from tqdm.auto import tqdm

    config = config or PRMTrainConfig()
    started = time.perf_counter()
    examples, skipped = encode_examples(prm, solutions, config.max_length)
    if not examples:
        raise ValueError(
            f"no usable training solutions among {len(solutions)}: each needs a labelled step "
            f"and at most max_length={config.max_length} tokens"
        )
    optimizer = torch.optim.AdamW(
        prm.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    out_path = Path(out_dir) if out_dir is not None else None
    step = 0
    if resume:
        if out_path is None:
            raise ValueError(
                "resume=True requires out_dir, the folder that contains the checkpoints"
            )
        checkpoint = latest_checkpoint(out_path)
        if checkpoint is None:
            logger.warning("no checkpoint found in %s; training from the start", out_path)
        else:
            step = _load_checkpoint(prm, optimizer, checkpoint)
            logger.info("resumed from %s at step %d", checkpoint, step)
    resumed_step = step
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda local: min(1.0, (resumed_step + local + 1) / max(1, config.warmup_steps)),
    )
    result = PRMTrainResult(step=step, resumed_from=step, skipped=skipped)
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    log_path = out_path / "train_log.jsonl" if out_path is not None else None

    batches_per_epoch = math.ceil(len(examples) / config.batch_size)
    prm.model.train()
    bar = tqdm(
        total=config.max_steps, initial=step, desc="training PRM", unit="step", disable=not progress
    )
    window: list[float] = []
    try:
        while step < config.max_steps:
            epoch, position = divmod(step, batches_per_epoch)
            order = _epoch_order(len(examples), config.seed, epoch)
            chunk = order[position * config.batch_size : (position + 1) * config.batch_size]
            loss = batch_loss(prm, [examples[i] for i in chunk])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(prm.model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            result.losses.append(value)
            window.append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if step % config.log_every == 0 and log_path is not None:
                with open(log_path, "a", encoding="utf-8") as handle:
                    record = {"step": step, "loss": float(np.mean(window)), "epoch": epoch}
                    handle.write(json.dumps(record) + "\n")
                window.clear()
            every = config.checkpoint_every
            if out_path is not None and every and step % every == 0:
                _save_checkpoint(prm, optimizer, out_path, step, config.keep_checkpoints)
    finally:
        bar.close()
        prm.model.eval()
        prm.clear_cache()
    if out_path is not None:
        if not config.checkpoint_every or step % config.checkpoint_every:
            _save_checkpoint(prm, optimizer, out_path, step, config.keep_checkpoints)
        prm.save_pretrained(out_path / "final")
    result.step = step
    result.seconds = time.perf_counter() - started
    return result


def _load_checkpoint(prm: LearnedPRM, optimizer: Any, checkpoint: Path) -> int:
    import torch
    from transformers import AutoModelForTokenClassification

    loaded = AutoModelForTokenClassification.from_pretrained(checkpoint)
    prm.model.load_state_dict(loaded.state_dict())
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state["step"])
