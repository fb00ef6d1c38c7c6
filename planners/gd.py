"""Gradient-based planning: Adam (or SGD) on the action sequence through a differentiable cost.

DINO-WM's GD planner optimises the actions by back-propagating the goal distance through the world model
(1000 steps, lr 1, Gaussian noise 0.003 added after every step to escape flat regions). Here several
restarts are optimised in parallel as one batch (restart 0 from the warm start / box middle, the others
from Gaussian perturbations of it), actions are projected back into the box after every step, and the
restart with the lowest final cost is returned. The cost must be built with ``differentiable=True``
(:func:`planners.objectives.make_cost_fn`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, evaluate_costs, initial_mean
from worldmodels.api import CostFn


class GradientPlanner:
    """Gradient descent on action sequences with noise and random restarts.

    Args:
        steps: optimisation steps (DINO-WM: 1000).
        lr: learning rate (DINO-WM: 1 with plain SGD; Adam moves each action by about ``lr`` per step,
            so it wants a smaller one).
        noise: standard deviation of the Gaussian noise added to the actions after each step (DINO-WM:
            0.003).
        restarts: sequences optimised in parallel; the best one is returned.
        init_std: standard deviation of the restarts' Gaussian perturbation around the initial plan.
        optimizer: ``"adam"`` or ``"sgd"``.
    """

    differentiable: ClassVar[bool] = True

    def __init__(
        self,
        steps: int = 300,
        lr: float = 0.1,
        noise: float = 0.003,
        restarts: int = 4,
        init_std: float = 1.0,
        optimizer: Literal["adam", "sgd"] = "adam",
    ):
        if steps < 1 or restarts < 1:
            raise ValueError(f"steps={steps} and restarts={restarts} must be >= 1")
        if lr <= 0 or noise < 0 or init_std < 0:
            raise ValueError(f"lr={lr} must be > 0, noise={noise} and init_std={init_std} >= 0")
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={optimizer!r}; allowed values: 'adam', 'sgd'")
        self.steps, self.lr, self.noise, self.restarts = steps, lr, noise, restarts
        self.init_std, self.optimizer = init_std, optimizer

    def plan(
        self,
        cost_fn: CostFn,
        *,
        horizon: int,
        action_dim: int,
        low: Tensor,
        high: Tensor,
        init: Tensor | None = None,
        generator: torch.Generator,
    ) -> PlanResult:
        """Minimise a differentiable ``cost_fn`` (see :class:`planners.base.Planner`). ``info``: ``cost``
        (best restart) and ``cost_mean`` (mean over restarts) per step."""
        low, high, init = check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        eps = torch.randn(
            self.restarts, horizon, action_dim, generator=generator, device=low.device, dtype=low.dtype
        )
        eps[0] = 0.0
        actions = clamp(mean + self.init_std * eps, low, high).requires_grad_(True)
        opt_cls = torch.optim.Adam if self.optimizer == "adam" else torch.optim.SGD
        opt = opt_cls([actions], lr=self.lr)
        best_trace, mean_trace = [], []
        with torch.enable_grad():
            for _ in range(self.steps):
                costs = cost_fn(actions)
                if not costs.requires_grad:
                    raise ValueError(
                        "cost_fn is not differentiable; build it with make_cost_fn(..., differentiable=True)"
                    )
                opt.zero_grad(set_to_none=True)
                costs.sum().backward()
                opt.step()
                with torch.no_grad():
                    if self.noise:
                        actions.add_(
                            self.noise
                            * torch.randn(
                                actions.shape, generator=generator, device=low.device, dtype=low.dtype
                            )
                        )
                    actions.copy_(clamp(actions, low, high))
                best_trace.append(float(costs.detach().min()))
                mean_trace.append(float(costs.detach().mean()))
        with torch.no_grad():
            final = actions.detach().clone()
            costs = evaluate_costs(cost_fn, final)
        i = int(torch.argmin(costs))
        return PlanResult(final[i], float(costs[i]), {"cost": best_trace, "cost_mean": mean_trace})
