"""Cross-entropy method (DINO-WM's planner): a diagonal Gaussian over action sequences, refit to the top-k.

Each iteration draws ``samples`` sequences ``mean + std * eps`` (clamped into the box; sample 0 is the
current mean; ``eps`` white Gaussian noise as in DINO-WM, or coloured along time with ``beta > 0``),
scores them with ``cost_fn`` and refits ``mean`` / ``std`` to the ``topk`` cheapest. The plan is the final
mean, as in DINO-WM.

Two options depart from DINO-WM's CEM, both off by default:

* ``return_best``: the plan is the cheapest sequence evaluated in any iteration, not the final mean (the
  classic CEM optimiser's answer, and iCEM's). When the elites split between two ways around an obstacle,
  their mean can go through it; the best sample cannot.
* ``refit_unclamped``: the Gaussian is refitted to the elites as drawn, before clamping into the box
  (clamped copies are only what ``cost_fn`` scores). Refitting the clamped copies piles elites onto the
  box faces and shrinks ``std`` there, so a search that wants full speed in one direction soon stops
  exploring; unclamped, the distribution evolves as DINO-WM's CEM does on its unbounded actions.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, colored_noise, evaluate_costs, initial_mean
from worldmodels.api import CostFn


class CEM:
    """CEM with DINO-WM's defaults.

    Args:
        samples: candidate sequences per iteration (DINO-WM: 300).
        topk: elites used to refit the Gaussian (DINO-WM: 30).
        iterations: refinement iterations (DINO-WM: 30; 10 for PointMaze and Wall).
        var_scale: initial standard deviation in planning-action units (DINO-WM: 1 on z-scored actions).
        min_std: floor on the standard deviation, so the search never freezes completely.
        beta: colour exponent of the sampling noise along time (0: white noise, DINO-WM's CEM; 2: brown,
            as iCEM), see :func:`planners.base.colored_noise`.
        substeps: env actions per planning action (the world model's frameskip), so coloured noise is
            coloured along env time; 1 colours it along planning steps.
        return_best: return the cheapest sequence evaluated in any iteration instead of the final mean.
        refit_unclamped: refit mean/std to the elites before they are clamped into the action box.
    """

    differentiable: ClassVar[bool] = False

    def __init__(
        self,
        samples: int = 300,
        topk: int = 30,
        iterations: int = 30,
        var_scale: float = 1.0,
        min_std: float = 1e-3,
        beta: float = 0.0,
        substeps: int = 1,
        return_best: bool = False,
        refit_unclamped: bool = False,
    ):
        if samples < 2:
            raise ValueError(f"samples={samples} must be >= 2")
        if not 1 <= topk <= samples:
            raise ValueError(f"topk={topk} must be in [1, samples={samples}]")
        if iterations < 1:
            raise ValueError(f"iterations={iterations} must be >= 1")
        if var_scale <= 0 or min_std < 0:
            raise ValueError(f"var_scale={var_scale} must be > 0 and min_std={min_std} >= 0")
        if beta < 0 or substeps < 1:
            raise ValueError(f"beta={beta} must be >= 0 and substeps={substeps} >= 1")
        self.samples, self.topk, self.iterations = samples, topk, iterations
        self.var_scale, self.min_std, self.beta, self.substeps = var_scale, min_std, beta, substeps
        self.return_best, self.refit_unclamped = bool(return_best), bool(refit_unclamped)

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
        """Minimise ``cost_fn`` over ``(horizon, action_dim)`` sequences in ``[low, high]``; see
        :class:`planners.base.Planner`. ``info``: ``cost`` (best sample of the iteration) and ``cost_mean``
        (elites) per iteration."""
        low, high, init = check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        std = torch.full_like(mean, self.var_scale)
        best, best_cost = mean, float("inf")
        best_trace, elite_trace = [], []
        for _ in range(self.iterations):
            eps = colored_noise(
                self.beta, self.samples, horizon, action_dim, generator=generator, like=low,
                substeps=self.substeps,
            )  # fmt: skip
            drawn = mean + std * eps
            drawn[0] = mean  # sample 0 is the current mean (DINO-WM)
            cand = clamp(drawn, low, high)
            costs = evaluate_costs(cost_fn, cand)
            top_costs, idx = torch.topk(costs, self.topk, largest=False)
            if float(top_costs[0]) < best_cost:
                best_cost, best = float(top_costs[0]), cand[idx[0]].clone()
            elites = (drawn if self.refit_unclamped else cand)[idx]
            mean = elites.mean(0)
            std = elites.std(0, correction=0).clamp_min(self.min_std)
            best_trace.append(float(top_costs[0]))
            elite_trace.append(float(top_costs.mean()))
        info = {"cost": best_trace, "cost_mean": elite_trace}
        if self.return_best:
            return PlanResult(best, best_cost, info)
        mean = clamp(mean, low, high)  # a no-op unless refit_unclamped let the mean leave the box
        cost = float(evaluate_costs(cost_fn, mean[None])[0])
        return PlanResult(mean, cost, info)
