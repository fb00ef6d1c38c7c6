"""Wall / WallRandom specifics: geometry, collisions, layouts, expert reachability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodels.envs import ScriptedPolicy
from worldmodels.envs.wall import (
    AGENT_RADIUS,
    ARENA,
    BAND_HALF,
    FIXED_LAYOUT,
    SUCCESS_DISTANCE,
    WallEnv,
    WallRandomEnv,
    is_free,
    wall_step,
)


def reach_rate(env: WallEnv, n_pairs: int = 10) -> float:
    reached = 0
    for seed in range(n_pairs):
        start, goal = env.sample_start_goal(seed)
        env.reset(options={"state": start, "goal_state": goal})
        policy = ScriptedPolicy(env, "expert")
        policy.reset(goal_state=goal)
        for _ in range(env.planning_budget):
            *_, terminated, _, _ = env.step(policy())
            if terminated:
                reached += 1
                break
    return reached / n_pairs


@pytest.mark.parametrize("cls", [WallEnv, WallRandomEnv])
def test_expert_reaches_goals_within_budget(cls: type[WallEnv]) -> None:
    assert reach_rate(cls(img_size=32)) >= 0.8


def test_start_goal_on_opposite_sides() -> None:
    env = WallRandomEnv()
    for seed in range(20):
        start, goal = env.sample_start_goal(seed)
        np.testing.assert_array_equal(start[2:], goal[2:])
        wall_x = start[2]
        assert np.sign(start[0] - wall_x) == -np.sign(goal[0] - wall_x)
        assert np.linalg.norm(start[:2] - goal[:2]) > SUCCESS_DISTANCE


def test_wall_blocks_and_door_lets_through() -> None:
    env = WallEnv()
    wall_x, door_center, _ = FIXED_LAYOUT
    env.reset(options={"state": np.array([wall_x - 10.0, 10.0])})  # far from the door
    for _ in range(20):
        env.step(np.array([1.0, 0.0], np.float32))
    assert env.get_state()[0] < wall_x
    env.reset(options={"state": np.array([wall_x - 10.0, door_center])})
    for _ in range(10):
        env.step(np.array([1.0, 0.0], np.float32))
    assert env.get_state()[0] > wall_x


def test_agent_stays_in_arena_and_slides_along_wall() -> None:
    env = WallEnv()
    env.reset(options={"state": np.array([5.0, 5.0])})
    for _ in range(10):
        env.step(np.array([-1.0, -1.0], np.float32))
    np.testing.assert_allclose(env.get_state(), [AGENT_RADIUS, AGENT_RADIUS])
    wall_x = FIXED_LAYOUT[0]
    env.reset(options={"state": np.array([wall_x - 6.0, 10.0])})
    env.step(np.array([1.0, 1.0], np.float32))
    env.step(np.array([1.0, 1.0], np.float32))
    x, y = env.get_state()
    assert x < wall_x and y == pytest.approx(15.0)
    assert 0 <= x <= ARENA


def test_layout_is_drawn_and_randomised() -> None:
    env = WallRandomEnv(img_size=64)
    env.reset(seed=0)
    layout_a = env.get_state()[2:].copy()
    env.reset(seed=1)
    layout_b = env.get_state()[2:].copy()
    assert not np.allclose(layout_a, layout_b)
    image = env.render()
    wall_col = int(layout_b[0])
    column = image[:, wall_col]
    assert (column == 230).all(axis=1).sum() > 30, "the wall column is drawn"
    assert (column == 0).all(axis=1).sum() >= 8, "the door is a gap in the wall"
    with pytest.raises(ValueError, match="state"):
        env.set_state(np.zeros(2))


def test_protocol_variants_speed_sliding_and_pair_margin() -> None:
    wall_x = FIXED_LAYOUT[0]
    fast = WallEnv(max_step=5.0)
    fast.reset(options={"state": np.array([10.0, 10.0])})
    fast.step(np.array([1.0, 0.5], np.float32))
    np.testing.assert_allclose(fast.get_state(), [15.0, 12.5])
    # pushing diagonally into the wall: the default slides along it, DotWall-like stops at the contact
    for slide, moved_in_y in ((True, True), (False, False)):
        env = WallEnv(slide=slide)
        env.reset(options={"state": np.array([wall_x - 5.0, 10.0])})
        env.step(np.array([1.0, 1.0], np.float32))
        x, y = env.get_state()
        assert x < wall_x and (y > 12.0) == moved_in_y
    margin = 3.35
    env = WallEnv(pair_margin=margin)
    lo, hi = AGENT_RADIUS + margin, ARENA - AGENT_RADIUS - margin
    for seed in range(50):
        for pos in env.sample_start_goal(seed):
            assert lo <= pos.min() and pos.max() <= hi
            assert abs(pos[0] - wall_x) >= BAND_HALF + margin
    np.testing.assert_array_equal(
        WallEnv(pair_margin=0.0).sample_start_goal(7), WallEnv().sample_start_goal(7)
    )
    for bad in ({"max_step": 0.0}, {"pair_margin": -1.0}, {"pair_margin": 20.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            WallEnv(**bad)


def test_largest_pair_margin_still_samples_every_random_layout() -> None:
    from worldmodels.envs.wall import MAX_PAIR_MARGIN

    env = WallRandomEnv(pair_margin=MAX_PAIR_MARGIN - 1e-6)
    for seed in range(30):
        start, goal = env.sample_start_goal(seed)
        assert np.sign(start[0] - start[2]) == -np.sign(goal[0] - goal[2])


def test_wall_step_hand_worked_moves_and_gradients() -> None:
    """Free move: 4 sub-steps of ``action * 2.5 / 4``; pressed into the wall (band edge x = 32 - 4.5) it
    slides along y; the gradient is ``max_step`` on a free axis and 0 on a blocked one."""
    pos = torch.tensor([[16.0, 32.0], [25.0, 10.0], [27.5, 12.5]], dtype=torch.float64)
    action = torch.tensor([[0.8, 0.4], [0.8, 0.8], [0.8, 0.8]], dtype=torch.float64, requires_grad=True)
    out = wall_step(pos, action)
    expected = [[18.0, 33.0], [27.0, 12.0], [27.5, 14.5]]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=0)
    (grad,) = torch.autograd.grad(out.sum(), action)
    torch.testing.assert_close(grad, torch.tensor([[2.5, 2.5], [2.5, 2.5], [0.0, 2.5]], dtype=torch.float64))
    np.testing.assert_array_equal(wall_step(pos.numpy(), action.detach().numpy()), out.detach().numpy())


@pytest.mark.parametrize("variant", [{}, {"max_step": 5.0}, {"slide": False}])
def test_wall_step_batch_equals_one_row_at_a_time(variant) -> None:
    """One batch (torch, mostly through the sub-step tries: some row touches an obstacle) gives exactly the
    env's numpy steps of one agent (mostly the all-free shortcut), in the fixed and a random layout."""
    rng = np.random.default_rng(0)
    for layout in (FIXED_LAYOUT, (24.0, 40.0, 11.0)):
        pos = rng.uniform(AGENT_RADIUS, ARENA - AGENT_RADIUS, size=(400, 2))
        pos = pos[is_free(pos, layout)][:256]
        action = rng.normal(size=(256, 2)) * 1.2
        for _ in range(5):
            batch = wall_step(torch.from_numpy(pos), torch.from_numpy(action), layout, **variant).numpy()
            rows = np.stack([wall_step(p, a, layout, **variant) for p, a in zip(pos, action)])
            np.testing.assert_array_equal(batch, rows)
            pos = rows
        assert is_free(pos, layout).all()
