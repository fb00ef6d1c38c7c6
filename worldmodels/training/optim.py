"""Optimiser and learning-rate schedule shared by the families' LightningModules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import partial

import lightning as L
import torch

LR_SCHEDULES = ("constant", "cosine", "cosine_time")


def warmup_cosine(step: int, warmup: int, total: int, min_progress: float = 0.0) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at step ``total``.
    ``min_progress`` (in [0, 1]) moves the decay at least that far along (the time-aware schedule's use)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), min_progress))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def time_aware_warmup_cosine(warmup: int, total: int, timer) -> Callable[[int], float]:
    """:func:`warmup_cosine` whose decay also follows a wall-clock budget: after the warm-up, the progress is
    the larger of the steps done (of ``total``) and the time used (of what ``timer`` had left when the
    warm-up ended), so a run stopped by its time limit still ends at a learning rate near zero instead of
    mid-schedule. ``timer`` is Lightning's :class:`~lightning.pytorch.callbacks.Timer` (``max_time``); with
    None, or no time limit, this is :func:`warmup_cosine`."""
    start: list[float] = []  # train time elapsed when the warm-up ended

    def fn(step: int) -> float:
        by_time = 0.0
        remaining = None if (timer is None or step < warmup) else timer.time_remaining("train")
        if remaining is not None:
            elapsed = timer.time_elapsed("train")
            if not start:
                start.append(elapsed)
            span = elapsed + remaining - start[0]
            if span > 0:
                by_time = (elapsed - start[0]) / span
        return warmup_cosine(step, warmup, total, min_progress=by_time)

    return fn


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
    ``max_epochs`` of batches); ``"cosine_time"`` also reaches zero when the trainer's ``max_time`` runs out
    first (:func:`time_aware_warmup_cosine`)."""
    check_schedule(lr_schedule, warmup_steps)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if lr_schedule == "constant":
        return opt
    total = int(trainer.estimated_stepping_batches)
    if lr_schedule == "cosine_time":
        from lightning.pytorch.callbacks import Timer

        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        fn = time_aware_warmup_cosine(warmup_steps, total, timer)
    else:
        fn = partial(warmup_cosine, warmup=warmup_steps, total=total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
