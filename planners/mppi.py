"""MPPI (Williams et al. 2017): exponentially weighted average of time-correlated perturbations."""

from __future__ import annotations

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, initial_mean
from worldmodels.api import CostFn


class MPPI:
    """MPPI.

    Args:
        samples: perturbed sequences per iteration.
        iterations: update iterations.
        temperature: lambda of the exponential weights (lower = greedier), relative to the cost spread.
        noise_std: perturbation std as a fraction of the action half-range.
        smoothing: time correlation of the noise, ``eps_t = smoothing * eps_{t-1} + sqrt(1-smoothing^2) * w_t``.
    """

    def __init__(self, samples: int = 300, iterations: int = 10, temperature: float = 0.1, noise_std: float = 0.5,
                 smoothing: float = 0.5):  # fmt: skip
        if temperature <= 0:
            raise ValueError(f"temperature={temperature} must be > 0")
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing={smoothing} must be in [0, 1)")
        self.samples, self.iterations, self.temperature = samples, iterations, temperature
        self.noise_std, self.smoothing = noise_std, smoothing

    def plan(self, cost_fn: CostFn, *, horizon: int, action_dim: int, low: Tensor, high: Tensor,
             init: Tensor | None = None, generator: torch.Generator) -> PlanResult:  # fmt: skip
        check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        std = self.noise_std * (high - low) / 2
        trace = []
        for _ in range(self.iterations):
            w = torch.randn(
                self.samples, horizon, action_dim, generator=generator, device=low.device, dtype=low.dtype
            )
            eps = torch.empty_like(w)
            eps[:, 0] = w[:, 0]
            c = (1 - self.smoothing**2) ** 0.5
            for t in range(1, horizon):
                eps[:, t] = self.smoothing * eps[:, t - 1] + c * w[:, t]
            cand = clamp(mean + std * eps, low, high)
            cand[0] = mean
            costs = cost_fn(cand)
            spread = (costs.max() - costs.min()).clamp_min(1e-8)
            weights = torch.softmax(-(costs - costs.min()) / (self.temperature * spread), 0)
            mean = (weights[:, None, None] * cand).sum(0)
            trace.append(float((weights * costs).sum()))
        return PlanResult(mean, float(cost_fn(mean[None])[0]), {"weighted_cost": trace})
