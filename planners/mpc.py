"""Model-predictive control over any planner: execute k steps, re-plan, warm-start by shifting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from planners.base import Planner, PlanResult
from worldmodels.api import CostFn


@dataclass
class MPCResult:
    """What an MPC run did: executed actions ``(steps, A)``, each plan, and planning times (s)."""

    actions: Tensor
    plans: list[PlanResult] = field(default_factory=list)
    plan_times: list[float] = field(default_factory=list)
    done: bool = False


class MPC:
    """Receding-horizon control.

    Args:
        planner: any planner (``plan(cost_fn, ...)``).
        horizon: planning horizon in model steps (DINO-WM: 5).
        execute: model steps executed before re-planning.
        max_steps: model steps before giving up.
        warm_start: initialise each plan with the previous one shifted by ``execute`` (tail = box middle).
    """

    def __init__(
        self,
        planner: Planner,
        horizon: int = 5,
        execute: int = 1,
        max_steps: int = 10,
        warm_start: bool = True,
    ):
        if not 1 <= execute <= horizon:
            raise ValueError(f"execute={execute} must be in [1, horizon={horizon}]")
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps} must be >= 1")
        self.planner, self.horizon, self.execute, self.max_steps, self.warm_start = (
            planner,
            horizon,
            execute,
            max_steps,
            warm_start,
        )

    def run(
        self,
        observe: Callable[[], Any],
        make_cost_fn: Callable[[Any], CostFn],
        step: Callable[[Tensor], bool],
        *,
        low: Tensor,
        high: Tensor,
        generator: torch.Generator,
    ) -> MPCResult:
        """Loop: ``state = observe()``; plan with ``make_cost_fn(state)``; ``done = step(actions[:k])``.

        ``step`` executes ``(k, A)`` planning actions in the real system and returns True when the episode
        is over (success or budget).
        """
        action_dim = low.shape[0]
        result = MPCResult(actions=low.new_zeros(0, action_dim))
        init: Tensor | None = None
        executed = 0
        while executed < self.max_steps:
            t0 = time.perf_counter()
            plan = self.planner.plan(make_cost_fn(observe()), horizon=self.horizon, action_dim=action_dim,
                                     low=low, high=high, init=init, generator=generator)  # fmt: skip
            result.plan_times.append(time.perf_counter() - t0)
            result.plans.append(plan)
            k = min(self.execute, self.max_steps - executed)
            act = plan.actions[:k].detach()
            result.actions = torch.cat([result.actions, act])
            executed += k
            if step(act):
                result.done = True
                break
            if self.warm_start:
                tail = ((low + high) / 2).expand(k, -1)
                init = torch.cat([plan.actions[k:].detach(), tail])
        return result
