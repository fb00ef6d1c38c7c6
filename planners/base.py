"""What every planner shares: the result type, the protocol, argument checks and time-correlated noise.

A planner minimises ``cost_fn(actions (S, horizon, action_dim)) -> (S,)`` over action sequences inside the
box ``[low, high]``. It never sees a world model: :func:`planners.objectives.make_cost_fn` turns a model, its
encoded state and an objective into a ``cost_fn``. Device and dtype follow ``low``; randomness comes only
from the ``generator`` passed to :meth:`Planner.plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from einops import rearrange
from torch import Tensor

from worldmodels.api import CostFn


@dataclass
class PlanResult:
    """Output of :meth:`Planner.plan`.

    Attributes:
        actions: the plan ``(horizon, action_dim)`` (the final mean or the best sample, per planner).
        cost: ``cost_fn`` of ``actions``.
        info: per-iteration diagnostics, lists of floats of length ``iterations``: ``"cost"`` (the cost of
            the iteration's best sample / the current plan) and ``"cost_mean"`` (mean cost of the elites or
            the population), plus planner-specific entries.
    """

    actions: Tensor
    cost: float
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Planner(Protocol):
    """An optimiser of action sequences under a cost function (see the module docstring)."""

    #: True when the planner back-propagates through ``cost_fn`` (build it with ``differentiable=True``)
    differentiable: ClassVar[bool]

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
        """Minimise ``cost_fn`` over ``(horizon, action_dim)`` sequences in ``[low, high]`` (each
        ``(action_dim,)``); ``init (horizon, action_dim)`` warm-starts the search (e.g. MPC's shifted plan)."""
        ...


def check_plan_args(
    horizon: int, action_dim: int, low: Tensor, high: Tensor, init: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate the common :meth:`Planner.plan` arguments; returns ``low``, ``high`` (broadcast to
    ``(action_dim,)``) and ``init`` clamped into the box, all on ``low``'s device and dtype."""
    if horizon < 1:
        raise ValueError(f"horizon={horizon} must be >= 1")
    if action_dim < 1:
        raise ValueError(f"action_dim={action_dim} must be >= 1")
    if not torch.is_floating_point(low):
        raise ValueError(f"low must be a floating-point tensor, got dtype {low.dtype}")
    low = torch.broadcast_to(low, (action_dim,))
    high = torch.broadcast_to(high.to(low), (action_dim,))
    if not bool((low <= high).all()):
        raise ValueError(f"low must be <= high elementwise, got low={low.tolist()} high={high.tolist()}")
    if init is not None:
        if tuple(init.shape) != (horizon, action_dim):
            raise ValueError(
                f"init has shape {tuple(init.shape)}, expected (horizon, action_dim)={(horizon, action_dim)}"
            )
        init = clamp(init.to(low), low, high)
    return low, high, init


def clamp(actions: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Clamp ``actions (..., action_dim)`` into ``[low, high]`` (each ``(action_dim,)``)."""
    return torch.maximum(torch.minimum(actions, high), low)


def initial_mean(horizon: int, low: Tensor, high: Tensor, init: Tensor | None) -> Tensor:
    """The search's starting plan ``(horizon, action_dim)``: ``init`` (already clamped) or the middle of the
    box (for z-scored planning actions that is about the dataset's mean action, DINO-WM's zero init)."""
    if init is not None:
        return init.clone()
    return ((low + high) / 2).expand(horizon, -1).clone()


def evaluate_costs(cost_fn: CostFn, actions: Tensor) -> Tensor:
    """``cost_fn(actions)`` checked to be ``(S,)`` and finite-or-inf (NaN -> ``+inf`` so it is never chosen)."""
    costs = cost_fn(actions)
    if tuple(costs.shape) != (actions.shape[0],):
        raise ValueError(f"cost_fn returned shape {tuple(costs.shape)}, expected ({actions.shape[0]},)")
    return torch.nan_to_num(costs.to(actions.dtype), nan=float("inf"))


def colored_noise(
    beta: float,
    samples: int,
    horizon: int,
    action_dim: int,
    *,
    generator: torch.Generator,
    like: Tensor,
    substeps: int = 1,
) -> Tensor:
    """Gaussian noise ``(samples, horizon, action_dim)`` with power spectral density ``∝ 1/f^beta`` along
    the time axis, unit variance per entry (Pinneri et al. 2020, iCEM, Sec. 3.1; the FFT construction of
    Timmer & König 1995). ``beta = 0`` is white noise; larger ``beta`` gives smoother sequences.

    ``substeps > 1``: each planning action is ``substeps`` consecutive env actions concatenated (a world
    model trained with a frameskip; ``action_dim = substeps * env_dim``), and the noise is coloured along
    env time, ``horizon * substeps`` steps of ``env_dim``, so the env actions inside one planning step are
    correlated too. Device and dtype follow ``like``.
    """
    if beta < 0:
        raise ValueError(f"beta={beta} must be >= 0")
    if substeps < 1 or action_dim % substeps:
        raise ValueError(f"substeps={substeps} must be >= 1 and divide action_dim={action_dim}")
    if substeps > 1 and beta > 0:
        noise = colored_noise(
            beta, samples, horizon * substeps, action_dim // substeps, generator=generator, like=like
        )
        return rearrange(noise, "s (t k) a -> s t (k a)", k=substeps)
    if beta == 0 or horizon == 1:
        return torch.randn(
            samples, horizon, action_dim, generator=generator, device=like.device, dtype=like.dtype
        )
    f = torch.fft.rfftfreq(horizon, dtype=torch.float64)
    f[0] = 1.0 / horizon  # the lowest resolvable frequency stands in for DC
    scale = f ** (-beta / 2.0)
    shape = (samples, action_dim, scale.numel())
    real = torch.randn(shape, generator=generator, device=like.device, dtype=torch.float64) * scale.to(
        like.device
    )
    imag = torch.randn(shape, generator=generator, device=like.device, dtype=torch.float64) * scale.to(
        like.device
    )
    imag[..., 0] = 0.0  # the DC component of a real signal is real
    real[..., 0] *= 2**0.5
    if horizon % 2 == 0:  # so is the Nyquist component
        imag[..., -1] = 0.0
        real[..., -1] *= 2**0.5
    noise = torch.fft.irfft(torch.complex(real, imag), n=horizon, dim=-1)
    # exact variance of each time step: (2 s_0^2 + 4 sum_k s_k^2 [+ 2 s_nyq^2 for even n]) / n^2
    inner = scale[1:-1] if horizon % 2 == 0 else scale[1:]
    var = 2 * scale[0] ** 2 + 4 * (inner**2).sum()
    if horizon % 2 == 0:
        var = var + 2 * scale[-1] ** 2
    noise = noise / (var.sqrt() / horizon).to(noise)
    return rearrange(noise, "s a t -> s t a").to(like.dtype)
