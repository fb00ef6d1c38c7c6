"""Helpers of the env tests (a unique module name: test directories share ``sys.path``)."""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import pytest

import worldmodels.envs  # noqa: F401  (registers the ids)

HAS_PUSHT = importlib.util.find_spec("gym_pusht") is not None


def make_env(env_id: str, img_size: int = 32) -> gym.Env:
    """``gym.make(env_id)`` at a small image size; skips the test for PushT without gym-pusht."""
    if env_id == "worldmodels/PushT-v0" and not HAS_PUSHT:
        pytest.skip("gym-pusht is not installed (pip install worldmodels[pusht])")
    return gym.make(env_id, img_size=img_size, render_mode="rgb_array")
