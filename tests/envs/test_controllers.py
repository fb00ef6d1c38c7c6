"""ScriptedPolicy: bounds, seeding, waypoints and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from envs_testing import make_env

from worldmodels.envs import POLICY_KINDS, ScriptedPolicy


def rollout_actions(env_id: str, kind: str, seed: int, steps: int = 30) -> np.ndarray:
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    policy = ScriptedPolicy(env, kind, noise_std=0.5, waypoint_every=10, seed=seed)
    policy.reset()
    actions = []
    for _ in range(steps):
        action = policy(obs)
        assert action.dtype == np.float32 and env.action_space.contains(action)
        actions.append(action)
        obs, *_ = env.step(action)
    env.close()
    return np.stack(actions)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_in_bounds_and_seeded(env_id: str, kind: str) -> None:
    a = rollout_actions(env_id, kind, seed=1)
    b = rollout_actions(env_id, kind, seed=1)
    np.testing.assert_array_equal(a, b)
    if kind != "expert":
        c = rollout_actions(env_id, kind, seed=2)
        assert not np.array_equal(a, c)


def test_reset_reseeds_and_follows_goal() -> None:
    env = make_env("worldmodels/Wall-v0")
    env.reset(seed=0)
    policy = ScriptedPolicy(env, "noisy-expert", seed=0)
    policy.reset(seed=5)
    first = [policy() for _ in range(5)]
    env.reset(seed=0)
    policy.reset(seed=5)
    second = [policy() for _ in range(5)]
    np.testing.assert_array_equal(first, second)
    _, goal = env.unwrapped.sample_start_goal(0)
    policy = ScriptedPolicy(env, "expert")
    policy.reset(goal_state=goal)
    np.testing.assert_array_equal(policy(), env.unwrapped.expert_action(goal))


def test_waypoints_resampled() -> None:
    env = make_env("worldmodels/Wall-v0")
    env.reset(seed=0)
    policy = ScriptedPolicy(env, "expert", waypoint_every=3, seed=0)
    seen = set()
    for _ in range(12):
        env.step(policy())
        seen.add(tuple(policy.waypoint.tolist()))
    assert len(seen) >= 4


def test_bad_arguments() -> None:
    env = make_env("worldmodels/Wall-v0")
    with pytest.raises(ValueError, match="kind"):
        ScriptedPolicy(env, "greedy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_std"):
        ScriptedPolicy(env, "noisy-expert", noise_std=-1.0)
    with pytest.raises(ValueError, match="waypoint_every"):
        ScriptedPolicy(env, "expert", waypoint_every=0)


def test_sticky_random_holds_actions_and_pushes_into_walls() -> None:
    """Held actions: runs of identical actions with the mean length asked for, and (on Wall) many steps where
    the agent pushes into an obstacle and moves less than the action asks, unlike i.i.d. uniform actions."""
    env = make_env("worldmodels/Wall-v0")
    base = env.unwrapped

    def run(kind: str) -> tuple[float, float]:
        policy = ScriptedPolicy(env, kind, hold_steps=10.0, seed=0)
        changes = blocked = steps = 0
        for episode in range(20):
            env.reset(seed=episode)
            policy.reset(seed=episode)
            prev = None
            for _ in range(50):
                action = policy()
                before = base.get_state()[:2].copy()
                env.step(action)
                moved = np.abs(base.get_state()[:2] - before)
                blocked += bool(np.any(moved < 0.5 * np.abs(action) * 2.5 - 1e-6))
                changes += prev is not None and not np.array_equal(prev, action)
                prev, steps = action, steps + 1
        return steps / max(changes, 1), blocked / steps

    hold, blocked = run("sticky-random")
    _, blocked_iid = run("random")
    assert 7.0 < hold < 14.0
    assert blocked > 2 * blocked_iid and blocked > 0.1
    with pytest.raises(ValueError, match="hold_steps"):
        ScriptedPolicy(env, "sticky-random", hold_steps=0.5)
