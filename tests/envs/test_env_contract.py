"""The contract every visual env offers (see ``worldmodels/envs/__init__.py``), checked on each id."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from envs_testing import make_env
from gymnasium.utils.env_checker import check_env

from worldmodels.envs import ALLOWED_IMG_SIZES, ENV_IDS


def test_env_ids_registered() -> None:
    assert len(ENV_IDS) == 6
    for env_id in ENV_IDS:
        assert env_id in gym.registry


def test_check_env(env_id: str) -> None:
    env = make_env(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_observation_layout_and_render(env_id: str) -> None:
    env = make_env(env_id, img_size=48)
    obs, _ = env.reset(seed=3)
    assert obs["pixels"].shape == (48, 48, 3) and obs["pixels"].dtype == np.uint8
    assert obs["proprio"].dtype == np.float32
    assert obs["proprio"].shape == env.observation_space["proprio"].shape
    assert isinstance(env.action_space, gym.spaces.Box) and env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)
    np.testing.assert_array_equal(env.render(), obs["pixels"])
    assert obs["pixels"].std() > 0, "the image must not be blank"
    env.close()


def test_reset_seed_deterministic(env_id: str) -> None:
    env = make_env(env_id)
    actions = [env.action_space.sample() for _ in range(5)]
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=7)
        frames = [obs["pixels"]]
        for a in actions:
            obs, *_ = env.step(a)
            frames.append(obs["pixels"])
        runs.append((np.stack(frames), env.unwrapped.get_state()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    env.reset(seed=8)
    other = env.unwrapped.get_state()
    assert not np.array_equal(other, runs[0][1])
    env.close()


def test_state_round_trip(env_id: str) -> None:
    env = make_env(env_id)
    base = env.unwrapped
    env.reset(seed=1)
    for _ in range(3):
        env.step(env.action_space.sample())
    state = base.get_state()
    assert state.dtype == np.float64 and state.ndim == 1 and state.shape == (base.state_dim,)
    image = env.render()
    other_start, _ = base.sample_start_goal(5)
    other_image = base.render_state(other_start)
    # render_state does not disturb the current state
    np.testing.assert_array_equal(base.get_state(), state)
    np.testing.assert_array_equal(env.render(), image)
    base.set_state(other_start)
    np.testing.assert_array_equal(env.render(), other_image)
    base.set_state(state)
    np.testing.assert_array_equal(env.render(), image)
    obs, _ = env.reset(options={"state": state})
    np.testing.assert_array_equal(obs["pixels"], image)
    np.testing.assert_allclose(base.get_state(), state)
    from_state = base.obs_from_state(state)
    np.testing.assert_array_equal(from_state["pixels"], image)
    np.testing.assert_array_equal(from_state["proprio"], obs["proprio"])
    env.close()


def test_success_criterion(env_id: str) -> None:
    env = make_env(env_id)
    base = env.unwrapped
    start, goal = base.sample_start_goal(0)
    assert base.is_success(goal, goal)
    assert not base.is_success(start, goal)
    env.close()


def test_goal_option_gives_reward_and_termination(env_id: str) -> None:
    env = make_env(env_id)
    _, goal = env.unwrapped.sample_start_goal(2)
    _, info = env.reset(options={"state": goal, "goal_state": goal})
    assert info["is_success"]
    start, _ = env.unwrapped.sample_start_goal(2)
    _, info = env.reset(options={"state": start, "goal_state": goal})
    assert not info["is_success"]
    _, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert reward == float(info["is_success"]) and terminated == info["is_success"] and not truncated
    env.close()


def test_expert_and_waypoint(env_id: str) -> None:
    env = make_env(env_id)
    base = env.unwrapped
    env.reset(seed=0)
    _, goal = base.sample_start_goal(0)
    action = base.expert_action(goal)
    assert action.dtype == np.float32 and env.action_space.contains(action)
    rng = np.random.default_rng(0)
    waypoint = base.sample_waypoint(rng)
    assert waypoint.shape == (base.state_dim,)
    np.testing.assert_array_equal(waypoint, base.sample_waypoint(np.random.default_rng(0)))
    assert base.planning_budget > 0
    env.close()


def test_bad_img_size(env_id: str) -> None:
    make_env(env_id).close()  # skips PushT when gym-pusht is missing
    for bad in (33, 0, "64"):
        with pytest.raises(ValueError, match="img_size"):
            gym.make(env_id, img_size=bad)
    assert 64 in ALLOWED_IMG_SIZES


def test_bad_action(env_id: str) -> None:
    env = make_env(env_id)
    env.reset(seed=0)
    dim = env.action_space.shape[0]
    for bad in (np.zeros(dim + 1, np.float32), np.full(dim, np.nan, np.float32), np.zeros((1, dim))):
        with pytest.raises(ValueError, match="action"):
            env.unwrapped.step(bad)
    env.close()


def test_bad_reset_option_and_state(env_id: str) -> None:
    env = make_env(env_id)
    with pytest.raises(ValueError, match="'start'"):
        env.reset(options={"start": np.zeros(2)})
    with pytest.raises(ValueError, match="state"):
        env.reset(options={"state": np.zeros(env.unwrapped.state_dim + 1)})
    env.close()


def test_check_env_through_make(env_id: str) -> None:
    env = make_env(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)
    assert env.spec is not None and env.spec.max_episode_steps in (50, 100, 200)
    env.close()
