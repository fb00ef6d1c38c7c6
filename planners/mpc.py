"""Model-predictive control over any planner: plan, execute the first ``k`` steps, re-plan, warm-start.

:class:`MPC` knows nothing about environments or world models: it drives three callbacks,

* ``observe() -> state``: the current (encoded) state of the real system,
* ``make_cost_fn(state) -> cost_fn``: the planning cost from that state,
* ``step(actions (k, action_dim)) -> done``: execute ``k`` planning actions, True when the episode is over
  (goal reached or the system's own budget spent),

so it can be tested on analytic systems and reused by the evaluation harness.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from planners.base import Planner, PlanResult, check_plan_args
from worldmodels.api import CostFn


@dataclass
class MPCResult:
    """What an MPC run did.

    Attributes:
        actions: executed planning actions ``(steps, action_dim)``.
        plans: the :class:`PlanResult` of every re-plan, in order.
        plan_times: wall-clock seconds of every re-plan (the planner call including the cost evaluations).
        done: whether ``step`` reported the end of the episode (otherwise the step budget ran out).
    """

    actions: Tensor
    plans: list[PlanResult] = field(default_factory=list)
    plan_times: list[float] = field(default_factory=list)
    done: bool = False


class MPC:
    """Receding-horizon control with warm start.

    Args:
        planner: any :class:`planners.base.Planner`.
        horizon: planning horizon in model steps (DINO-WM: 5).
        execute: model steps executed before re-planning (``k``; 1 is classic MPC, ``horizon`` re-plans
            only when the plan is used up).
        max_steps: model steps before giving up.
        warm_start: initialise each plan with the previous plan shifted by ``k`` steps.
        fill: the ``k`` new tail steps of a warm start: ``"middle"`` (middle of the action box: the
            dataset's mean action for z-scored actions) or ``"last"`` (repeat the plan's last action).
    """

    def __init__(
        self,
        planner: Planner,
        horizon: int = 5,
        execute: int = 1,
        max_steps: int = 10,
        warm_start: bool = True,
        fill: Literal["middle", "last"] = "middle",
    ):
        if horizon < 1:
            raise ValueError(f"horizon={horizon} must be >= 1")
        if not 1 <= execute <= horizon:
            raise ValueError(f"execute={execute} must be in [1, horizon={horizon}]")
        if max_steps < 1:
            raise ValueError(f"max_steps={max_steps} must be >= 1")
        if fill not in ("middle", "last"):
            raise ValueError(f"fill={fill!r}; allowed values: 'middle', 'last'")
        self.planner, self.horizon, self.execute, self.max_steps = planner, horizon, execute, max_steps
        self.warm_start, self.fill = warm_start, fill

    def shift(self, plan: Tensor, k: int, low: Tensor, high: Tensor) -> Tensor:
        """Warm start ``(horizon, action_dim)``: ``plan[k:]`` followed by ``k`` filler steps."""
        tail = plan[-1:] if self.fill == "last" else ((low + high) / 2)[None]
        return torch.cat([plan[k:], tail.expand(k, -1)])

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
        """Loop until ``step`` reports done or ``max_steps`` model steps are executed:
        ``state = observe()``, ``plan = planner.plan(make_cost_fn(state), init=warm start)``,
        ``done = step(plan.actions[:k])``. ``low`` / ``high`` ``(action_dim,)`` bound the planning actions."""
        action_dim = low.shape[-1]
        low, high, _ = check_plan_args(self.horizon, action_dim, low, high, None)
        result = MPCResult(actions=low.new_zeros(0, action_dim))
        init: Tensor | None = None
        executed = 0
        while executed < self.max_steps:
            cost_fn = make_cost_fn(observe())
            t0 = time.perf_counter()
            plan = self.planner.plan(
                cost_fn, horizon=self.horizon, action_dim=action_dim, low=low, high=high, init=init,
                generator=generator,
            )  # fmt: skip
            result.plan_times.append(time.perf_counter() - t0)
            result.plans.append(plan)
            k = min(self.execute, self.max_steps - executed)
            act = plan.actions[:k].detach()
            result.actions = torch.cat([result.actions, act])
            executed += k
            if step(act):
                result.done = True
                break
            init = self.shift(plan.actions.detach(), k, low, high) if self.warm_start else None
        return result
