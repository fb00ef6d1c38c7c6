"""PushT specifics: relative action, success criterion, the optional dependency."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from worldmodels.envs.pusht import ACTION_SCALE, PushTEnv


def test_relative_action_moves_agent() -> None:
    env = PushTEnv(img_size=32)
    state = np.array([100.0, 100.0, 0, 0, 400.0, 400.0, 0, 0, 0, 0])
    env.reset(options={"state": state})
    for _ in range(3):
        env.step(np.array([1.0, 0.0], np.float32))
    moved = env.get_state()[:2] - state[:2]
    assert 0 < moved[0] < 3 * ACTION_SCALE and abs(moved[1]) < 1e-6
    env.reset(options={"state": state})
    env.step(np.zeros(2, np.float32))
    np.testing.assert_allclose(env.get_state()[:2], state[:2])


def test_success_criterion_positions_and_wrapped_angle() -> None:
    env = PushTEnv(img_size=32)
    goal = np.array([100.0, 100.0, 0, 0, 300.0, 300.0, 0.1, 0, 0, 0])
    near = goal.copy()
    near[[0, 4]] += 9.0
    near[6] = 0.1 + 2 * np.pi - 0.3
    assert env.is_success(near, goal)
    far = goal.copy()
    far[[0, 4]] += 15.0  # each within 20, jointly not (DINO-WM's norm over the 4 positions)
    assert not env.is_success(far, goal)
    turned = goal.copy()
    turned[6] += np.pi / 8 + 0.05
    assert not env.is_success(turned, goal)


def test_block_is_drawn_where_the_state_says() -> None:
    env = PushTEnv(img_size=64)
    state = np.array([50.0, 50.0, 0, 0, 256.0, 256.0, 0.0, 0, 0, 0])
    image = env.render_state(state)
    # the stem of the T lies below the body origin (y downward): pixel at (x=256, y=330)
    i, j = int(330 / 8), int(256 / 8)
    np.testing.assert_array_equal(image[i, j], [119, 136, 153])
    np.testing.assert_array_equal(image[int(50 / 8), int(50 / 8)], [65, 105, 225])


def test_missing_gym_pusht_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("gym_pusht")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "gym_pusht", None)
    with pytest.raises(ImportError, match=r"pip install worldmodels\[pusht\]"):
        PushTEnv()
