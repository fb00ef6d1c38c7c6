"""Cross-entropy method (DINO-WM's planner): Gaussian over action sequences, refit to the top-k."""

from __future__ import annotations

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, initial_mean
from worldmodels.api import CostFn


class CEM:
    """CEM with DINO-WM's defaults.

    Args:
        samples: candidate sequences per iteration (DINO-WM: 300).
        topk: elites used to refit the Gaussian (DINO-WM: 30).
        iterations: refinement iterations (DINO-WM: 30; 10 for PointMaze and Wall).
        var_scale: initial standard deviation as a fraction of the action range half-width (DINO-WM: 1).
        min_std: floor on the standard deviation.
    """

    def __init__(
        self,
        samples: int = 300,
        topk: int = 30,
        iterations: int = 30,
        var_scale: float = 1.0,
        min_std: float = 1e-3,
    ):
        if not 0 < topk <= samples:
            raise ValueError(f"topk={topk} must be in [1, samples={samples}]")
        if iterations < 1:
            raise ValueError(f"iterations={iterations} must be >= 1")
        self.samples, self.topk, self.iterations, self.var_scale, self.min_std = (
            samples,
            topk,
            iterations,
            var_scale,
            min_std,
        )

    def plan(self, cost_fn: CostFn, *, horizon: int, action_dim: int, low: Tensor, high: Tensor,
             init: Tensor | None = None, generator: torch.Generator) -> PlanResult:  # fmt: skip
        check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        std = (self.var_scale * (high - low) / 2).expand(horizon, -1).clone()
        trace = []
        for _ in range(self.iterations):
            noise = torch.randn(
                self.samples, horizon, action_dim, generator=generator, device=low.device, dtype=low.dtype
            )
            cand = clamp(mean + std * noise, low, high)
            cand[0] = mean  # sample 0 is the current mean (DINO-WM)
            costs = cost_fn(cand)
            order = torch.argsort(costs)
            elites = cand[order[: self.topk]]
            mean, std = elites.mean(0), elites.std(0).clamp_min(self.min_std)
            trace.append(costs[order[: self.topk]].mean().item())
        # like DINO-WM, the plan is the final mean (the first sample of a next iteration)
        return PlanResult(mean, float(cost_fn(mean[None])[0]), {"elite_cost": trace})
