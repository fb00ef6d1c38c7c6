"""Analytic systems for the planner tests: exact dynamics, so a planner bug cannot hide behind a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class PointState:
    """``visual (B, T, 1, D)``: positions as a single 'patch'; ``proprio``: the same positions ``(B, T, D)``."""

    visual: Tensor
    proprio: Tensor | None = None


class PointModel:
    """Point dynamics ``x_{t+1} = x_t + a_t`` in ``D`` dimensions, actions in ``[-1, 1]^D``: a world model
    (``worldmodels.api.WorldModel``) whose rollout is exact and differentiable."""

    def __init__(self, dim: int = 2, with_proprio: bool = False, device: str | torch.device = "cpu"):
        self.action_dim = dim
        self.with_proprio = with_proprio
        self.device = torch.device(device)
        self.rollout_calls: list[int] = []

    def encode(self, obs: dict[str, Tensor]) -> PointState:
        x = obs["proprio"].float()
        return PointState(x[:, :, None], x if self.with_proprio else None)

    def rollout(self, state: PointState, actions: Tensor) -> PointState:
        self.rollout_calls.append(actions.shape[0])
        x = state.visual[:, -1, 0][:, None] + torch.cumsum(actions, 1)  # (B, H, D)
        return PointState(x[:, :, None], x if self.with_proprio else None)

    def action_bounds(self) -> tuple[Tensor, Tensor]:
        ones = torch.ones(self.action_dim, device=self.device)
        return -ones, ones

    def to_env_actions(self, actions: Tensor) -> Tensor:
        return actions


def point_state(
    x: list[float], dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> PointState:
    """A batch-1, one-frame :class:`PointState` at position ``x``."""
    t = torch.tensor(x, dtype=dtype, device=device)[None, None]
    return PointState(t[:, :, None], t)


def tiny_wall_latent_model(seed: int = 0):
    """A random Wall-shaped ``LatentWorldModel`` (64 px, 3 history frames, frameskip 5, eval mode), small
    enough for CI: the harness and device tests' real model."""
    from worldmodels.encoders.conv_ae import ConvAEEncoder
    from worldmodels.models.latent_world_model import LatentWorldModel

    torch.manual_seed(seed)
    enc = ConvAEEncoder(embed_dim=8, width=8, num_down=3)
    predictor = {"num_patches": 64, "visual_dim": 8, "proprio_dim": 2, "action_dim": 10, "max_frames": 8,
                 "width": 32, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 32}  # fmt: skip
    stats = {"proprio_mean": torch.full((2,), 32.0), "proprio_std": torch.full((2,), 16.0),
             "action_mean": torch.zeros(10), "action_std": torch.full((10,), 0.5)}  # fmt: skip
    return LatentWorldModel(enc, {"name": "conv_ae", "config": enc.config}, predictor, stats, frameskip=5,
                            num_hist=3, img_size=64, env_id="worldmodels/Wall-v0").eval()  # fmt: skip
