"""Gradient-based planning: Adam on the action sequence through a differentiable cost (DINO-WM's GD)."""

from __future__ import annotations

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, initial_mean
from worldmodels.api import CostFn


class GradientPlanner:
    """Adam on actions, several restarts in parallel, Gaussian noise added after each step.

    Args:
        steps: optimisation steps (DINO-WM: 1000 at lr 1; smaller budgets need a larger lr or fewer steps).
        lr: Adam learning rate.
        noise: std of the Gaussian noise added to the actions after each step (DINO-WM: 0.003).
        restarts: sequences optimised in parallel (restart 0 starts at the warm start / box middle, the
            others uniformly in the box).
    """

    def __init__(self, steps: int = 100, lr: float = 0.1, noise: float = 0.003, restarts: int = 4):
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps={steps} and restarts={restarts} must be >= 1")
        self.steps, self.lr, self.noise, self.restarts = steps, lr, noise, restarts

    def plan(self, cost_fn: CostFn, *, horizon: int, action_dim: int, low: Tensor, high: Tensor,
             init: Tensor | None = None, generator: torch.Generator) -> PlanResult:  # fmt: skip
        check_plan_args(horizon, action_dim, low, high, init)
        start = torch.rand(
            self.restarts, horizon, action_dim, generator=generator, device=low.device, dtype=low.dtype
        )
        start = low + start * (high - low)
        start[0] = initial_mean(horizon, low, high, init)
        actions = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([actions], lr=self.lr)
        trace = []
        with torch.enable_grad():
            for _ in range(self.steps):
                costs = cost_fn(actions)
                opt.zero_grad(set_to_none=True)
                costs.sum().backward()
                opt.step()
                with torch.no_grad():
                    actions += self.noise * torch.randn(
                        actions.shape, generator=generator, device=low.device, dtype=low.dtype
                    )
                    actions.copy_(clamp(actions, low, high))
                trace.append(costs.min().item())
        with torch.no_grad():
            costs = cost_fn(actions)
            i = int(torch.argmin(costs))
        return PlanResult(actions[i].detach().clone(), float(costs[i]), {"min_cost": trace})
