"""MuJoCo Reacher (gymnasium ``Reacher-v5`` model) with pixel observations from a top-down camera.

The model is gymnasium's ``reacher.xml`` (2-link planar arm, torque actions in ``[-1, 1]^2`` with gear
200, RK4 at 0.01 s, ``frame_skip`` 2 as in ``Reacher-v5``) with the target sphere enlarged from 0.009
to :data:`TARGET_RADIUS` = 0.03 m so that it is visible at 32-64 px. The camera looks straight down on
``[-0.25, 0.25]^2`` (x to the right, y up), which holds the arm's full reach (0.21 m).

State ``(q0, q1, target_x, target_y, dq0, dq1, 0, 0)`` (qpos + qvel); proprio ``(q0, q1, dq0, dq1)``
with ``q0`` wrapped to ``[-pi, pi)`` (the image is the same for ``q0`` and ``q0 + 2 pi``).

Goals are states whose image is the goal image: :meth:`ReacherEnv.sample_start_goal` rolls out 25 random
actions (one every 5 steps) from a random start, stops the arm, and places the target on the fingertip of
that goal pose in both start and goal states. Success: the fingertip within :data:`TARGET_RADIUS` of the
goal's fingertip (= the target). The expert is a joint-space PD controller toward the goal's joint angles.
"""

from __future__ import annotations

from importlib.resources import files
from typing import ClassVar

import mujoco
import numpy as np
from gymnasium import spaces

from worldmodels.envs.base import VisualGoalEnv
from worldmodels.envs.mujoco_render import TopDownRenderer

#: radius of the (enlarged) target sphere, also the success radius (m)
TARGET_RADIUS = 0.03
FRAME_SKIP = 2
LINK0, LINK1 = 0.1, 0.11
JOINT1_LIMIT = 3.0
#: PD gains of the expert: action = KP * (q_goal - q) - KD * dq
KP, KD = 2.0, 0.15
#: (steps, steps per random action) of the rollout that makes a goal
GOAL_ROLLOUT = (25, 5)
VIEW_EXTENT = 0.5


def fingertip(state: np.ndarray) -> np.ndarray:
    """Fingertip xy ``(2,)`` of a state (forward kinematics of the 2-link arm)."""
    q0, q1 = state[0], state[1]
    return np.array(
        [LINK0 * np.cos(q0) + LINK1 * np.cos(q0 + q1), LINK0 * np.sin(q0) + LINK1 * np.sin(q0 + q1)]
    )


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped to ``[-pi, pi)``."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


class ReacherEnv(VisualGoalEnv):
    """Two-link planar arm reaching a target, rendered top-down; see the module docstring."""

    planning_budget: ClassVar[int] = 50

    def __init__(self, img_size: int = 64, render_mode: str | None = None, fast_render: bool = True) -> None:
        """
        Args:
            img_size: side ``S`` of the pixel observation ``(S, S, 3)``, one of ``ALLOWED_IMG_SIZES``.
            render_mode: ``None`` or ``"rgb_array"``.
            fast_render: switch off shadows/reflections/skybox/haze/multisampling (see ``mujoco_render``).
        """
        super().__init__(img_size=img_size, proprio_dim=4, render_mode=render_mode)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_dim = 8
        xml = files("gymnasium.envs.mujoco") / "assets" / "reacher.xml"
        self.model = mujoco.MjModel.from_xml_path(str(xml))
        target_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "target")
        self.model.geom_size[target_geom, 0] = TARGET_RADIUS
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)
        fovy = np.deg2rad(self.model.vis.global_.fovy)
        self._renderer = TopDownRenderer(
            self.model, self.img_size, (0.0, 0.0, 0.0), VIEW_EXTENT / (2 * np.tan(fovy / 2)), fast=fast_render
        )

    # ------------------------------------------------------------------ simulation helpers
    @staticmethod
    def _write(data: mujoco.MjData, model: mujoco.MjModel, state: np.ndarray) -> None:
        data.qpos[:] = state[:4]
        data.qvel[:] = state[4:]
        data.ctrl[:] = 0.0
        mujoco.mj_forward(model, data)

    @staticmethod
    def _read(data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([data.qpos, data.qvel]).astype(np.float64)

    def _simulate(self, data: mujoco.MjData, action: np.ndarray) -> None:
        data.ctrl[:] = action
        mujoco.mj_step(self.model, data, nstep=FRAME_SKIP)
        data.qvel[2:] = 0.0
        # mj_step leaves positions of the pre-step state in data.xpos: recompute so the image shows the state
        mujoco.mj_forward(self.model, data)

    def _random_arm(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-0.9, 0.9) * JOINT1_LIMIT])

    # ------------------------------------------------------------------ contract
    def get_state(self) -> np.ndarray:
        """``(q0, q1, target_x, target_y, dq0, dq1, 0, 0)`` float64."""
        return self._read(self.data)

    def set_state(self, state: np.ndarray) -> None:
        self._write(self.data, self.model, self._check_state(state))

    def _proprio(self) -> np.ndarray:
        q, dq = self.data.qpos[:2], self.data.qvel[:2]
        return np.array([wrap_angle(q[0]), q[1], dq[0], dq[1]], np.float32)

    def _reset_state(self) -> None:
        rng = self.np_random
        radius, angle = 0.2 * np.sqrt(rng.uniform()), rng.uniform(-np.pi, np.pi)
        target = radius * np.array([np.cos(angle), np.sin(angle)])
        self._write(self.data, self.model, np.concatenate([self._random_arm(rng), target, np.zeros(4)]))

    def _apply_action(self, action: np.ndarray) -> None:
        self._simulate(self.data, action)

    def _render_current(self) -> np.ndarray:
        return self._renderer.render(self.data)

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Fingertip within :data:`TARGET_RADIUS` of the goal's fingertip."""
        state, goal = self._check_state(state), self._check_state(goal_state, "goal_state")
        return bool(np.linalg.norm(fingertip(state) - fingertip(goal)) < TARGET_RADIUS)

    def sample_start_goal(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Random start; goal after a 25-step random rollout; target on the goal fingertip in both."""
        rng = np.random.default_rng(seed)
        steps, hold = GOAL_ROLLOUT
        while True:
            start = np.concatenate([self._random_arm(rng), np.zeros(6)])
            self._write(self._scratch, self.model, start)
            for t in range(steps):
                if t % hold == 0:
                    action = rng.uniform(-1.0, 1.0, size=2)
                self._simulate(self._scratch, action)
            goal = self._read(self._scratch)
            goal[4:] = 0.0
            if np.linalg.norm(fingertip(start) - fingertip(goal)) > 2 * TARGET_RADIUS:
                break
        start[2:4] = goal[2:4] = fingertip(goal)
        return start, goal

    def expert_action(self, goal_state: np.ndarray) -> np.ndarray:
        """Joint-space PD toward the goal's joint angles (joint 0 error wrapped to ``[-pi, pi)``)."""
        goal = self._check_state(goal_state, "goal_state")
        q, dq = self.data.qpos[:2], self.data.qvel[:2]
        error = np.array([wrap_angle(goal[0] - q[0]), goal[1] - q[1]])
        return np.clip(KP * error - KD * dq, -1.0, 1.0).astype(np.float32)

    def sample_waypoint(self, rng: np.random.Generator) -> np.ndarray:
        """A random arm pose at rest, target unchanged."""
        return np.concatenate([self._random_arm(rng), self.data.qpos[2:4], np.zeros(4)])

    def close(self) -> None:
        self._renderer.close()
        super().close()
