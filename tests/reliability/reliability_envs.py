"""A user's own environment, outside the package: registered on import as ``reliability/Dot-v0``, used
through Gymnasium's ``module:id`` form (``reliability_envs:reliability/Dot-v0``)."""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from worldmodels.envs import VisualGoalEnv


class DotEnv(VisualGoalEnv):
    """A dot in a 64 x 64 arena; state and proprio are its position; 12 env steps to plan."""

    planning_budget: ClassVar[int] = 12

    def __init__(self, img_size: int = 64, render_mode: str | None = None) -> None:
        super().__init__(
            img_size=img_size, proprio_dim=2, render_mode=render_mode, proprio_bounds=(0.0, 64.0)
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_dim = 2
        self.pos = np.full(2, 32.0)

    def get_state(self) -> np.ndarray:
        return self.pos.copy()

    def set_state(self, state: np.ndarray) -> None:
        self.pos = np.asarray(state, dtype=np.float64).copy()

    def _proprio(self) -> np.ndarray:
        return self.pos.astype(np.float32)

    def _render_current(self) -> np.ndarray:
        s = self.img_size
        yy, xx = np.mgrid[0:s, 0:s] * (64.0 / s)
        img = np.zeros((s, s, 3), np.uint8)
        img[(xx - self.pos[0]) ** 2 + (yy - self.pos[1]) ** 2 < 9.0] = (255, 60, 60)
        return img

    def _reset_state(self) -> None:
        self.pos = self.np_random.uniform(4.0, 60.0, size=2)

    def _apply_action(self, action: np.ndarray) -> None:
        self.pos = np.clip(self.pos + 2.5 * action, 3.0, 61.0)

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        return bool(np.linalg.norm(state - goal_state) < 4.0)

    def sample_start_goal(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        start = rng.uniform(20.0, 44.0, size=2)
        return start, np.clip(start + rng.uniform(-8.0, 8.0, size=2), 4.0, 60.0)

    def expert_action(self, goal_state: np.ndarray) -> np.ndarray:
        return np.clip((goal_state - self.pos) / 2.5, -1.0, 1.0).astype(np.float32)

    def sample_waypoint(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(4.0, 60.0, size=2)


class NoBudgetDotEnv(DotEnv):
    """The same env without the contract's ``planning_budget``."""

    planning_budget = None  # type: ignore[assignment]


gym.register("reliability/Dot-v0", entry_point="reliability_envs:DotEnv", max_episode_steps=50)
gym.register(
    "reliability/NoBudgetDot-v0", entry_point="reliability_envs:NoBudgetDotEnv", max_episode_steps=50
)
