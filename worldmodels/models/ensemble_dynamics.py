"""Probabilistic ensemble dynamics (PETS / MBPO / MOPO style) for vector-state MuJoCo tasks.

``E`` Gaussian MLPs, vectorised over members (:class:`~worldmodels.nn.EnsembleLinear`: one batched matmul
per layer, no Python loop over members), each predicting the mean and log-variance of
``(s' - s, r)`` from ``(s, a)``:

* inputs ``(s, a)`` and targets ``(s' - s, r)`` standardised with the training set's mean and std (buffers
  saved with the weights); predictions are mapped back to raw env units;
* learnable soft log-variance bounds (PETS, Chua et al. 2018, appendix A.1):
  ``logvar = max - softplus(max - logvar)``, then ``logvar = min + softplus(logvar - min)``, initialised at
  ``max = 0.5`` and ``min = -10`` (the edge-of-reach code's values) and trained with the penalty
  ``0.01 * (sum max - sum min)``;
* elites: the ``num_elites`` members with the lowest holdout error (chosen by the training module); a step
  samples one elite per row, then a Gaussian sample of that member (MBPO's "TS-1" propagation);
* termination by the env's own rule, written on next observations (:data:`TERMINATION_FNS`): halfcheetah
  never, hopper and walker2d the healthy ranges of Gymnasium's ``-v5`` envs (MBPO's static functions).

Roles (:mod:`worldmodels.api`): :class:`SteppableModel` (``step``: closed loop for RL agents, with the
MOPO uncertainty in ``StepResult.uncertainty`` and every penalty of :data:`PENALTIES` in ``info``) and
:class:`StochasticWorldModel` (``encode`` / ``rollout``: open loop for planners, the predicted rewards in
``pred.reward`` so ``planners`` can plan with :class:`planners.objectives.NegativeReturn`, PETS-style).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodels.api import StepResult
from worldmodels.nn import EnsembleLinear, make_activation
from worldmodels.pretrained import Pretrained

LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------------- termination
def _never(next_obs: Tensor) -> Tensor:
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def _hopper(next_obs: Tensor) -> Tensor:
    """Gymnasium Hopper-v5: healthy iff every ``|obs[1:]| < 100``, height ``obs[0] > 0.7`` and angle
    ``|obs[1]| < 0.2`` (obs = ``qpos[1:]``, clipped ``qvel``)."""
    height, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (
        torch.isfinite(next_obs).all(-1)
        & (next_obs[..., 1:].abs() < 100).all(-1)
        & (height > 0.7)
        & (angle.abs() < 0.2)
    )
    return ~healthy


def _walker2d(next_obs: Tensor) -> Tensor:
    """Gymnasium Walker2d-v5: healthy iff ``0.8 < height < 2`` and ``-1 < angle < 1``."""
    height, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (height > 0.8) & (height < 2.0) & (angle > -1.0) & (angle < 1.0)
    return ~healthy


#: env name -> ``fn(next_obs (..., O)) -> terminated bool (...)``
TERMINATION_FNS: dict[str, Callable[[Tensor], Tensor]] = {
    "halfcheetah": _never,
    "hopper": _hopper,
    "walker2d": _walker2d,
    "none": _never,
}

#: Gymnasium id -> termination name
ENV_IDS: dict[str, str] = {"HalfCheetah-v5": "halfcheetah", "Hopper-v5": "hopper", "Walker2d-v5": "walker2d"}


def termination_name(env_id: str | None) -> str:
    """The :data:`TERMINATION_FNS` key of a Gymnasium id (``none`` for an unknown env or ``None``)."""
    return ENV_IDS.get(env_id or "", "none")


# ----------------------------------------------------------------------------------------- penalties
def penalties(mean: Tensor, std: Tensor, sample: Tensor) -> dict[str, Tensor]:
    """MOPO-style uncertainty estimates of a batch of transitions (Lu et al. 2022 compare these).

    Args:
        mean: ``(E, B, D)`` predicted means of the members (raw units, ``D`` = obs dims + reward).
        std: ``(E, B, D)`` predicted standard deviations.
        sample: ``(B, D)`` the sampled outcome (for the log-likelihood variance).

    Returns ``name -> (B,)``:

    * ``aleatoric``: ``max_e ||std_e||_2`` (MOPO's default);
    * ``ensemble_std``: ``||std_e(mean_e)||_2``, the population std over members, norm over dims;
    * ``max_pairwise``: ``max_{i,j} ||mean_i - mean_j||_2``;
    * ``ll_var``: ``Var_e log N(sample; mean_e, std_e^2)`` (population variance).
    """
    aleatoric = std.norm(dim=-1).amax(0)
    ensemble_std = mean.std(0, unbiased=False).norm(dim=-1)
    max_pairwise = torch.cdist(mean.transpose(0, 1), mean.transpose(0, 1)).amax((-1, -2))
    ll = (-0.5 * ((sample - mean) / std).pow(2) - std.log() - 0.5 * LOG_2PI).sum(-1)  # (E, B)
    return {
        "aleatoric": aleatoric,
        "ensemble_std": ensemble_std,
        "max_pairwise": max_pairwise,
        "ll_var": ll.var(0, unbiased=False),
    }


PENALTIES = ("aleatoric", "ensemble_std", "max_pairwise", "ll_var")


# ------------------------------------------------------------------------------------------- state
@dataclass
class DynamicsState:
    """Predicted states of a rollout: ``visual (B, T, 1, O)`` and ``proprio (B, T, O)`` the raw observation,
    ``reward (B, T)`` the predicted reward of each step (``None`` for an encoded start state),
    ``terminated (B, T)`` bool."""

    visual: Tensor
    proprio: Tensor
    reward: Tensor | None = None
    terminated: Tensor | None = None


# ------------------------------------------------------------------------------------------- model
class EnsembleDynamics(Pretrained, nn.Module):
    """``num_members`` Gaussian MLPs ``(s, a) -> N(mean, var)`` of ``(s' - s, r)``.

    Args:
        obs_dim: observation size ``O``.
        action_dim: action size ``A``.
        num_members: ensemble size ``E`` (edge-of-reach / MBPO: 7).
        num_elites: members a step samples from (5).
        hidden: hidden widths (``(200, 200, 200, 200)``).
        activation: activation name (``silu``).
        env_id: Gymnasium id of the env the data came from (termination rule, data/model checks).
        action_low: per-dimension lower bounds of the action box (default ``-1``).
        action_high: per-dimension upper bounds (default ``1``).
        max_logvar_init: initial soft upper bound of the log-variance (0.5).
        min_logvar_init: initial soft lower bound (-10).

    Shapes: ``forward(obs (B, O), action (B, A))`` -> normalised ``mean, logvar (E, B, O + 1)``;
    ``predict`` in raw units; ``step`` as :class:`~worldmodels.api.SteppableModel`.
    """

    model_type = "EnsembleDynamics"

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        num_members: int = 7,
        num_elites: int = 5,
        hidden: Sequence[int] = (200, 200, 200, 200),
        activation: str = "silu",
        env_id: str | None = None,
        action_low: Sequence[float] | None = None,
        action_high: Sequence[float] | None = None,
        max_logvar_init: float = 0.5,
        min_logvar_init: float = -10.0,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1:
            raise ValueError(f"{obs_dim=} and {action_dim=} must be >= 1")
        if not 1 <= num_elites <= num_members:
            raise ValueError(f"{num_elites=} must be in [1, {num_members=}]")
        if not min_logvar_init < max_logvar_init:
            raise ValueError(f"{min_logvar_init=} must be < {max_logvar_init=}")
        low = [-1.0] * action_dim if action_low is None else [float(v) for v in action_low]
        high = [1.0] * action_dim if action_high is None else [float(v) for v in action_high]
        if len(low) != action_dim or len(high) != action_dim:
            raise ValueError(
                f"action_low/action_high have {len(low)}/{len(high)} entries, expected {action_dim=}"
            )
        self.config = {
            "obs_dim": obs_dim, "action_dim": action_dim, "num_members": num_members, "num_elites": num_elites,
            "hidden": list(hidden), "activation": activation, "env_id": env_id, "action_low": low,
            "action_high": high, "max_logvar_init": max_logvar_init, "min_logvar_init": min_logvar_init,
        }  # fmt: skip
        self.obs_dim = self.state_dim = obs_dim
        self.action_dim = action_dim
        self.num_members, self.num_elites = num_members, num_elites
        self.env_id = env_id
        self.termination = termination_name(env_id)
        out = obs_dim + 1
        dims = [obs_dim + action_dim, *hidden]
        self.layers = nn.ModuleList(EnsembleLinear(num_members, a, b) for a, b in itertools.pairwise(dims))
        self.act = make_activation(activation)
        self.head = EnsembleLinear(num_members, dims[-1], 2 * out)
        self.max_logvar = nn.Parameter(torch.full((out,), float(max_logvar_init)))
        self.min_logvar = nn.Parameter(torch.full((out,), float(min_logvar_init)))
        self.register_buffer("input_mean", torch.zeros(obs_dim + action_dim))
        self.register_buffer("input_std", torch.ones(obs_dim + action_dim))
        self.register_buffer("target_mean", torch.zeros(out))
        self.register_buffer("target_std", torch.ones(out))
        self.register_buffer("elites", torch.arange(num_elites))
        self.register_buffer("action_low", torch.tensor(low))
        self.register_buffer("action_high", torch.tensor(high))

    # ---- statistics -----------------------------------------------------------------------------
    @torch.no_grad()
    def set_statistics(self, obs: Tensor, action: Tensor, next_obs: Tensor, reward: Tensor) -> None:
        """Standardisation from training transitions ``(N, O)``, ``(N, A)``, ``(N, O)``, ``(N,)`` (a std
        below ``1e-6`` becomes 1)."""
        x = torch.cat([obs, action], -1)
        y = torch.cat([next_obs - obs, reward[:, None]], -1)
        for name, t in (("input", x), ("target", y)):
            std = t.std(0)
            getattr(self, f"{name}_mean").copy_(t.mean(0))
            getattr(self, f"{name}_std").copy_(torch.where(std < 1e-6, torch.ones_like(std), std))

    # ---- the network ----------------------------------------------------------------------------
    def forward(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``obs (B, O)`` or ``(E, B, O)``, ``action`` likewise -> normalised ``mean, logvar (E, B, O + 1)``;
        ``members`` (indices ``(M,)``): only those members, ``(M, B, O + 1)`` (the elites of a rollout step)."""
        x = (torch.cat([obs, action], -1) - self.input_mean) / self.input_std
        for layer in [*self.layers, self.head]:
            if members is None:
                x = layer(x)
            else:
                w, b = layer.weight[members], layer.bias[members]
                x = torch.baddbmm(b, x.expand(len(members), *x.shape) if x.dim() == 2 else x, w)
            if layer is not self.head:
                x = self.act(x)
        mean, logvar = x.chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def nll(self, obs: Tensor, action: Tensor, next_obs: Tensor, reward: Tensor) -> Tensor:
        """Gaussian negative log-likelihood (constant dropped) of normalised targets, mean over batch and
        dims, summed over members; each member gets its own batch: inputs ``(E, B, ...)``, ``reward (E, B)``."""
        mean, logvar = self(obs, action)
        target = (torch.cat([next_obs - obs, reward[..., None]], -1) - self.target_mean) / self.target_std
        return ((mean - target).pow(2) * torch.exp(-logvar) + logvar).mean((1, 2)).sum()

    def logvar_bound_penalty(self) -> Tensor:
        """``sum max_logvar - sum min_logvar`` (weighted by 0.01 in the loss)."""
        return self.max_logvar.sum() - self.min_logvar.sum()

    def weight_decay_penalty(self, decays: Sequence[float]) -> Tensor:
        """``sum_l decay_l * ||W_l||^2 / 2`` over the hidden layers and the head (MBPO's per-layer decay)."""
        weights = [layer.weight for layer in self.layers] + [self.head.weight]
        if len(decays) != len(weights):
            raise ValueError(f"weight_decay has {len(decays)} entries, the network has {len(weights)} layers")
        return sum(d * 0.5 * w.pow(2).sum() for d, w in zip(decays, weights))

    @torch.no_grad()
    def mse(self, obs: Tensor, action: Tensor, next_obs: Tensor, reward: Tensor) -> Tensor:
        """``(E,)`` mean squared error of each member's mean on normalised targets (elite selection)."""
        mean, _ = self(obs, action)
        target = (torch.cat([next_obs - obs, reward[..., None]], -1) - self.target_mean) / self.target_std
        return (mean - target).pow(2).mean((1, 2))

    def predict(self, obs: Tensor, action: Tensor, members: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Raw-unit ``mean, std (E, B, O + 1)`` of ``(s' - s, r)`` for ``obs (B, O)``, ``action (B, A)``
        (``(M, B, O + 1)`` for the given ``members``)."""
        mean, logvar = self(obs, action, members)
        return mean * self.target_std + self.target_mean, (0.5 * logvar).exp() * self.target_std

    # ---- SteppableModel ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, state: Tensor, action: Tensor, *, generator: torch.Generator | None = None) -> StepResult:
        """One sampled transition per row: an elite drawn uniformly per row (``generator``), then a Gaussian
        sample of its prediction. ``uncertainty`` is MOPO's ``aleatoric`` penalty; ``info["penalties"]``
        holds every one of :data:`PENALTIES` over the elites, ``info["member"]`` the member of each row."""
        if state.shape[-1] != self.obs_dim or action.shape[-1] != self.action_dim:
            raise ValueError(
                f"EnsembleDynamics.step: state {tuple(state.shape)} / action {tuple(action.shape)}, expected "
                f"(B, {self.obs_dim}) / (B, {self.action_dim})"
            )
        b = state.shape[0]
        mean, std = self.predict(state, action, self.elites)  # (num_elites, B, D): only the elites run
        pick = torch.randint(
            self.num_elites, (b,), generator=generator, device=generator.device if generator else None
        )
        pick = pick.to(state.device)
        rows = torch.arange(b, device=state.device)
        eps = torch.randn(mean.shape[1:], generator=generator, device=mean.device, dtype=mean.dtype)
        sample = mean[pick, rows] + std[pick, rows] * eps
        next_state = state + sample[:, :-1]
        pens = penalties(mean, std, sample)
        return StepResult(
            next_state=next_state,
            reward=sample[:, -1],
            terminated=TERMINATION_FNS[self.termination](next_state),
            uncertainty=pens["aleatoric"],
            info={"penalties": pens, "member": self.elites[pick]},
        )

    # ---- StochasticWorldModel ---------------------------------------------------------------------
    def encode(self, obs: Mapping[str, Tensor]) -> DynamicsState:
        """``obs["proprio"] (B, T, O)`` (raw env observations) -> a :class:`DynamicsState`."""
        p = obs["proprio"].float()
        if p.shape[-1] != self.obs_dim:
            raise ValueError(f"obs['proprio'] has {p.shape[-1]} dims, the model expects {self.obs_dim}")
        return DynamicsState(p[:, :, None], p)

    @torch.no_grad()
    def rollout(
        self, state: DynamicsState, actions: Tensor, *, generator: torch.Generator | None = None
    ) -> DynamicsState:
        """``actions (B, H, A)`` (env units) -> ``H`` predicted steps; a state of batch 1 is broadcast.
        Rewards after a predicted termination are zero (the episode has ended)."""
        b, horizon, _ = actions.shape
        s = state.proprio[:, -1].expand(b, -1)
        alive = torch.ones(b, dtype=torch.bool, device=actions.device)
        states, rewards, dones = [], [], []
        for h in range(horizon):
            out = self.step(s, actions[:, h], generator=generator)
            rewards.append(out.reward * alive)
            alive = alive & ~out.terminated
            s = out.next_state
            states.append(s)
            dones.append(~alive)
        p = torch.stack(states, 1)
        return DynamicsState(p[:, :, None], p, torch.stack(rewards, 1), torch.stack(dones, 1))

    def action_bounds(self) -> tuple[Tensor, Tensor]:
        return self.action_low.clone(), self.action_high.clone()

    def to_env_actions(self, actions: Tensor) -> Tensor:
        """Planning actions are env actions (frameskip 1): ``(H, A)`` clamped to the action box."""
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)
