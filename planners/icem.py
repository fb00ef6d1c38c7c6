"""iCEM (Pinneri et al. 2020): CEM with coloured noise, elite carry-over and a decaying population."""

from __future__ import annotations

import torch
from torch import Tensor

from planners.base import PlanResult, check_plan_args, clamp, initial_mean
from worldmodels.api import CostFn


def colored_noise(
    beta: float, shape: tuple[int, int, int], generator: torch.Generator, device, dtype
) -> Tensor:
    """Gaussian noise ``(S, H, A)`` with power spectrum ~ 1/f^beta along the time axis (unit variance)."""
    s, h, a = shape
    freqs = torch.fft.rfftfreq(h, device=device)
    scale = torch.ones_like(freqs)
    scale[1:] = freqs[1:] ** (-beta / 2)
    scale[0] = scale[1] if h > 1 else 1.0
    real = torch.randn(s, a, len(freqs), generator=generator, device=device, dtype=torch.float32)
    imag = torch.randn(s, a, len(freqs), generator=generator, device=device, dtype=torch.float32)
    x = torch.fft.irfft(torch.complex(real, imag) * scale, n=h)
    x = (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp_min(1e-6) if h > 1 else x
    return x.transpose(1, 2).to(dtype)


class ICEM:
    """iCEM.

    Args:
        samples: initial population.
        topk: elites.
        iterations: refinement iterations.
        beta: colour exponent of the noise (0 white, 2 brown; paper: 2-2.5).
        decay: population decay factor per iteration (paper: 1.25).
        keep_fraction: fraction of elites carried into the next iteration (paper: 0.3).
        momentum: smoothing of the mean/std update (paper: 0.1).
        var_scale: initial std as a fraction of the action half-range.
        min_std: floor on the std.
    """

    def __init__(self, samples: int = 300, topk: int = 30, iterations: int = 10, beta: float = 2.0, decay: float = 1.25,
                 keep_fraction: float = 0.3, momentum: float = 0.1, var_scale: float = 1.0, min_std: float = 1e-3):  # fmt: skip
        if not 0 < topk <= samples:
            raise ValueError(f"topk={topk} must be in [1, samples={samples}]")
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

    def plan(self, cost_fn: CostFn, *, horizon: int, action_dim: int, low: Tensor, high: Tensor,
             init: Tensor | None = None, generator: torch.Generator) -> PlanResult:  # fmt: skip
        check_plan_args(horizon, action_dim, low, high, init)
        mean = initial_mean(horizon, low, high, init)
        std = (self.var_scale * (high - low) / 2).expand(horizon, -1).clone()
        kept: Tensor | None = None
        best, best_cost, trace = mean.clone(), float("inf"), []
        for i in range(self.iterations):
            n = max(self.topk * 2, int(self.samples * self.decay ** (-i)))
            noise = colored_noise(self.beta, (n, horizon, action_dim), generator, low.device, low.dtype)
            cand = clamp(mean + std * noise, low, high)
            cand[0] = mean
            if kept is not None:
                cand = torch.cat([cand, kept])
            if i == self.iterations - 1:
                cand = torch.cat([cand, mean[None]])
            costs = cost_fn(cand)
            order = torch.argsort(costs)
            elites = cand[order[: self.topk]]
            if costs[order[0]].item() < best_cost:
                best_cost, best = costs[order[0]].item(), cand[order[0]].clone()
            kept = elites[: max(1, int(self.keep_fraction * self.topk))]
            mean = self.momentum * mean + (1 - self.momentum) * elites.mean(0)
            std = (self.momentum * std + (1 - self.momentum) * elites.std(0)).clamp_min(self.min_std)
            trace.append(costs[order[: self.topk]].mean().item())
        return PlanResult(best, best_cost, {"elite_cost": trace})
