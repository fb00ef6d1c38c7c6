"""Optimiser and learning-rate schedule shared by the families' LightningModules."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial

import lightning as L
import torch

LR_SCHEDULES = ("constant", "cosine")


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at step ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def check_schedule(lr_schedule: str, warmup_steps: int) -> None:
    """``ValueError`` naming the argument for an unknown schedule or a negative warm-up."""
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule={lr_schedule!r}; allowed values: {LR_SCHEDULES}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps={warmup_steps} must be >= 0")


def adamw_with_schedule(
    params: Iterable[torch.nn.Parameter], trainer: L.Trainer, *, lr: float, weight_decay: float,
    lr_schedule: str = "constant", warmup_steps: int = 0,
) -> torch.optim.Optimizer | dict:  # fmt: skip
    """What ``configure_optimizers`` returns: AdamW, and for ``lr_schedule="cosine"`` a per-step
    :func:`warmup_cosine` schedule that reaches zero at the trainer's last step (``max_steps``, else
    ``max_epochs`` of batches)."""
    check_schedule(lr_schedule, warmup_steps)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if lr_schedule == "constant":
        return opt
    fn = partial(warmup_cosine, warmup=warmup_steps, total=int(trainer.estimated_stepping_batches))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
