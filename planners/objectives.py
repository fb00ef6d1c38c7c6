"""Objectives ``cost(pred_state, actions (B, H, A)) -> (B,)`` and chunked cost functions for planners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from worldmodels.api import CostFn, Objective


class GoalDistance:
    """Distance to a goal in the model's latent space (DINO-WM): MSE between predicted and goal patch
    features, plus ``alpha`` times the MSE between predicted and goal (normalised) proprio.

    Args:
        goal: latent goal with ``visual (1, 1, N, D)`` and ``proprio (1, 1, P)`` (from ``model.encode``).
        alpha: weight of the proprio term (DINO-WM: 1 for Wall/PushT, 0 for PointMaze).
        mode: ``"last"`` (last predicted frame, DINO-WM) or ``"all"`` (every frame, discounted).
        discount: ``"all"``: frame ``h`` of ``H`` weighs ``discount ** (H - 1 - h)`` (the last weighs 1).
    """

    def __init__(self, goal: Any, alpha: float = 1.0, mode: str = "last", discount: float = 0.9):
        if mode not in ("last", "all"):
            raise ValueError(f"mode={mode!r}; allowed values: 'last', 'all'")
        self.goal, self.alpha, self.mode, self.discount = goal, alpha, mode, discount

    def per_frame(self, pred: Any) -> Tensor:
        """``(B, H)`` cost of every predicted frame."""
        cost = ((pred.visual - self.goal.visual[:, -1:]) ** 2).mean(dim=(-1, -2))
        if self.alpha and pred.proprio is not None and self.goal.proprio is not None:
            cost = cost + self.alpha * ((pred.proprio - self.goal.proprio[:, -1:]) ** 2).mean(-1)
        return cost

    def __call__(self, pred: Any, actions: Tensor) -> Tensor:
        cost = self.per_frame(pred)
        if self.mode == "last":
            return cost[:, -1]
        h = cost.shape[1]
        w = self.discount ** torch.arange(h - 1, -1, -1, device=cost.device, dtype=cost.dtype)
        return (cost * w).sum(1) / w.sum()


class NegativeReturn:
    """``-sum_h gamma^h r_h`` for models whose predicted state carries ``reward (B, H)``.

    Args:
        gamma: discount.
    """

    def __init__(self, gamma: float = 0.99):
        self.gamma = gamma

    def __call__(self, pred: Any, actions: Tensor) -> Tensor:
        r = pred.reward
        w = self.gamma ** torch.arange(r.shape[1], device=r.device, dtype=r.dtype)
        return -(r * w).sum(1)


def make_cost_fn(
    rollout: Callable[[Any, Tensor], Any],
    state: Any,
    objective: Objective,
    chunk_size: int | None = None,
    grad: bool = False,
) -> CostFn:
    """``actions (S, H, A) -> (S,)``: roll the model out from ``state`` (encoded once; batch 1 broadcast)
    and score with ``objective``, ``chunk_size`` candidates at a time (bounded memory); under
    ``torch.inference_mode`` unless ``grad`` (gradient planners)."""
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size} must be >= 1")

    def cost_fn(actions: Tensor) -> Tensor:
        size = chunk_size or actions.shape[0]
        if grad:
            return torch.cat([objective(rollout(state, a), a) for a in actions.split(size)])
        with torch.inference_mode():
            return torch.cat([objective(rollout(state, a), a) for a in actions.split(size)]).clone()

    return cost_fn
