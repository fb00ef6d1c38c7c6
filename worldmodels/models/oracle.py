"""Exact-dynamics ("oracle") world models: planning with them isolates the planner and objective from
model error. ``planners eval --model oracle --env ID`` plans with :class:`WallOracleModel` (Wall-v0) or
:class:`PointMazeOracleModel` (the PointMaze envs), see :func:`oracle_model`.

Neither re-implements its env: :class:`WallOracleModel` calls the env's own vectorised step
(:func:`worldmodels.envs.wall.wall_step`) on the batch of candidates, :class:`PointMazeOracleModel` steps
the env's MuJoCo point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from worldmodels.envs.wall import AGENT_RADIUS, FIXED_LAYOUT, MAX_STEP, wall_step

#: env ids with an oracle model, for ``planners eval --model oracle``
ORACLE_ENVS = ("worldmodels/Wall-v0", "worldmodels/PointMazeUMaze-v0", "worldmodels/PointMazeMedium-v0")


@dataclass
class PositionState:
    """``visual (B, T, 1, 2)`` and ``proprio (B, T, 2)``: the agent position / 64."""

    visual: Tensor
    proprio: Tensor


class WallOracleModel:
    """A perfect world model of ``worldmodels/Wall-v0`` (fixed layout): the state is the agent position
    (``visual (B, T, 1, 2)`` and ``proprio (B, T, 2)``, both position / 64) and the rollout applies the env's
    own collision dynamics, vectorised over candidates, ``frameskip`` env steps per model step. ``decode``
    draws the agent, so videos get an imagined panel.

    Planning with it measures the planner and objective alone (``planners eval --model oracle``): the best
    any learned world model can do with the same settings; the tests use it so a planner bug cannot hide
    behind a weak model."""

    num_hist = 1
    img_size = 64

    def __init__(self, frameskip: int = 5, max_step: float = MAX_STEP, slide: bool = True):
        """``max_step`` and ``slide`` must match the env's (:class:`worldmodels.envs.wall.WallEnv`)."""
        self.frameskip, self.max_step, self.slide = frameskip, float(max_step), bool(slide)
        self.action_dim = 2 * frameskip

    def encode(self, obs: dict[str, Tensor]) -> PositionState:
        x = obs["proprio"].float() / 64.0
        return PositionState(x[:, :, None], x)

    def env_step(self, pos: Tensor, action: Tensor) -> Tensor:
        """One env step for a batch: agent centres ``pos (B, 2)`` and env actions ``action (B, 2)`` (clamped
        to ``[-1, 1]``) -> ``(B, 2)``, by the env's own :func:`~worldmodels.envs.wall.wall_step`."""
        return wall_step(pos, action, FIXED_LAYOUT, max_step=self.max_step, slide=self.slide)

    def rollout(self, state: PositionState, actions: Tensor) -> PositionState:
        b, horizon, _ = actions.shape
        pos = (state.visual[:, -1, 0] * 64.0).expand(b, -1)
        out = []
        for h in range(horizon):
            for a in actions[:, h].reshape(b, self.frameskip, 2).unbind(1):
                pos = self.env_step(pos, a)
            out.append(pos / 64.0)
        x = torch.stack(out, 1)
        return PositionState(x[:, :, None], x)

    def decode(self, state: PositionState) -> Tensor:
        """``(B, T, 3, 64, 64)`` in [0, 1]: a red disk at the predicted position."""
        pos = state.visual[:, :, 0] * 64.0  # (B, T, 2)
        grid = (torch.arange(64) + 0.5).float()
        dx = grid[None, None, None, :] - pos[..., 0, None, None]
        dy = grid[None, None, :, None] - pos[..., 1, None, None]
        disk = ((dx**2 + dy**2) <= AGENT_RADIUS**2).float()
        return torch.stack([disk, 0.2 * disk, 0.2 * disk], 2)

    def action_bounds(self) -> tuple[Tensor, Tensor]:
        return -torch.ones(self.action_dim), torch.ones(self.action_dim)

    def to_env_actions(self, actions: Tensor) -> Tensor:
        return actions.reshape(-1, 2)


class PointMazeOracleModel:
    """A perfect world model of a PointMaze env: every candidate is simulated by the env's own MuJoCo
    point (``set_state``, then ``frameskip`` env steps of its ``step`` per model step), so the rollout is the
    real dynamics, velocity clipping included. The state is ``visual (B, T, 1, 2)``: the ball's xy, and
    ``proprio (B, T, 4)``: ``(x, y, vx, vy)`` (the goal is at rest, so the proprio term also asks to stop).

    Candidates run one after another in Python (MPC+CEM with 100 samples x 5 iterations, horizon 5: about
    0.4 s per plan on a 2-core CPU); ``decode`` renders the predicted states with the env's camera for the
    videos.
    """

    num_hist = 1

    def __init__(self, env_id: str = "worldmodels/PointMazeUMaze-v0", frameskip: int = 5, img_size: int = 64):
        self.env_id, self.frameskip, self.img_size = env_id, frameskip, img_size
        self.action_dim = 2 * frameskip
        self._env = None

    def __getstate__(self) -> dict:  # the MuJoCo env is rebuilt in each worker process
        return {**self.__dict__, "_env": None}

    @property
    def env(self):
        if self._env is None:
            import gymnasium as gym

            import worldmodels.envs  # noqa: F401  (registers the ids)

            self._env = gym.make(self.env_id, img_size=self.img_size).unwrapped
            self._env.reset(seed=0)
        return self._env

    def encode(self, obs: dict[str, Tensor]) -> PositionState:
        x = obs["proprio"].float()
        return PositionState(x[:, :, None, :2], x)

    def rollout(self, state: PositionState, actions: Tensor) -> PositionState:
        b, horizon, _ = actions.shape
        start = state.proprio[:, -1].expand(b, -1).double().cpu().numpy()
        env_actions = (
            actions.detach().double().cpu().reshape(b, horizon, self.frameskip, 2).clamp(-1, 1).numpy()
        )
        point = self.env._point
        out = np.empty((b, horizon, 4))
        for i in range(b):
            point.set_state(start[i, :2], start[i, 2:])
            for h in range(horizon):
                for a in env_actions[i, h]:
                    point.step(a)
                out[i, h, :2], out[i, h, 2:] = point.data.qpos, point.data.qvel
        x = torch.as_tensor(out, dtype=torch.float32, device=actions.device)
        return PositionState(x[:, :, None, :2], x)

    def decode(self, state: PositionState) -> Tensor:
        """``(B, T, 3, S, S)`` in [0, 1]: the env's own rendering of each predicted state."""
        states = state.proprio.double().cpu().numpy()
        frames = np.stack([[self.env.render_state(s) for s in row] for row in states])  # (B, T, S, S, 3)
        return torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255.0

    def action_bounds(self) -> tuple[Tensor, Tensor]:
        return -torch.ones(self.action_dim), torch.ones(self.action_dim)

    def to_env_actions(self, actions: Tensor) -> Tensor:
        return actions.reshape(-1, 2)


def oracle_model(env_id: str) -> WallOracleModel | PointMazeOracleModel:
    """The exact-dynamics model of ``env_id`` (one of :data:`ORACLE_ENVS`)."""
    if env_id == "worldmodels/Wall-v0":
        return WallOracleModel()
    if env_id in ORACLE_ENVS:
        return PointMazeOracleModel(env_id)
    raise ValueError(f"--model oracle: no oracle model for --env {env_id} (available: {ORACLE_ENVS})")
