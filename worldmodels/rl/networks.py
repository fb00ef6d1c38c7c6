"""Actor and critics for SAC-style agents.

* :class:`VectorizedCritic`: ``N`` Q-networks ``Q_i(s, a)`` as one :class:`~worldmodels.nn.EnsembleMLP`
  (one batched matmul per layer for all critics): clipped double-Q at ``N = 2``, SAC-N / EDAC / RAVL
  ensembles at ``N = 10`` with the same code.
* :class:`TanhGaussianActor`: the SAC policy ``a = tanh(mu(s) + sigma(s) * eps) * scale + bias`` with
  ``eps ~ N(0, I)``, and its log-density with the change of variables of the squashing (Haarnoja et al.
  2018, appendix C, eq. 21). It is a :class:`~worldmodels.pretrained.Pretrained` policy: saved with
  ``save_pretrained``, loaded with ``worldmodels.load_pretrained``, and usable by the collectors
  (``worldmodels data collect --policy DIR``) through :meth:`TanhGaussianActor.as_env_policy`.

Departures: the log standard deviation is squashed into ``[log_std_min, log_std_max]`` with a tanh (as
CleanRL does) rather than clipped (rlkit), and ``log(1 - tanh(x)^2)`` is computed as
``2 * (log 2 - x - softplus(-2x))``, exact and stable for large ``|x|``, instead of adding ``1e-6`` inside
the logarithm.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodels.nn import EnsembleMLP, make_activation
from worldmodels.pretrained import Pretrained

LOG_2 = math.log(2.0)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class VectorizedCritic(Pretrained, nn.Module):
    """``num_critics`` independent Q-networks over ``concat(obs, action)``.

    Args:
        obs_dim: observation size.
        action_dim: action size.
        num_critics: ensemble size ``N`` (2 for SAC's clipped double Q, 10 for SAC-N / RAVL).
        hidden: hidden widths of each critic (default ``(256, 256)``).
        activation: activation name (``relu``, ``silu``, ...).

    Shapes: ``obs (B, obs_dim)``, ``action (B, action_dim)`` -> ``(N, B)``; inputs with a leading critic axis
    ``(N, B, ...)`` give each critic its own batch.
    """

    model_type = "VectorizedCritic"

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        num_critics: int = 2,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1 or num_critics < 1:
            raise ValueError(f"{obs_dim=}, {action_dim=} and {num_critics=} must all be >= 1")
        self.config = {
            "obs_dim": obs_dim,
            "action_dim": action_dim,
            "num_critics": num_critics,
            "hidden": list(hidden),
            "activation": activation,
        }
        self.num_critics = num_critics
        self.net = EnsembleMLP(num_critics, obs_dim + action_dim, 1, hidden, activation)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        """``obs (B, O)`` or ``(N, B, O)``, ``action (B, A)`` or ``(N, B, A)`` -> ``Q (N, B)``."""
        if obs.dim() != action.dim():
            obs, action = _align(obs, action)
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)


def _align(obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
    """Give the 2-D one of ``obs``/``action`` the other's leading critic axis (a broadcast view)."""
    if obs.dim() == 2:
        obs = obs.unsqueeze(0).expand(action.shape[0], *obs.shape)
    else:
        action = action.unsqueeze(0).expand(obs.shape[0], *action.shape)
    return obs, action


class TanhGaussianActor(Pretrained, nn.Module):
    """SAC's squashed Gaussian policy.

    Args:
        obs_dim: observation size.
        action_dim: action size.
        hidden: hidden widths of the trunk (default ``(256, 256)``).
        action_low: per-dimension lower bounds of the env's action box (default ``-1``).
        action_high: per-dimension upper bounds (default ``1``).
        log_std_min: lower bound of the log standard deviation (default ``-5``).
        log_std_max: upper bound of the log standard deviation (default ``2``).
        activation: activation name of the trunk.

    Shapes: ``obs (B, obs_dim)`` -> actions ``(B, action_dim)`` in ``[action_low, action_high]``,
    log-probabilities ``(B,)``.
    """

    model_type = "TanhGaussianActor"

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256),
        action_low: Sequence[float] | None = None,
        action_high: Sequence[float] | None = None,
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1:
            raise ValueError(f"{obs_dim=} and {action_dim=} must be >= 1")
        if not log_std_min < log_std_max:
            raise ValueError(f"{log_std_min=} must be < {log_std_max=}")
        low = [-1.0] * action_dim if action_low is None else [float(v) for v in action_low]
        high = [1.0] * action_dim if action_high is None else [float(v) for v in action_high]
        if len(low) != action_dim or len(high) != action_dim:
            raise ValueError(
                f"action_low/action_high have {len(low)}/{len(high)} entries, expected {action_dim=}"
            )
        if any(h <= lo for lo, h in zip(low, high)):
            raise ValueError(f"action_high={high} must exceed action_low={low} in every dimension")
        self.config = {
            "obs_dim": obs_dim,
            "action_dim": action_dim,
            "hidden": list(hidden),
            "action_low": low,
            "action_high": high,
            "log_std_min": log_std_min,
            "log_std_max": log_std_max,
            "activation": activation,
        }
        dims = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), make_activation(activation)]
        self.trunk = nn.Sequential(*layers)
        self.mean = nn.Linear(dims[-1], action_dim)
        self.log_std = nn.Linear(dims[-1], action_dim)
        lo_t, hi_t = torch.tensor(low), torch.tensor(high)
        self.register_buffer("action_scale", (hi_t - lo_t) / 2.0)
        self.register_buffer("action_bias", (hi_t + lo_t) / 2.0)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``obs (B, O)`` -> pre-squash mean ``(B, A)`` and log standard deviation ``(B, A)``."""
        h = self.trunk(obs)
        log_std = torch.tanh(self.log_std(h))
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1.0)
        return self.mean(h), log_std

    def sample(self, obs: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Reparameterised sample: ``obs (B, O)`` -> ``action (B, A)``, ``log_prob (B,)``.

        ``log pi(a|s) = sum_j [log N(u_j; mu_j, sigma_j) - log(scale_j (1 - tanh(u_j)^2))]`` with
        ``u = mu + sigma * eps`` (SAC, appendix C, eq. 21).
        """
        mean, log_std = self(obs)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + log_std.exp() * eps
        log_prob = (-0.5 * eps.pow(2) - log_std - LOG_SQRT_2PI).sum(-1)
        log_det = 2.0 * (LOG_2 - u - F.softplus(-2.0 * u))  # log(1 - tanh(u)^2), stable
        log_prob = log_prob - (log_det + torch.log(self.action_scale)).sum(-1)
        return torch.tanh(u) * self.action_scale + self.action_bias, log_prob

    def act(
        self, obs: Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """``obs (B, O)`` -> ``action (B, A)``: the mean action ``tanh(mu) * scale + bias`` when
        ``deterministic`` (evaluation), else a sample drawn with ``generator``."""
        if deterministic:
            mean, _ = self(obs)
            return torch.tanh(mean) * self.action_scale + self.action_bias
        return self.sample(obs, generator)[0]

    def as_env_policy(self, env=None, stochastic: bool = False) -> ActorEnvPolicy:
        """Wrap for the collectors: ``reset(seed)``, ``__call__(obs) -> np.ndarray`` float32 action.

        ``stochastic=True`` samples actions (D4RL collected its datasets this way) from a
        ``torch.Generator`` seeded at each ``reset(seed)``, so an episode is reproducible from its seed;
        otherwise the deterministic mean action. ``env`` is accepted for the collectors' interface; the
        action bounds are the actor's own.
        """
        return ActorEnvPolicy(self, stochastic=stochastic)


class ActorEnvPolicy:
    """A :class:`TanhGaussianActor` as a collector policy (batch of one observation, numpy in and out).

    After each call, :attr:`last_log_prob` holds ``log pi(a|s)`` of the returned action (stochastic) or
    ``nan`` (deterministic), as D4RL's ``infos/action_log_probs``.
    """

    def __init__(self, actor: TanhGaussianActor, stochastic: bool = False) -> None:
        self.actor, self.stochastic = actor, stochastic
        self.generator = torch.Generator(device=actor.action_scale.device)
        self.last_log_prob = float("nan")
        self.name = "stochastic" if stochastic else "deterministic"

    def reset(self, seed: int | None = None) -> None:
        """Seed the sampling generator for the episode (``None``: keep the current stream)."""
        if seed is not None:
            self.generator.manual_seed(int(seed))

    @torch.inference_mode()
    def __call__(self, obs) -> np.ndarray:
        """``obs (O,)`` -> ``action (A,)`` float32 in env units."""
        p = next(self.actor.parameters())
        x = torch.as_tensor(np.array(obs), dtype=p.dtype, device=p.device)[
            None
        ]  # a copy: obs may be read-only
        if self.stochastic:
            action, log_prob = self.actor.sample(x, self.generator)
            self.last_log_prob = float(log_prob[0])
        else:
            action = self.actor.act(x)
        return action[0].cpu().numpy().astype(np.float32)
