"""TD3+BC (Fujimoto & Gu 2021, "A Minimalist Approach to Offline Reinforcement Learning"): offline RL from a
transition batch keyed like D4RL (``observations``, ``actions``, ``rewards``, ``next_observations``,
``terminals``), read top to bottom in :meth:`TD3BC.update`.

* TD3 (Fujimoto et al. 2018): twin critics (:class:`~worldmodels.rl.networks.VectorizedCritic`, ``N = 2``),
  target policy smoothing (noise ``policy_noise`` clipped to ``noise_clip``), clipped double Q, delayed
  actor and target updates every ``policy_freq`` critic steps, Polyak ``tau``.
* +BC (eq. 3 of TD3+BC): the actor maximises ``lambda Q(s, pi(s)) - (pi(s) - a)^2`` with
  ``lambda = alpha / mean|Q(s, pi(s))|`` (``alpha = 2.5``; the mean over the batch, without gradient).
* States are z-scored with the dataset's mean and std (+1e-3), as the paper does; actions and rewards are
  used as they are.

The actor is a deterministic ``tanh`` MLP scaled to the action box. All randomness (minibatches, target
noise) comes from the ``torch.Generator`` given to :meth:`TD3BC.train_offline`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from worldmodels.rl.networks import VectorizedCritic


@dataclass(frozen=True)
class TD3BCConfig:
    """TD3+BC's hyper-parameters (the paper's defaults), plus the network size.

    Args:
        alpha: BC trade-off (paper: 2.5).
        gamma: discount.
        tau: Polyak rate of the targets.
        policy_noise: std of the target policy smoothing noise (times the action scale).
        noise_clip: clip of that noise (times the action scale).
        policy_freq: critic updates per actor/target update.
        lr: Adam learning rate of actor and critics (paper: 3e-4).
        batch_size: minibatch size (paper: 256).
        hidden: hidden widths of actor and critics (paper: 256, 256).
    """

    alpha: float = 2.5
    gamma: float = 0.99
    tau: float = 0.005
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_freq: int = 2
    lr: float = 3e-4
    batch_size: int = 256
    hidden: tuple[int, ...] = (256, 256)

    def __post_init__(self) -> None:
        if self.alpha < 0 or not 0 <= self.gamma <= 1 or not 0 < self.tau <= 1:
            raise ValueError(f"need alpha >= 0, 0 <= gamma <= 1, 0 < tau <= 1; got {self.alpha=}, "
                             f"{self.gamma=}, {self.tau=}")  # fmt: skip
        if self.policy_freq < 1 or self.batch_size < 1:
            raise ValueError(f"policy_freq={self.policy_freq} and batch_size={self.batch_size} must be >= 1")


class TD3BC(nn.Module):
    """TD3+BC agent over ``obs (B, obs_dim)`` -> ``action (B, action_dim)`` in ``[action_low, action_high]``.

    Args:
        obs_dim: observation size.
        action_dim: action size.
        action_low: per-dimension lower bounds of the action box.
        action_high: per-dimension upper bounds.
        config: hyper-parameters.
    """

    def __init__(self, obs_dim: int, action_dim: int, action_low: Sequence[float], action_high: Sequence[float],
                 config: TD3BCConfig = TD3BCConfig()) -> None:  # fmt: skip
        super().__init__()
        self.config = config
        dims = [obs_dim, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.actor = nn.Sequential(*layers, nn.Linear(dims[-1], action_dim), nn.Tanh())
        self.critic = VectorizedCritic(obs_dim, action_dim, num_critics=2, hidden=config.hidden)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.actor_target.requires_grad_(False)
        self.critic_target.requires_grad_(False)
        lo, hi = (
            torch.as_tensor(action_low, dtype=torch.float32),
            torch.as_tensor(action_high, dtype=torch.float32),
        )
        self.register_buffer("action_scale", (hi - lo) / 2)
        self.register_buffer("action_bias", (hi + lo) / 2)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr)
        self.updates = 0

    def pi(self, obs_n: Tensor, target: bool = False) -> Tensor:
        """Normalised ``obs_n (B, O)`` -> action ``(B, A)`` in the box."""
        net = self.actor_target if target else self.actor
        return net(obs_n) * self.action_scale + self.action_bias

    @torch.no_grad()
    def act(self, obs: Tensor) -> Tensor:
        """Raw ``obs (B, O)`` -> deterministic action ``(B, A)``."""
        return self.pi((obs - self.obs_mean) / self.obs_std)

    def update(
        self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> dict[str, float]:
        """One TD3+BC step on a normalised batch (``obs``, ``action``, ``reward``, ``next_obs``, ``done``)."""
        c = self.config
        obs, action, reward, next_obs, done = (
            batch[k] for k in ("obs", "action", "reward", "next_obs", "done")
        )
        with torch.no_grad():  # TD3: target policy smoothing + clipped double Q
            eps = torch.randn(action.shape, generator=generator, device=action.device)
            noise = (eps * c.policy_noise).clamp(-c.noise_clip, c.noise_clip) * self.action_scale
            lo, hi = self.action_bias - self.action_scale, self.action_bias + self.action_scale
            next_action = torch.maximum(torch.minimum(self.pi(next_obs, target=True) + noise, hi), lo)
            target_q = reward + c.gamma * (1 - done) * self.critic_target(next_obs, next_action).min(0).values
        critic_loss = F.mse_loss(self.critic(obs, action), target_q.expand(2, -1))
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        out = {"critic_loss": float(critic_loss.detach())}
        self.updates += 1
        if self.updates % c.policy_freq == 0:  # delayed actor + target updates
            pi = self.pi(obs)
            q = self.critic(obs, pi)[0]
            lmbda = c.alpha / q.abs().mean().detach()  # eq. 3: lambda = alpha / mean |Q|
            actor_loss = -lmbda * q.mean() + F.mse_loss(pi, action)
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            with torch.no_grad():
                for net, tgt in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
                    for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                        tp.lerp_(p, c.tau)
            out["actor_loss"] = float(actor_loss.detach())
        return out

    def train_offline(self, data: Mapping[str, np.ndarray], steps: int, generator: torch.Generator,
                      progress: bool = False) -> list[dict[str, float]]:  # fmt: skip
        """``steps`` updates on minibatches drawn with replacement from ``data`` (D4RL keys); fits the
        observation normalisation first. Returns the losses every 1000 steps."""
        for key in ("observations", "actions", "rewards", "next_observations", "terminals"):
            if key not in data:
                raise ValueError(f"TD3+BC data: key {key!r} is missing")
        obs = torch.as_tensor(np.asarray(data["observations"], dtype=np.float32))
        self.obs_mean.copy_(obs.mean(0))
        self.obs_std.copy_(obs.std(0) + 1e-3)
        t = {
            "obs": (obs - self.obs_mean) / self.obs_std,
            "action": torch.as_tensor(np.asarray(data["actions"], dtype=np.float32)),
            "reward": torch.as_tensor(np.asarray(data["rewards"], dtype=np.float32)).reshape(-1),
            "next_obs": (torch.as_tensor(np.asarray(data["next_observations"], dtype=np.float32)) - self.obs_mean)
            / self.obs_std,
            "done": torch.as_tensor(np.asarray(data["terminals"], dtype=np.float32)).reshape(-1),
        }  # fmt: skip
        n, log = len(t["obs"]), []
        for step in tqdm(range(steps), desc="td3+bc", disable=not progress, leave=False):
            idx = torch.randint(0, n, (self.config.batch_size,), generator=generator)
            out = self.update({k: v[idx] for k, v in t.items()}, generator)
            if (step + 1) % 1000 == 0:
                log.append({"step": step + 1, **out})
        return log


def evaluate_policy(
    agent: TD3BC, env_id: str, episodes: int, seed: int, max_steps: int | None = None
) -> np.ndarray:
    """Undiscounted returns ``(episodes,)`` of the deterministic policy on ``env_id`` (episode ``i`` reset
    with ``seed + i``)."""
    import gymnasium as gym

    env = gym.make(env_id, **({"max_episode_steps": max_steps} if max_steps else {}))
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            a = agent.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            obs, r, terminated, truncated, _ = env.step(a)
            total += float(r)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.asarray(returns)
