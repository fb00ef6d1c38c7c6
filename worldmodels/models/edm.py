"""EDM (Karras, Aittala, Aila, Laine 2022, "Elucidating the Design Space of Diffusion-Based Generative
Models"): preconditioning, training loss and samplers, for any denoiser network over any tensor shape.

One implementation shared by every diffusion model in the project (the video world model, SynthER's
transition denoiser). The network ``net(x_in, c_noise, **cond) -> F`` sees the scaled noisy input and the
noise embedding; :meth:`EDM.precondition` wraps it into the denoiser ``D(x; sigma)`` of eq. (7)::

    edm = EDM(sigma_data=0.5, p_mean=-0.4, p_std=1.2, sigma_min_train=2e-3, sigma_max_train=20)
    loss = edm.loss(net, x, generator=g, context=ctx)                  # eq. (8), sigma ~ log-normal
    x = edm.sample(net, (B, 3, 64, 64), SamplerConfig(steps=3), generator=g, context=ctx)

Parts, with the paper's numbering:

* Preconditioning (Table 1, "Network and preconditioning" column of EDM):
  ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``,
  ``c_in = 1 / sqrt(sigma^2 + sd^2)``, ``c_noise = ln(sigma) / 4``, and ``D = c_skip x + c_out F(c_in x,
  c_noise)`` (eq. 7).
* Training (Table 1 "Training" column; eq. 8): ``ln(sigma) ~ N(P_mean, P_std^2)``, loss weight
  ``lambda(sigma) = 1 / c_out^2``, so eq. (8)'s effective weight ``lambda c_out^2`` is 1 and the loss is the
  plain MSE between ``F`` and its target ``(x - c_skip (x + n)) / c_out``. Departure: the sampled sigma can be
  clipped to ``[sigma_min_train, sigma_max_train]`` (DIAMOND clips to [2e-3, 20]).
* Sampling: the time steps of eq. (5) (Karras schedule with ``rho``, ``t_N = 0``) and Algorithm 2: Euler
  (``order 1``) or Heun (``order 2``, 2N - 1 network evaluations), with the stochastic "churn" of
  Algorithm 2 (``S_churn, S_tmin, S_tmax, S_noise``); ``S_churn = 0`` is the deterministic Algorithm 1.
  ``solver="dpmsolver++"`` hands the same preconditioned network to diffusers'
  ``EDMDPMSolverMultistepScheduler`` (second-order multistep, deterministic).

All randomness comes from the ``generator`` argument (``None``: torch's global RNG); tensors follow the
device and dtype of the inputs (``sample``: the ``device`` argument, the network's parameters, or the
generator's device).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

#: ``net(x_in, c_noise, **cond) -> F``: ``x_in (B, ...)``, ``c_noise (B,)``; ``F`` has ``x_in``'s shape
Denoiser = Callable[..., Tensor]

SOLVERS = ("euler", "heun", "dpmsolver++")


def _expand(sigma: Tensor, x: Tensor) -> Tensor:
    """``sigma`` of shape ``(B,)`` (or a scalar) broadcast against ``x (B, ...)``."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return sigma.reshape(sigma.shape + (1,) * (x.ndim - sigma.ndim)) if sigma.ndim else sigma


def randn(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:  # fmt: skip
    """Standard normal noise drawn from ``generator`` (on the generator's device, then moved to ``device``),
    or from torch's global RNG when ``generator`` is ``None``."""
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    out = torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)
    return out if device is None else out.to(device)


@dataclass(frozen=True)
class SamplerConfig:
    """How :meth:`EDM.sample` integrates the probability-flow ODE (or the SDE of Algorithm 2).

    Args:
        steps: number of noise levels ``N`` (time steps of eq. 5; ``t_N = 0`` is appended).
        solver: ``euler`` (first order, ``N`` network evaluations), ``heun`` (Algorithm 1/2's second-order
            correction, ``2N - 1`` evaluations), ``dpmsolver++`` (diffusers' ``EDMDPMSolverMultistepScheduler``,
            second-order multistep, ``N`` evaluations; no churn).
        sigma_min: smallest nonzero noise level of the schedule (EDM: 0.002).
        sigma_max: largest noise level, where sampling starts (EDM: 80; DIAMOND: 5).
        rho: exponent of the schedule of eq. (5) (EDM: 7).
        s_churn: Algorithm 2's ``S_churn`` (0: deterministic). The per-step ``gamma_i`` is
            ``min(S_churn / N, sqrt(2) - 1)`` for ``t_i`` in ``[s_tmin, s_tmax]``.
        s_tmin: lower end of the noise levels that get churn.
        s_tmax: upper end of the noise levels that get churn.
        s_noise: ``S_noise``, std of the churn noise (EDM: 1.003 on ImageNet; 1 is plain).
    """

    steps: int = 3
    solver: Literal["euler", "heun", "dpmsolver++"] = "euler"
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: float = math.inf
    s_noise: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps={self.steps} must be >= 1")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r}; allowed values: {SOLVERS}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min}, "
                             f"sigma_max={self.sigma_max}")  # fmt: skip
        if self.rho <= 0:
            raise ValueError(f"rho={self.rho} must be > 0")
        if self.s_churn < 0 or self.s_noise < 0:
            raise ValueError(f"s_churn={self.s_churn} and s_noise={self.s_noise} must be >= 0")
        if self.s_churn > 0 and self.solver == "dpmsolver++":
            raise ValueError("s_churn > 0 needs solver 'euler' or 'heun' (Algorithm 2), not 'dpmsolver++'")

    @property
    def nfe(self) -> int:
        """Network evaluations per sample."""
        return 2 * self.steps - 1 if self.solver == "heun" else self.steps


@dataclass(frozen=True)
class EDM:
    """EDM preconditioning, training loss and samplers (see the module docstring).

    Args:
        sigma_data: standard deviation of the data (EDM: 0.5 for images in [-1, 1]; SynthER: 1 for z-scored
            vectors).
        p_mean: mean of ``ln(sigma)`` during training (EDM: -1.2; DIAMOND: -0.4).
        p_std: standard deviation of ``ln(sigma)`` during training (EDM, DIAMOND: 1.2).
        sigma_min_train: clip the training sigma from below (DIAMOND: 2e-3); ``None``: no clipping.
        sigma_max_train: clip the training sigma from above (DIAMOND: 20); ``None``: no clipping.
    """

    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min_train: float | None = None
    sigma_max_train: float | None = None

    def __post_init__(self) -> None:
        if self.sigma_data <= 0 or self.p_std <= 0:
            raise ValueError(f"sigma_data={self.sigma_data} and p_std={self.p_std} must be > 0")
        lo, hi = self.sigma_min_train, self.sigma_max_train
        if (lo is not None and lo <= 0) or (lo is not None and hi is not None and lo >= hi):
            raise ValueError(f"need 0 < sigma_min_train < sigma_max_train, got {lo}, {hi}")

    # ------------------------------------------------------------------ preconditioning (Table 1)
    def coefficients(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(c_skip, c_out, c_in, c_noise)`` of EDM's Table 1 for noise levels ``sigma`` (any shape)."""
        sd2 = self.sigma_data**2
        var = sigma**2 + sd2
        c_skip = sd2 / var  # Table 1: c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)
        c_out = (
            sigma * self.sigma_data / var.sqrt()
        )  # Table 1: c_out = sigma sigma_data / sqrt(sigma^2 + sd^2)
        c_in = 1.0 / var.sqrt()  # Table 1: c_in = 1 / sqrt(sigma^2 + sigma_data^2)
        c_noise = sigma.log() / 4  # Table 1: c_noise = ln(sigma) / 4
        return c_skip, c_out, c_in, c_noise

    def precondition(self, net: Denoiser, x_noisy: Tensor, sigma: Tensor | float, **cond: Any) -> Tensor:
        """The denoiser ``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)`` (eq. 7).

        Args:
            net: ``net(x_in, c_noise, **cond) -> F`` with ``x_in (B, ...)`` and ``c_noise (B,)``.
            x_noisy: ``(B, ...)`` noisy samples ``x + n``.
            sigma: noise level, ``(B,)`` or a scalar (broadcast to ``(B,)``).
            cond: passed to ``net`` unchanged (context frames, actions, ...).

        Returns:
            ``(B, ...)`` denoised estimate, in ``x_noisy``'s dtype.
        """
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x_noisy.device)
        sigma = sigma.expand(x_noisy.shape[0]) if sigma.ndim == 0 else sigma
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        f = net(_expand(c_in, x_noisy) * x_noisy, c_noise, **cond)
        return (_expand(c_skip, x_noisy) * x_noisy + _expand(c_out, x_noisy) * f.to(x_noisy.dtype)).to(
            x_noisy.dtype
        )

    # ------------------------------------------------------------------ training (Table 1, eq. 8)
    def sample_sigma(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """``(n,)`` training noise levels: ``ln(sigma) ~ N(P_mean, P_std^2)`` (Table 1), clipped to
        ``[sigma_min_train, sigma_max_train]`` where set (DIAMOND)."""
        sigma = (randn((n,), generator, device) * self.p_std + self.p_mean).exp()
        if self.sigma_min_train is not None or self.sigma_max_train is not None:
            sigma = sigma.clamp(self.sigma_min_train, self.sigma_max_train)
        return sigma

    def loss_weight(self, sigma: Tensor) -> Tensor:
        """``lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2`` (Table 1)."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2

    def loss(
        self, net: Denoiser, x: Tensor, generator: torch.Generator | None = None, *,
        sigma: Tensor | None = None, noise: Tensor | None = None, reduce: bool = True, **cond: Any,
    ) -> Tensor:  # fmt: skip
        """EDM's training loss (eq. 8) for clean samples ``x (B, ...)``.

        ``sigma`` (default :meth:`sample_sigma`) and ``noise`` (default standard normal) are drawn from
        ``generator`` unless given. With ``lambda = 1 / c_out^2`` eq. (8) is
        ``|| F(c_in (x + n), c_noise) - (x - c_skip (x + n)) / c_out ||^2`` with ``n = sigma * noise``,
        which equals ``lambda(sigma) || D(x + n; sigma) - x ||^2``.

        Returns:
            the mean over every element (``reduce``), else the per-sample mean ``(B,)``.
        """
        b = x.shape[0]
        if sigma is None:
            sigma = self.sample_sigma(b, generator, x.device)
        if noise is None:
            noise = randn(tuple(x.shape), generator, x.device, x.dtype)
        x_noisy = x + _expand(sigma, x) * noise
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma.to(x.dtype))
        f = net(_expand(c_in, x) * x_noisy, c_noise, **cond).float()
        target = ((x - _expand(c_skip, x) * x_noisy) / _expand(c_out, x)).float()  # eq. (8)'s target for F
        per_sample = (f - target).pow(2).flatten(1).mean(1)
        return per_sample.mean() if reduce else per_sample

    # ------------------------------------------------------------------ sampling (eq. 5, Algorithm 2)
    @staticmethod
    def sigmas(config: SamplerConfig, device: torch.device | str | None = None) -> Tensor:
        """``(steps + 1,)`` time steps of eq. (5), decreasing from ``sigma_max`` to ``sigma_min``, then 0:
        ``t_i = (s_max^(1/rho) + i / (N - 1) (s_min^(1/rho) - s_max^(1/rho)))^rho`` (``N = 1``: just
        ``sigma_max``)."""
        n, rho = config.steps, config.rho
        ramp = torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
        lo, hi = config.sigma_min ** (1 / rho), config.sigma_max ** (1 / rho)
        t = (hi + ramp * (lo - hi)) ** rho  # eq. (5)
        return torch.cat([t, t.new_zeros(1)]).to(device=device, dtype=torch.float32)

    @torch.no_grad()
    def sample(
        self, net: Denoiser, shape: tuple[int, ...], config: SamplerConfig = SamplerConfig(),
        generator: torch.Generator | None = None, *, device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32, noise: Tensor | None = None, **cond: Any,
    ) -> Tensor:  # fmt: skip
        """Draw ``shape = (B, ...)`` samples by integrating from ``sigma_max`` to 0 (Algorithm 2).

        Args:
            net: the network, see :meth:`precondition`.
            shape: output shape ``(B, ...)``.
            config: steps, solver, schedule and churn.
            generator: source of the initial noise and the churn noise.
            device: where to sample (default: ``net``'s parameters if it is a module, else the generator's
                device, else the CPU).
            dtype: dtype of the samples.
            noise: the initial standard normal noise ``(B, ...)`` (scaled by ``sigma_max`` here) instead of
                drawing it.
            cond: passed to ``net`` at every evaluation.

        Returns:
            ``(B, ...)`` samples.
        """
        if device is None:
            param = next(iter(net.parameters()), None) if isinstance(net, torch.nn.Module) else None
            device = param.device if param is not None else (generator.device if generator else "cpu")
        t = self.sigmas(config, device)
        if noise is None:
            noise = randn(tuple(shape), generator, device, dtype)
        elif tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {tuple(shape)}")
        x = noise.to(device=device, dtype=dtype) * t[0]  # x_0 ~ N(0, t_0^2 I)
        if config.solver == "dpmsolver++":
            return self._sample_dpmsolver(net, x, config, **cond)
        n = config.steps
        denoise = lambda x_, s: self.precondition(net, x_, s, **cond)  # noqa: E731
        for i in range(n):
            t_cur, t_next = t[i], t[i + 1]
            # Algorithm 2, lines 4-6: churn (gamma_i = 0 outside [S_tmin, S_tmax] or when S_churn = 0)
            gamma = (
                min(config.s_churn / n, math.sqrt(2) - 1) if config.s_tmin <= t_cur <= config.s_tmax else 0
            )
            t_hat = t_cur * (1 + gamma)
            if gamma > 0:
                eps = randn(tuple(x.shape), generator, device, dtype) * config.s_noise
                x = x + (t_hat**2 - t_cur**2).sqrt() * eps
            d = (x - denoise(x, t_hat)) / t_hat  # line 7: dx/dt = (x - D(x; t)) / t
            x_next = x + (t_next - t_hat) * d  # line 8: Euler step
            if config.solver == "heun" and t_next > 0:  # lines 9-11: second-order correction
                d_next = (x_next - denoise(x_next, t_next)) / t_next
                x_next = x + (t_next - t_hat) * (0.5 * d + 0.5 * d_next)
            x = x_next
        return x

    def _sample_dpmsolver(self, net: Denoiser, x: Tensor, config: SamplerConfig, **cond: Any) -> Tensor:
        """diffusers' ``EDMDPMSolverMultistepScheduler`` (DPM-Solver++(2M)) on :meth:`precondition`'s network,
        with the schedule of :meth:`sigmas`."""
        from diffusers import EDMDPMSolverMultistepScheduler

        sched = EDMDPMSolverMultistepScheduler(
            sigma_min=config.sigma_min, sigma_max=config.sigma_max, sigma_data=self.sigma_data, rho=config.rho,
            prediction_type="epsilon", algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero",
        )  # fmt: skip
        sched.set_timesteps(config.steps, device=x.device)
        sched.sigmas = self.sigmas(config, "cpu")  # the same schedule as euler / heun
        sched.timesteps = (sched.sigmas[:-1].log() / 4).to(x.device)
        for i in range(config.steps):
            sigma = sched.sigmas[i].to(x.device)
            # diffusers' precondition_outputs is Table 1's (c_skip x + c_out F): hand it F
            _, _, c_in, c_noise = self.coefficients(sigma.expand(x.shape[0]))
            f = net(_expand(c_in, x) * x, c_noise, **cond).to(x.dtype)
            x = sched.step(f, sched.timesteps[i], x).prev_sample.to(x.dtype)
        return x
