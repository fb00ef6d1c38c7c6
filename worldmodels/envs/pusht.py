"""Push-T (``gym_pusht``, the optional extra ``[pusht]``) with a relative action, drawn with numpy.

The physics is ``gym_pusht``'s pymunk scene (512 x 512 arena, kinematic disk agent of radius 15 driven by
a PD controller toward a target point, k_p 100, k_v 20, 10 sub-steps of 0.01 s per env step, T block of
scale 30). What changes:

* Action: relative, ``[-1, 1]^2``: the PD target is ``agent_position + ACTION_SCALE * action``
  (:data:`ACTION_SCALE` = 50 units), so zero means "brake here" and planning in normalised space is easy.
* Images are drawn with numpy at the observation size (white background, grey border, slate-grey T,
  royal-blue agent); the goal T region is not drawn (goals are given as images).
  Coordinates: pixel ``(i, j)`` of an ``S x S`` image shows arena point ``x = (j + 0.5) * 512 / S``,
  ``y = (i + 0.5) * 512 / S`` (pymunk coordinates, y downward as in ``gym_pusht``'s pygame screen).
* State ``(agent_x, agent_y, agent_vx, agent_vy, block_x, block_y, block_angle, block_vx, block_vy,
  block_angular_velocity)``; ``set_state`` rebuilds the pymunk space, so a state fully determines the
  future. Proprio ``(agent_x, agent_y, agent_vx, agent_vy)``.
* Success (DINO-WM's ``eval_state``): ``||(agent, block) - (agent, block)_goal|| < 20`` over the four
  position coordinates and the block angle within ``pi / 9`` (wrapped).

Goals (:meth:`PushTEnv.sample_start_goal`): the agent starts 60-110 units from the block's centre of mass
and pushes toward it for 25 steps (action 0.3 toward the centre + noise of std 0.1); the goal is the
resulting state at rest. The expert only
moves the agent toward the goal's agent position (it does not plan the push).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from worldmodels.envs.base import VisualGoalEnv

ARENA = 512.0
ACTION_SCALE = 50.0
AGENT_RADIUS = 15.0
#: T block in body coordinates: (x_min, x_max, y_min, y_max) of its two rectangles (gym_pusht, scale 30)
T_RECTANGLES = ((-60.0, 60.0, 0.0, 30.0), (-15.0, 15.0, 30.0, 120.0))
POSITION_TOLERANCE = 20.0
ANGLE_TOLERANCE = np.pi / 9
#: (steps, push speed, noise std), in action units, of the scripted push that makes a goal
GOAL_ROLLOUT = (25, 0.3, 0.1)
BACKGROUND = np.array([255, 255, 255], np.uint8)
BORDER_COLOR = np.array([211, 211, 211], np.uint8)
BLOCK_COLOR = np.array([119, 136, 153], np.uint8)
AGENT_COLOR = np.array([65, 105, 225], np.uint8)


def _import_pusht() -> Any:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from gym_pusht.envs.pusht import PushTEnv as PymunkPushTEnv
    except ImportError as err:
        raise ImportError("worldmodels/PushT-v0 needs gym-pusht: pip install worldmodels[pusht]") from err
    return PymunkPushTEnv


def wrapped_angle_difference(a: float, b: float) -> float:
    """``|a - b|`` wrapped to ``[0, pi]``."""
    diff = abs(a - b) % (2 * np.pi)
    return float(min(diff, 2 * np.pi - diff))


class PushTEnv(VisualGoalEnv):
    """Push a T-shaped block with a disk agent; see the module docstring."""

    planning_budget: ClassVar[int] = 200

    def __init__(self, img_size: int = 64, render_mode: str | None = None) -> None:
        """
        Args:
            img_size: side ``S`` of the pixel observation ``(S, S, 3)``, one of ``ALLOWED_IMG_SIZES``.
            render_mode: ``None`` or ``"rgb_array"``.
        """
        pymunk_env_cls = _import_pusht()
        super().__init__(img_size=img_size, proprio_dim=4, render_mode=render_mode)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_dim = 10
        self._sim = pymunk_env_cls(obs_type="state", render_mode="rgb_array")
        self._sim._setup()
        centres = (np.arange(self.img_size) + 0.5) * ARENA / self.img_size
        self._grid = np.stack(np.meshgrid(centres, centres, indexing="xy"), axis=-1)  # (S, S, 2) as (x, y)
        half = max(2.0, ARENA / self.img_size / 2)
        near_wall = (np.abs(self._grid - 5.0) < half) | (np.abs(self._grid - 506.0) < half)
        self._background = np.empty((self.img_size, self.img_size, 3), np.uint8)
        self._background[:] = BACKGROUND
        self._background[near_wall.any(axis=-1)] = BORDER_COLOR

    # ------------------------------------------------------------------ contract
    def get_state(self) -> np.ndarray:
        """``(agent_x, agent_y, agent_vx, agent_vy, block_x, block_y, angle, block_vx, block_vy, omega)``."""
        agent, block = self._sim.agent, self._sim.block
        return np.array(
            [
                *agent.position,
                *agent.velocity,
                *block.position,
                block.angle,
                *block.velocity,
                block.angular_velocity,
            ],
            np.float64,
        )

    def set_state(self, state: np.ndarray) -> None:
        state = self._check_state(state)
        self._sim._setup()
        agent, block = self._sim.agent, self._sim.block
        agent.position = (state[0], state[1])
        agent.velocity = (state[2], state[3])
        block.angle = state[6]  # before the position: pymunk rotates about the centre of gravity
        block.position = (state[4], state[5])
        block.velocity = (state[7], state[8])
        block.angular_velocity = state[9]
        self._sim.space.reindex_shapes_for_body(block)
        self._sim.space.reindex_shapes_for_body(agent)

    def _proprio(self) -> np.ndarray:
        return self.get_state()[:4].astype(np.float32)

    def _random_state(self, rng: np.random.Generator) -> np.ndarray:
        """``gym_pusht``'s reset distribution: agent in [50, 450]^2, block in [100, 400]^2, any angle, at rest."""
        agent, block = rng.uniform(50, 450, size=2), rng.uniform(100, 400, size=2)
        return np.array([*agent, 0.0, 0.0, *block, rng.uniform(-np.pi, np.pi), 0.0, 0.0, 0.0])

    def _reset_state(self) -> None:
        self.set_state(self._random_state(self.np_random))

    def _apply_action(self, action: np.ndarray) -> None:
        sim = self._sim
        target = np.asarray(sim.agent.position) + ACTION_SCALE * action.astype(np.float64)
        for _ in range(round(1 / (sim.dt * sim.control_hz))):
            position, velocity = np.asarray(sim.agent.position), np.asarray(sim.agent.velocity)
            acceleration = sim.k_p * (target - position) - sim.k_v * velocity
            sim.agent.velocity = tuple(velocity + acceleration * sim.dt)
            sim.space.step(sim.dt)

    def _draw(self, state: np.ndarray) -> np.ndarray:
        img = self._background.copy()
        cos, sin = np.cos(state[6]), np.sin(state[6])
        rel = self._grid - state[4:6]
        local_x = cos * rel[..., 0] + sin * rel[..., 1]
        local_y = -sin * rel[..., 0] + cos * rel[..., 1]
        for x0, x1, y0, y1 in T_RECTANGLES:
            img[(local_x >= x0) & (local_x <= x1) & (local_y >= y0) & (local_y <= y1)] = BLOCK_COLOR
        agent = np.sum((self._grid - state[:2]) ** 2, axis=-1) <= AGENT_RADIUS**2
        img[agent] = AGENT_COLOR
        return img

    def _render_current(self) -> np.ndarray:
        return self._draw(self.get_state())

    def obs_from_state(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Observation of ``state`` drawn directly from it (the simulation is not touched)."""
        state = self._check_state(state)
        return {"pixels": self._draw(state), "proprio": state[:4].astype(np.float32)}

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """DINO-WM: ``||(agent, block) - goal|| < 20`` and block angle within ``pi / 9``."""
        state, goal = self._check_state(state), self._check_state(goal_state, "goal_state")
        positions = [0, 1, 4, 5]
        close = np.linalg.norm(state[positions] - goal[positions]) < POSITION_TOLERANCE
        return bool(close and wrapped_angle_difference(state[6], goal[6]) < ANGLE_TOLERANCE)

    def _block_centre(self) -> np.ndarray:
        return np.asarray(self._sim.block.local_to_world(self._sim.block.center_of_gravity))

    def sample_start_goal(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Agent 60-110 units from the block; goal after a noisy 25-step push toward the block, at rest."""
        rng = np.random.default_rng(seed)
        saved = self.get_state()
        steps, speed, noise = GOAL_ROLLOUT
        try:
            while True:
                start = self._random_state(rng)
                self.set_state(start)
                direction = rng.uniform(-np.pi, np.pi)
                offset = rng.uniform(60, 110) * np.array([np.cos(direction), np.sin(direction)])
                start[:2] = np.clip(self._block_centre() + offset, 30, ARENA - 30)
                self.set_state(start)
                for _ in range(steps):
                    towards = self._block_centre() - np.asarray(self._sim.agent.position)
                    push = speed * towards / max(np.linalg.norm(towards), 1e-6) + rng.normal(0, noise, 2)
                    self._apply_action(np.clip(push, -1, 1).astype(np.float32))
                goal = self.get_state()
                goal[[2, 3, 7, 8, 9]] = 0.0
                if not self.is_success(start, goal):
                    return start, goal
        finally:
            self.set_state(saved)

    def expert_action(self, goal_state: np.ndarray) -> np.ndarray:
        """Move the agent toward the goal's agent position (no push planning)."""
        goal = self._check_state(goal_state, "goal_state")
        position = np.asarray(self._sim.agent.position)
        return np.clip((goal[:2] - position) / ACTION_SCALE, -1.0, 1.0).astype(np.float32)

    def sample_waypoint(self, rng: np.random.Generator) -> np.ndarray:
        """Half the time a uniform agent position, half the time one within 80 units of the block (pushes it)."""
        state = self.get_state()
        if rng.uniform() < 0.5:
            state[:2] = rng.uniform(30, ARENA - 30, size=2)
        else:
            state[:2] = np.clip(self._block_centre() + rng.uniform(-80, 80, size=2), 30, ARENA - 30)
        state[[2, 3, 7, 8, 9]] = 0.0
        return state
