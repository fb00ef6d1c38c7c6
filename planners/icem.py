"""iCEM (Pinneri et al. 2020, "Sample-efficient cross-entropy method for real-time planning").

CEM with four changes (Alg. 1 of the paper):

* coloured noise: perturbations with power spectrum ``∝ 1/f^beta`` along time (``beta`` 2-2.5 in the
  paper), smoother than white noise and better suited to the low-pass nature of control;
* population decay: iteration ``i`` draws ``max(samples * decay^-i, 2 * topk)`` sequences;
* elite carry-over: a fraction ``keep_fraction`` of the previous iteration's elites joins the population;
* momentum on the mean/std refit, the current mean added to the population, and the best sequence ever
  seen returned (not the mean).

Across MPC steps the shifted plan arrives as ``init`` (:class:`planners.mpc.MPC`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, colored_noise, evaluate_costs, initial_mean
from worldmodels.api import CostFn


class ICEM:
    """iCEM.

    Args:
        samples: population of the first iteration (paper: 100-400; DINO-WM's CEM budget: 300).
        topk: elites (paper: 10 % of the population).
        iterations: refinement iterations (paper: 3-5 in real time, more offline).
        beta: colour exponent of the noise (0 white, 2 brown; paper: 2-2.5).
        decay: population decay factor ``gamma`` per iteration (paper: 1.25).
        keep_fraction: fraction ``xi`` of elites carried into the next iteration (paper: 0.3).
        momentum: weight ``alpha`` of the old mean/std in the refit (paper: 0.1).
        var_scale: initial standard deviation in planning-action units.
        min_std: floor on the standard deviation.
        substeps: env actions per planning action (the world model's frameskip): the noise is coloured
            along env time (see :func:`planners.base.colored_noise`); 1 colours it along planning steps.
    """

    differentiable: ClassVar[bool] = False

    def __init__(
        self,
        samples: int = 300,
        topk: int = 30,
        iterations: int = 10,
        beta: float = 2.0,
        decay: float = 1.25,
        keep_fraction: float = 0.3,
        momentum: float = 0.1,
        var_scale: float = 1.0,
        min_std: float = 1e-3,
        substeps: int = 1,
    ):
        if samples < 2:
            raise ValueError(f"samples={samples} must be >= 2")
        if not 1 <= topk <= samples:
            raise ValueError(f"topk={topk} must be in [1, samples={samples}]")
        if iterations < 1:
            raise ValueError(f"iterations={iterations} must be >= 1")
        if beta < 0 or decay < 1:
            raise ValueError(f"beta={beta} must be >= 0 and decay={decay} >= 1")
        if not 0 <= keep_fraction <= 1 or not 0 <= momentum < 1:
            raise ValueError(
                f"keep_fraction={keep_fraction} must be in [0, 1] and momentum={momentum} in [0, 1)"
            )
        if var_scale <= 0 or min_std < 0:
            raise ValueError(f"var_scale={var_scale} must be > 0 and min_std={min_std} >= 0")
        if substeps < 1:
            raise ValueError(f"substeps={substeps} must be >= 1")
        self.substeps = substeps
        self.samples, self.topk, self.iterations, self.beta, self.decay = (
            samples,
            topk,
            iterations,
            beta,
            decay,
        )
        self.keep_fraction, self.momentum, self.var_scale, self.min_std = (
            keep_fraction,
            momentum,
            var_scale,
            min_std,
        )

    def population(self, iteration: int) -> int:
        """Sequences drawn at ``iteration`` (0-based): ``max(samples * decay^-i, 2 * topk)``."""
        return max(int(self.samples * self.decay ** (-iteration)), min(2 * self.topk, self.samples))

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
        """Minimise ``cost_fn`` (see :class:`planners.base.Planner`); returns the best sequence seen.
        ``info``: ``cost`` (best so far), ``cost_mean`` (elites) and ``population`` per iteration."""
        low, high, init = check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        std = torch.full_like(mean, self.var_scale)
        kept: Tensor | None = None
        best, best_cost = mean, float("inf")
        best_trace, elite_trace, sizes = [], [], []
        for i in range(self.iterations):
            eps = colored_noise(
                self.beta, self.population(i), horizon, action_dim, generator=generator, like=low,
                substeps=self.substeps,
            )  # fmt: skip
            cand = clamp(mean + std * eps, low, high)
            cand[0] = mean  # the current mean is always a candidate
            if kept is not None:
                cand = torch.cat([cand, kept])
            costs = evaluate_costs(cost_fn, cand)
            k = min(self.topk, cand.shape[0])
            top_costs, idx = torch.topk(costs, k, largest=False)
            elites = cand[idx]
            if float(top_costs[0]) < best_cost:
                best_cost, best = float(top_costs[0]), elites[0].clone()
            n_keep = round(self.keep_fraction * k)
            kept = elites[:n_keep] if n_keep else None
            mean = self.momentum * mean + (1 - self.momentum) * elites.mean(0)
            std = (self.momentum * std + (1 - self.momentum) * elites.std(0, correction=0)).clamp_min(
                self.min_std
            )
            best_trace.append(best_cost)
            elite_trace.append(float(top_costs.mean()))
            sizes.append(int(cand.shape[0]))
        return PlanResult(
            best, best_cost, {"cost": best_trace, "cost_mean": elite_trace, "population": sizes}
        )
