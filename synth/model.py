"""SynthER's generator: EDM diffusion over whole transitions ``(s, a, r, s', terminal)``.

A transition is one flat vector (its *layout*, :data:`COLUMNS` order)::

    [ observations (O) | actions (A) | rewards (1) | next_observations (O) | terminals (1) ]

* Denoiser (:class:`ResidualMLPDenoiser`): SynthER's residual MLP. The input (``d`` columns) is projected
  to ``dim_t`` (128) and added to a time embedding (16 random Fourier features of ``c_noise`` plus
  ``c_noise`` itself, then an MLP to ``dim_t``); a linear layer goes to ``width``, then ``blocks`` residual
  blocks ``x + Linear(act(LayerNorm(x)))``, a final LayerNorm + activation and a linear layer back to ``d``.
  SynthER: width 2048 (a 1024 variant), 6 blocks; our CPU default is width 512, 4 blocks.
* Diffusion: :class:`worldmodels.models.edm.EDM` (the project's one implementation) with SynthER's
  settings: ``sigma_data 1`` (the data is z-scored), ``P_mean -1.2``, ``P_std 1.2``, sampled with
  ``sigma 0.002..80``, ``rho 7``. :data:`REFERENCE_SAMPLER` is SynthER's sampler (stochastic Heun,
  128 steps, ``S_churn 80``, ``S_tmin 0.05``, ``S_tmax 50``, ``S_noise 1.003``, 255 network evaluations);
  the default sampler saved with a model is cheaper (see docs/synther.md for the measured trade-off).
* Normalisation (:class:`SynthER` buffers ``mean``/``std``, fitted on the real data by
  :func:`fit_normalization`): a per-column z-score, except

  - the terminal flag, which is left unnormalised (mean 0, std 1) and thresholded at 0.5 after sampling
    (SynthER), so generated terminals are exactly 0 or 1;
  - constant columns (std below ``1e-6 * max(1, |mean|)``: e.g. ``terminals`` of HalfCheetah, which never
    terminates): their std is set to 1 so the model sees a zero column, and sampling writes the constant
    back exactly (:attr:`SynthER.constant` marks them);
  - NaN or inf anywhere is an error naming the column.

  Departure from SynthER: generated actions are clipped to the range of the real actions (the env's box
  for these datasets), so every synthetic action is a valid env action.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from worldmodels.api import TRANSITION_KEYS
from worldmodels.models.edm import EDM, SamplerConfig
from worldmodels.nn import make_activation
from worldmodels.pretrained import Pretrained

#: transition columns, in layout order (D4RL's names)
COLUMNS = TRANSITION_KEYS  # observations, actions, rewards, next_observations, terminals

#: SynthER's EDM training settings (sigma_data 1 for z-scored data)
SYNTHER_EDM = {"sigma_data": 1.0, "p_mean": -1.2, "p_std": 1.2}

#: SynthER's sampler: stochastic Heun (Algorithm 2 of EDM), 128 steps, 255 network evaluations
REFERENCE_SAMPLER = SamplerConfig(
    steps=128, solver="heun", sigma_min=0.002, sigma_max=80.0, rho=7.0, s_churn=80.0, s_tmin=0.05,
    s_tmax=50.0, s_noise=1.003,
)  # fmt: skip

#: relative std below which a column counts as constant
CONSTANT_RTOL = 1e-6


def column_names(obs_dim: int, action_dim: int) -> list[str]:
    """Readable name of every layout column: ``observations[3]``, ``actions[0]``, ``rewards``, ..."""
    return (
        [f"observations[{i}]" for i in range(obs_dim)]
        + [f"actions[{i}]" for i in range(action_dim)]
        + ["rewards"]
        + [f"next_observations[{i}]" for i in range(obs_dim)]
        + ["terminals"]
    )


def flatten_transitions(data: Mapping[str, np.ndarray], source: str = "data") -> np.ndarray:
    """``(N, 2 O + A + 2)`` float64 layout rows from D4RL-keyed arrays; ``ValueError`` naming the key for a
    missing key or mismatched rows."""
    for key in COLUMNS:
        if key not in data:
            raise ValueError(f"{source}: key {key!r} is missing; transitions need {list(COLUMNS)}")
    n = len(data["actions"])
    parts = []
    for key in COLUMNS:
        x = np.asarray(data[key], dtype=np.float64)
        if len(x) != n:
            raise ValueError(f"{source}: key {key!r} has {len(x)} rows, 'actions' has {n}")
        parts.append(x.reshape(n, -1))
    if parts[0].shape[1] != parts[3].shape[1]:
        raise ValueError(f"{source}: observations have {parts[0].shape[1]} columns, next_observations "
                         f"{parts[3].shape[1]}")  # fmt: skip
    return np.concatenate(parts, axis=1)


def fit_normalization(flat: np.ndarray, obs_dim: int, action_dim: int, source: str = "data") -> dict:
    """Per-column ``mean``, ``std``, ``constant`` (bool) and the action range ``action_low``/``action_high``
    of layout rows ``flat (N, D)`` (see the module docstring); ``ValueError`` naming the first column with
    a NaN or an inf."""
    names = column_names(obs_dim, action_dim)
    if flat.shape[1] != len(names):
        raise ValueError(f"{source}: {flat.shape[1]} columns, the layout has {len(names)}")
    if len(flat) < 2:
        raise ValueError(f"{source}: {len(flat)} transitions; at least 2 are needed to fit a normalisation")
    bad = ~np.isfinite(flat).all(axis=0)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        kind = "NaN" if np.isnan(flat[:, j]).any() else "inf"
        raise ValueError(f"{source}: column {names[j]!r} holds {kind} values; clean the dataset first")
    mean, std = flat.mean(0), flat.std(0)
    constant = std < CONSTANT_RTOL * np.maximum(1.0, np.abs(mean))
    std = np.where(constant, 1.0, std)
    mean[-1], std[-1] = 0.0, 1.0  # the terminal flag: not normalised, thresholded at 0.5
    term = flat[:, -1]
    if not np.isin(term, (0.0, 1.0)).all():
        raise ValueError(f"{source}: column 'terminals' holds values other than 0 and 1")
    a = flat[:, obs_dim : obs_dim + action_dim]
    return {"mean": mean, "std": std, "constant": constant, "action_low": a.min(0), "action_high": a.max(0)}


class RandomFourierFeatures(nn.Module):
    """``c_noise (B,)`` -> ``(B, 2 k + 1)``: ``[c, sin(2 pi w c), cos(2 pi w c)]`` with fixed random
    ``w ~ N(0, 1)`` of size ``k`` (SynthER's random Fourier time features)."""

    def __init__(self, k: int = 16, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("weights", torch.randn(k, generator=g))

    def forward(self, c: Tensor) -> Tensor:
        c = c.reshape(-1, 1).to(self.weights.dtype)
        f = c * self.weights[None] * 2 * math.pi
        return torch.cat([c, f.sin(), f.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """``x + Linear(act(LayerNorm(x)))`` at constant width."""

    def __init__(self, width: int, activation: str) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.act = make_activation(activation)
        self.linear = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.linear(self.act(self.norm(x)))


class ResidualMLPDenoiser(nn.Module):
    """SynthER's denoiser network ``F(x_in, c_noise)``: ``x_in (B, d)``, ``c_noise (B,)`` -> ``(B, d)``.

    Args:
        dim: transition size ``d``.
        width: hidden width (SynthER: 2048; ours on CPU: 512).
        blocks: residual blocks (SynthER: 6).
        dim_t: width of the input projection and time embedding (SynthER: 128).
        fourier_features: random Fourier features of ``c_noise`` (SynthER: 16).
        activation: activation name (SynthER: relu).
    """

    def __init__(self, dim: int, width: int = 512, blocks: int = 4, dim_t: int = 128,
                 fourier_features: int = 16, activation: str = "relu") -> None:  # fmt: skip
        super().__init__()
        self.proj = nn.Linear(dim, dim_t)
        self.time = nn.Sequential(
            RandomFourierFeatures(fourier_features), nn.Linear(2 * fourier_features + 1, dim_t), nn.SiLU(),
            nn.Linear(dim_t, dim_t),
        )  # fmt: skip
        self.inp = nn.Linear(dim_t, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, activation) for _ in range(blocks)))
        self.out = nn.Sequential(nn.LayerNorm(width), make_activation(activation), nn.Linear(width, dim))

    def forward(self, x: Tensor, c_noise: Tensor) -> Tensor:
        h = self.proj(x) + self.time(c_noise).to(x.dtype)
        return self.out(self.blocks(self.inp(h)))


class SynthER(Pretrained, nn.Module):
    """A trained transition generator: denoiser + normalisation + EDM and sampler settings.

    Args:
        obs_dim: observation size ``O``.
        action_dim: action size ``A``.
        denoiser: :class:`ResidualMLPDenoiser` arguments except ``dim`` (``width``, ``blocks``, ...).
        edm: :class:`~worldmodels.models.edm.EDM` arguments (default :data:`SYNTHER_EDM`).
        sampler: default :class:`~worldmodels.models.edm.SamplerConfig` arguments of :meth:`sample`.
        env_id: the Gymnasium id of the data's env (``synth evaluate`` steps it), or ``None``.
        dataset: where the training data came from (recorded, not read).

    Buffers: ``mean``, ``std`` ``(D,)`` (the normalisation, ``D = 2 O + A + 2``), ``constant`` ``(D,)``
    (columns written back exactly), ``action_low``/``action_high`` ``(A,)`` (generated actions are
    clipped to them). Set them with :meth:`set_normalization`.
    """

    model_type = "synther"

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        denoiser: dict[str, Any] | None = None,
        edm: dict[str, Any] | None = None,
        sampler: dict[str, Any] | None = None,
        env_id: str | None = None,
        dataset: str | None = None,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1:
            raise ValueError(f"{obs_dim=} and {action_dim=} must be >= 1")
        denoiser = dict(denoiser or {})
        edm_args = {**SYNTHER_EDM, **(edm or {})}
        sampler_args = dict(sampler or {"steps": 32, "solver": "heun"})
        self.edm = EDM(**edm_args)
        self.sampler = SamplerConfig(**sampler_args)
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.dim = 2 * obs_dim + action_dim + 2
        self.denoiser = ResidualMLPDenoiser(self.dim, **denoiser)
        self.config = {"obs_dim": obs_dim, "action_dim": action_dim, "denoiser": denoiser, "edm": edm_args,
                       "sampler": sampler_args, "env_id": env_id, "dataset": dataset}  # fmt: skip
        self.register_buffer("mean", torch.zeros(self.dim, dtype=torch.float64))
        self.register_buffer("std", torch.ones(self.dim, dtype=torch.float64))
        self.register_buffer("constant", torch.zeros(self.dim, dtype=torch.bool))
        self.register_buffer("action_low", -torch.ones(action_dim, dtype=torch.float64))
        self.register_buffer("action_high", torch.ones(action_dim, dtype=torch.float64))

    # ------------------------------------------------------------------ normalisation
    def set_normalization(self, stats: Mapping[str, np.ndarray]) -> None:
        """Copy :func:`fit_normalization`'s output into the buffers."""
        for key in ("mean", "std", "constant", "action_low", "action_high"):
            buf = getattr(self, key)
            value = torch.as_tensor(np.asarray(stats[key]), dtype=buf.dtype)
            if value.shape != buf.shape:
                raise ValueError(f"normalisation {key!r} has shape {tuple(value.shape)}, expected "
                                 f"{tuple(buf.shape)}")  # fmt: skip
            buf.copy_(value)

    def normalize(self, flat: Tensor) -> Tensor:
        """Layout rows ``(B, D)`` (raw units) -> float32 model space."""
        return ((flat.double() - self.mean) / self.std).float()

    def denormalize(self, z: Tensor) -> Tensor:
        """Model space ``(B, D)`` -> float64 raw units, constant columns written back, actions clipped,
        terminal thresholded at 0.5."""
        x = z.double() * self.std + self.mean
        x = torch.where(self.constant, self.mean, x)
        o, a = self.obs_dim, self.action_dim
        x[:, o : o + a] = torch.maximum(torch.minimum(x[:, o : o + a], self.action_high), self.action_low)
        x[:, -1] = (x[:, -1] > 0.5).double()
        return x

    def split(self, flat: np.ndarray | Tensor) -> dict[str, np.ndarray]:
        """Layout rows ``(B, D)`` -> float32 arrays keyed by :data:`COLUMNS` (rewards, terminals ``(B,)``)."""
        x = flat.cpu().numpy() if isinstance(flat, Tensor) else np.asarray(flat)
        o, a = self.obs_dim, self.action_dim
        out = {"observations": x[:, :o], "actions": x[:, o : o + a], "rewards": x[:, o + a],
               "next_observations": x[:, o + a + 1 : 2 * o + a + 1], "terminals": x[:, -1]}  # fmt: skip
        return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}

    # ------------------------------------------------------------------ training and sampling
    def loss(
        self, z: Tensor, generator: torch.Generator | None = None, net: nn.Module | None = None
    ) -> Tensor:
        """EDM's loss (eq. 8) of normalised rows ``z (B, D)`` for ``net`` (default: this model's denoiser;
        the training module passes its online network while this model holds the EMA weights)."""
        return self.edm.loss(net if net is not None else self.denoiser, z, generator)

    def sampler_config(self, sampler: SamplerConfig | Mapping[str, Any] | None = None) -> SamplerConfig:
        """The saved default sampler, or ``sampler`` (a config or its fields)."""
        if sampler is None:
            return self.sampler
        return sampler if isinstance(sampler, SamplerConfig) else SamplerConfig(**sampler)

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator | None = None,
        sampler: SamplerConfig | Mapping[str, Any] | None = None, batch_size: int = 100_000,
        autocast_bf16: bool = False,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """``n`` synthetic transitions as float32 arrays keyed like D4RL (``observations (n, O)``,
        ``actions (n, A)``, ``rewards (n,)``, ``next_observations (n, O)``, ``terminals (n,)`` in
        ``{0, 1}``). Drawn in batches of ``batch_size`` from ``generator``; ``autocast_bf16`` runs the
        network under bf16 autocast (the integration stays float32)."""
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        config = self.sampler_config(sampler)
        rows = []
        device = self.mean.device
        for lo in range(0, n, batch_size):
            b = min(batch_size, n - lo)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
                z = self.edm.sample(self.denoiser, (b, self.dim), config, generator, device=device)
            rows.append(self.denormalize(z.float()))
        flat = torch.cat(rows) if rows else torch.zeros(0, self.dim, dtype=torch.float64)
        return self.split(flat)

    def sampler_dict(self, sampler: SamplerConfig | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """JSON form of the sampler :meth:`sample` would use."""
        return asdict(self.sampler_config(sampler))


def parse_sampler(spec: str | None, base: SamplerConfig) -> SamplerConfig:
    """``"steps=16,solver=heun,s_churn=0"`` -> ``base`` with those fields replaced; ``"reference"`` ->
    :data:`REFERENCE_SAMPLER`. ``ValueError`` naming an unknown field or a bad value."""
    if not spec:
        return base
    if spec == "reference":
        return REFERENCE_SAMPLER
    fields = asdict(base)
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(f"--sampler: {item!r} is not FIELD=VALUE with FIELD in {sorted(fields)}")
        if key == "solver":
            fields[key] = value.strip()
        else:
            try:
                fields[key] = int(value) if key == "steps" else float(value)
            except ValueError:
                raise ValueError(f"--sampler: {key}={value!r} is not a number") from None
    return SamplerConfig(**fields)
