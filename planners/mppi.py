"""MPPI (Williams et al. 2017, "Information theoretic MPC for model-based reinforcement learning").

Each iteration perturbs the current plan with time-correlated Gaussian noise, scores the perturbed
sequences and moves the plan to their exponentially weighted average,
``mean = sum_s w_s a_s`` with ``w = softmax(-(c - min c) / (temperature * (max c - min c)))`` (eq. 2 of the
paper, with the costs rescaled to [0, 1] so ``temperature`` does not depend on the cost's units).
The noise has power spectrum ``∝ 1/f^noise_beta`` along time (0 = white; the smoothing parameter).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, colored_noise, evaluate_costs, initial_mean
from worldmodels.api import CostFn


class MPPI:
    """MPPI.

    Args:
        samples: perturbed sequences per iteration.
        iterations: weighted updates per call (1 in classic real-time MPPI; more refines offline).
        temperature: ``lambda`` relative to the population's cost range (lower = greedier).
        noise_std: perturbation standard deviation in planning-action units.
        noise_beta: colour exponent of the perturbations along time (0 white, 1 pink, 2 brown).
        substeps: env actions per planning action (the world model's frameskip): the noise is coloured
            along env time (see :func:`planners.base.colored_noise`); 1 colours it along planning steps.
    """

    differentiable: ClassVar[bool] = False

    def __init__(
        self,
        samples: int = 300,
        iterations: int = 10,
        temperature: float = 0.05,
        noise_std: float = 0.5,
        noise_beta: float = 1.0,
        substeps: int = 1,
    ):
        if samples < 2:
            raise ValueError(f"samples={samples} must be >= 2")
        if iterations < 1:
            raise ValueError(f"iterations={iterations} must be >= 1")
        if temperature <= 0 or noise_std <= 0:
            raise ValueError(f"temperature={temperature} and noise_std={noise_std} must be > 0")
        if noise_beta < 0:
            raise ValueError(f"noise_beta={noise_beta} must be >= 0")
        self.samples, self.iterations, self.temperature = samples, iterations, temperature
        if substeps < 1:
            raise ValueError(f"substeps={substeps} must be >= 1")
        self.noise_std, self.noise_beta, self.substeps = noise_std, noise_beta, substeps

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
        """Minimise ``cost_fn`` (see :class:`planners.base.Planner`); returns the final weighted mean.
        ``info``: ``cost`` (best sample) and ``cost_mean`` (weighted cost) per iteration."""
        low, high, init = check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        best_trace, weighted_trace = [], []
        for _ in range(self.iterations):
            eps = colored_noise(
                self.noise_beta, self.samples, horizon, action_dim, generator=generator, like=low,
                substeps=self.substeps,
            )  # fmt: skip
            cand = clamp(mean + self.noise_std * eps, low, high)
            cand[0] = mean  # the unperturbed plan competes too
            costs = evaluate_costs(cost_fn, cand)
            finite = torch.isfinite(costs)
            if not bool(finite.any()):
                raise ValueError("cost_fn returned no finite cost for any candidate")
            costs = torch.where(finite, costs, costs[finite].max())  # non-finite: as bad as the worst
            c_min = costs.min()
            spread = (costs.max() - c_min).clamp_min(1e-12)
            weights = torch.softmax(-(costs - c_min) / (self.temperature * spread), 0)
            mean = torch.einsum("s,sha->ha", weights, cand)
            best_trace.append(float(c_min))
            weighted_trace.append(float((weights * costs).sum()))
        cost = float(evaluate_costs(cost_fn, mean[None])[0])
        return PlanResult(mean, cost, {"cost": best_trace, "cost_mean": weighted_trace})
