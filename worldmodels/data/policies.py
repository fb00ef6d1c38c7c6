"""A small checkpointed behaviour policy for the collectors (``--policy DIR``).

``MLPPolicy`` maps a vector observation key (default ``proprio``) to an action in ``[-1, 1]^A`` (tanh of
an MLP). It saves and loads as a directory: ``config.json`` + ``model.safetensors`` (no pickle).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from worldmodels.pretrained import Pretrained


class MLPPolicy(Pretrained, nn.Module):
    """Deterministic MLP policy.

    Args:
        obs_dim: size of the observation vector.
        action_dim: size of the action.
        hidden: widths of the hidden layers (default ``(256, 256)``).
        obs_key: which observation key the policy reads from a dict observation (default ``proprio``).
    """

    model_type = "MLPPolicy"

    def __init__(
        self, obs_dim: int, action_dim: int, hidden: tuple[int, ...] = (256, 256), obs_key: str = "proprio"
    ):
        super().__init__()
        if obs_dim < 1 or action_dim < 1:
            raise ValueError(f"obs_dim={obs_dim} and action_dim={action_dim} must be >= 1")
        self.config = {
            "obs_dim": obs_dim,
            "action_dim": action_dim,
            "hidden": list(hidden),
            "obs_key": obs_key,
        }
        dims = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], action_dim), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs (B, obs_dim)`` -> ``actions (B, action_dim)`` in [-1, 1]."""
        return self.net(obs)

    def as_env_policy(self, env) -> _EnvPolicy:
        """Wrap for the collectors: ``reset(seed)`` and ``__call__(obs) -> np.ndarray`` in env units."""
        return _EnvPolicy(self, env.action_space)


class _EnvPolicy:
    def __init__(self, policy: MLPPolicy, action_space):
        self.policy, self.low, self.high = policy, action_space.low, action_space.high

    def reset(self, seed: int | None = None) -> None:
        """Deterministic policy: nothing to reset."""

    @torch.inference_mode()
    def __call__(self, obs) -> np.ndarray:
        x = obs[self.policy.config["obs_key"]] if isinstance(obs, dict) else obs
        a = self.policy(torch.as_tensor(np.asarray(x, dtype=np.float32))[None])[0].numpy()
        return (self.low + (a + 1.0) * 0.5 * (self.high - self.low)).astype(np.float32)
