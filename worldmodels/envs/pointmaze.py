"""PointMaze (gymnasium-robotics ``PointMaze_UMaze-v3`` / ``PointMaze_Medium-v3``) seen from above.

The simulation is gymnasium-robotics' ``PointMazeEnv`` (same maze maps, point model, 0.01 s physics
step, velocity clipped to [-5, 5], action = force in ``[-1, 1]^2``) with D4RL maze2d's timing, which
DINO-WM's PointMaze uses: one env step holds the action for :data:`FRAME_SKIP` = 5 physics steps
(0.05 s; gymnasium-robotics' own step is a single 0.01 s physics step, so a 25-step planning horizon
would cover 0.25 s, about one maze cell at full speed, where DINO-WM's covers 1.25 s); this wrapper renders it from a top-down
camera at the observation size with the goal marker hidden, so images show only maze and ball.

State ``(x, y, vx, vy)`` (qpos + qvel), proprio the same. Success (DINO-WM): ball within 0.5 of the
goal's xy. The expert finds the shortest path over maze cells (BFS) and steers with a PD controller
toward the furthest point of that path (cell centres, then the goal) that the ball sees in a straight
line with :data:`CLEARANCE` from the walls.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

import mujoco
import numpy as np
from einops import rearrange
from gymnasium import spaces
from gymnasium_robotics.envs.maze.maps import MEDIUM_MAZE, U_MAZE
from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv as RoboticsPointMazeEnv

from worldmodels.envs.base import VisualGoalEnv
from worldmodels.envs.mujoco_render import TopDownRenderer

SUCCESS_DISTANCE = 0.5
#: physics steps (0.01 s each) per env step, as D4RL maze2d (DINO-WM's PointMaze)
FRAME_SKIP = 5
#: half-width of the uniform noise around a cell centre for start / goal / waypoint positions (m)
POSITION_NOISE = 0.25
#: PD gains of the expert: action = KP * (target - pos) - KD * vel
KP, KD = 10.0, 1.0
#: half-size of the square around the ball kept clear of walls in the expert's line-of-sight test (m)
CLEARANCE = 0.15


class PointMazeEnv(VisualGoalEnv):
    """A force-actuated ball in a maze, rendered top-down; see the module docstring."""

    maze_map: ClassVar[list[list[int]]] = U_MAZE
    planning_budget: ClassVar[int] = 150

    def __init__(self, img_size: int = 64, render_mode: str | None = None, fast_render: bool = True) -> None:
        """
        Args:
            img_size: side ``S`` of the pixel observation ``(S, S, 3)``, one of ``ALLOWED_IMG_SIZES``.
            render_mode: ``None`` or ``"rgb_array"``.
            fast_render: switch off shadows/reflections/skybox/haze/multisampling (see ``mujoco_render``).
        """
        super().__init__(img_size=img_size, proprio_dim=4, render_mode=render_mode)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_dim = 4
        self._maze_env = RoboticsPointMazeEnv(maze_map=self.maze_map, continuing_task=False)
        self._point = self._maze_env.point_env
        self._point.frame_skip = FRAME_SKIP  # its step: clip velocity, then hold the action FRAME_SKIP steps
        self.maze = self._maze_env.maze
        self.model, self.data = self._point.model, self._point.data
        self.model.site_rgba[self._maze_env.target_site_id, 3] = 0.0
        self._free_cells = [
            (i, j) for i, row in enumerate(self.maze.maze_map) for j, cell in enumerate(row) if cell != 1
        ]
        self._free_set = set(self._free_cells)
        self._free_grid = np.array(self.maze.maze_map) != 1
        extent = max(self.maze.map_length, self.maze.map_width) * self.maze.maze_size_scaling
        fovy = np.deg2rad(self.model.vis.global_.fovy)
        self._renderer = TopDownRenderer(
            self.model, self.img_size, (0.0, 0.0, 0.0), extent / (2 * np.tan(fovy / 2)), fast=fast_render
        )

    # ------------------------------------------------------------------ maze helpers
    def _cell(self, xy: np.ndarray) -> tuple[int, int]:
        i, j = self.maze.cell_xy_to_rowcol(xy)
        return int(np.clip(i, 0, self.maze.map_length - 1)), int(np.clip(j, 0, self.maze.map_width - 1))

    def _random_position(self, rng: np.random.Generator) -> np.ndarray:
        cell = self._free_cells[rng.integers(len(self._free_cells))]
        centre = self.maze.cell_rowcol_to_xy(np.array(cell))
        return centre + rng.uniform(-POSITION_NOISE, POSITION_NOISE, size=2) * self.maze.maze_size_scaling

    def shortest_path(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
        """Cells ``[start, ..., goal]`` of a shortest 4-connected path (BFS); ``[start]`` if unreachable."""
        parents: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell == goal:
                break
            i, j = cell
            for nxt in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                if nxt not in parents and nxt in self._free_set:
                    parents[nxt] = cell
                    queue.append(nxt)
        if goal not in parents:
            return [start]
        path = [goal]
        while (parent := parents[path[-1]]) is not None:
            path.append(parent)
        return path[::-1]

    def _segment_clear(self, start: np.ndarray, end: np.ndarray) -> bool:
        """Whether a ball moving straight from ``start`` to ``end`` (xy) keeps :data:`CLEARANCE` from walls."""
        scale = self.maze.maze_size_scaling
        n = int(np.ceil(np.linalg.norm(end - start) / (0.05 * scale))) + 1
        points = start + np.linspace(0.0, 1.0, n)[:, None] * (end - start)
        offsets = CLEARANCE * scale * np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]])
        corners = rearrange(points[:, None, :] + offsets[None], "n c xy -> (n c) xy")
        rows = np.floor((self.maze.y_map_center - corners[:, 1]) / scale).astype(int)
        cols = np.floor((corners[:, 0] + self.maze.x_map_center) / scale).astype(int)
        rows = np.clip(rows, 0, self.maze.map_length - 1)
        cols = np.clip(cols, 0, self.maze.map_width - 1)
        return bool(self._free_grid[rows, cols].all())

    # ------------------------------------------------------------------ contract
    def get_state(self) -> np.ndarray:
        """``(x, y, vx, vy)`` float64."""
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float64)

    def set_state(self, state: np.ndarray) -> None:
        state = self._check_state(state)
        self._point.set_state(state[:2], state[2:])

    def _proprio(self) -> np.ndarray:
        return self.get_state().astype(np.float32)

    def _reset_state(self) -> None:
        self._point.set_state(self._random_position(self.np_random), np.zeros(2))

    def _apply_action(self, action: np.ndarray) -> None:
        self._point.step(action)
        # mj_step leaves positions of the pre-step state in data.xpos: recompute so the image shows the state
        mujoco.mj_forward(self.model, self.data)

    def _render_current(self) -> np.ndarray:
        return self._renderer.render(self.data)

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Ball within 0.5 (xy) of the goal's ball position."""
        state, goal = self._check_state(state), self._check_state(goal_state, "goal_state")
        return bool(np.linalg.norm(state[:2] - goal[:2]) < SUCCESS_DISTANCE)

    def sample_start_goal(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Two random free positions (cell centre + noise) at rest, at least 1.0 (twice the success distance) apart."""
        rng = np.random.default_rng(seed)
        start = self._random_position(rng)
        goal = start
        while np.linalg.norm(goal - start) < 2 * SUCCESS_DISTANCE:
            goal = self._random_position(rng)
        return np.concatenate([start, np.zeros(2)]), np.concatenate([goal, np.zeros(2)])

    def expert_action(self, goal_state: np.ndarray) -> np.ndarray:
        """PD control toward the furthest point of the BFS path (cell centres, then the goal) in line of sight."""
        goal = self._check_state(goal_state, "goal_state")[:2]
        pos, vel = self.data.qpos[:2].copy(), self.data.qvel[:2].copy()
        path = self.shortest_path(self._cell(pos), self._cell(goal))
        waypoints = [self.maze.cell_rowcol_to_xy(np.array(cell)) for cell in path[1:-1]] + [goal]
        target = waypoints[0]
        for point in reversed(waypoints):
            if self._segment_clear(pos, point):
                target = point
                break
        return np.clip(KP * (target - pos) - KD * vel, -1.0, 1.0).astype(np.float32)

    def sample_waypoint(self, rng: np.random.Generator) -> np.ndarray:
        """A random free position at rest (every free cell is reachable)."""
        return np.concatenate([self._random_position(rng), np.zeros(2)])

    def close(self) -> None:
        self._renderer.close()
        super().close()


class PointMazeUMazeEnv(PointMazeEnv):
    """``PointMaze_UMaze-v3`` maze (5 x 5 cells)."""

    maze_map: ClassVar[list[list[int]]] = U_MAZE
    planning_budget: ClassVar[int] = 150


class PointMazeMediumEnv(PointMazeEnv):
    """``PointMaze_Medium-v3`` maze (8 x 8 cells)."""

    maze_map: ClassVar[list[list[int]]] = MEDIUM_MAZE
    planning_budget: ClassVar[int] = 250
