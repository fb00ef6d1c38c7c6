"""Reacher specifics: enlarged target, goals as images, expert, proprio wrapping."""

from __future__ import annotations

import mujoco
import numpy as np

from worldmodels.envs.reacher import TARGET_RADIUS, ReacherEnv, fingertip, wrap_angle


def test_target_enlarged_and_placed_on_goal_fingertip() -> None:
    env = ReacherEnv(img_size=32)
    geom = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, "target")
    assert env.model.geom_size[geom, 0] == TARGET_RADIUS
    start, goal = env.sample_start_goal(3)
    np.testing.assert_allclose(start[2:4], fingertip(goal))
    np.testing.assert_allclose(goal[2:4], fingertip(goal))
    env.set_state(goal)
    np.testing.assert_allclose(env.data.body("fingertip").xpos[:2], fingertip(goal), atol=1e-9)
    env.close()


def test_expert_reaches_goals() -> None:
    env = ReacherEnv(img_size=32)
    reached = 0
    for seed in range(10):
        start, goal = env.sample_start_goal(seed)
        env.reset(options={"state": start, "goal_state": goal})
        for _ in range(env.planning_budget):
            *_, terminated, _, _ = env.step(env.expert_action(goal))
            if terminated:
                reached += 1
                break
    assert reached >= 9
    env.close()


def test_proprio_wraps_joint_zero() -> None:
    env = ReacherEnv(img_size=32)
    state = np.array([2 * np.pi + 0.5, 0.3, 0.1, 0.1, 0.2, -0.2, 0.0, 0.0])
    obs = env.obs_from_state(state)
    np.testing.assert_allclose(obs["proprio"], [0.5, 0.3, 0.2, -0.2], rtol=1e-6)
    same = env.obs_from_state(np.concatenate([[0.5], state[1:]]))
    np.testing.assert_array_equal(obs["pixels"], same["pixels"])
    assert wrap_angle(np.pi) == -np.pi
    env.close()
