"""PointMaze specifics: hidden goal marker, BFS, expert reachability within the planning budget."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from worldmodels.envs import ScriptedPolicy
from worldmodels.envs.pointmaze import FRAME_SKIP, PointMazeMediumEnv, PointMazeUMazeEnv


@pytest.fixture(scope="module")
def umaze() -> PointMazeUMazeEnv:
    env = PointMazeUMazeEnv(img_size=32)
    yield env
    env.close()


def test_expert_reaches_goals_within_budget(umaze: PointMazeUMazeEnv) -> None:
    reached = 0
    for seed in range(10):
        start, goal = umaze.sample_start_goal(seed)
        umaze.reset(options={"state": start, "goal_state": goal})
        policy = ScriptedPolicy(umaze, "expert")
        policy.reset(goal_state=goal)
        for _ in range(umaze.planning_budget):
            *_, terminated, _, _ = umaze.step(policy())
            if terminated:
                reached += 1
                break
    assert reached >= 8


def test_shortest_path_goes_around_the_wall(umaze: PointMazeUMazeEnv) -> None:
    path = umaze.shortest_path((1, 1), (3, 1))
    assert path == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]
    assert umaze.shortest_path((1, 1), (0, 0)) == [(1, 1)]


def test_goal_marker_hidden_and_ball_visible(umaze: PointMazeUMazeEnv) -> None:
    start, goal = umaze.sample_start_goal(0)
    umaze.reset(options={"state": start, "goal_state": goal})
    image = umaze.render().astype(int)
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
    assert not red.any()
    other = umaze.render_state(goal).astype(int)
    assert np.abs(image - other).sum() > 0, "the ball position shows in the image"


def test_state_is_position_and_velocity(umaze: PointMazeUMazeEnv) -> None:
    obs, _ = umaze.reset(seed=0)
    np.testing.assert_array_equal(obs["proprio"], umaze.get_state().astype(np.float32))
    for _ in range(5):
        obs, *_ = umaze.step(np.array([1.0, 0.0], np.float32))
    assert obs["proprio"][2] > 0, "pushing +x accelerates the ball in +x"


def test_one_env_step_holds_the_action_for_d4rl_maze2d_timing(umaze: PointMazeUMazeEnv) -> None:
    """One env step = FRAME_SKIP (5) physics steps of 0.01 s, as D4RL maze2d / DINO-WM's PointMaze: the
    same as five gymnasium-robotics steps with the action held (velocity clipped once per env step)."""
    start, _ = umaze.sample_start_goal(1)
    umaze.reset(options={"state": start})
    t0 = umaze.data.time
    umaze.step(np.array([0.7, -0.4], np.float32))
    assert umaze.data.time - t0 == pytest.approx(FRAME_SKIP * 0.01)
    after_env = umaze.get_state()
    umaze.set_state(start)
    point = umaze._point
    point.frame_skip = 1
    try:
        for _ in range(FRAME_SKIP):
            point.do_simulation(np.array([0.7, -0.4]), 1)
    finally:
        point.frame_skip = FRAME_SKIP
    np.testing.assert_allclose(umaze.get_state(), after_env, atol=1e-9)


def test_medium_maze_is_larger() -> None:
    env = PointMazeMediumEnv(img_size=32)
    assert len(env.maze.maze_map) == 8 and env.planning_budget > PointMazeUMazeEnv.planning_budget
    env.close()


def test_optimizer_after_egl_rendering_does_not_crash() -> None:
    """Regression: triton's LLVM loaded after Mesa's EGL segfaulted at the first torch.optim optimizer
    (the GD planner on PointMaze); run in a fresh process so a crash fails this test, not the session."""
    code = (
        "import torch\n"
        "from worldmodels.envs.pointmaze import PointMazeUMazeEnv\n"
        "env = PointMazeUMazeEnv(img_size=32)\n"
        "env.reset(seed=0)\n"
        "torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.1)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
