"""Fixtures of the offline-RL tests: tiny D4RL-style datasets of uniform random actions, built by
``build_tier`` (no SAC run needed for the random tier), so no test depends on a prebuilt dataset."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

from worldmodels.data.d4rl import BuildConfig, build_tier


def tiny_dataset(root, env: str = "halfcheetah", transitions: int = 1000):
    """``root``: a random-tier dataset of ``env`` with ``transitions`` transitions."""
    build_tier(BuildConfig(env=env, tier="random", out=str(root), transitions=transitions, restore_samples=4,
                           reference_episodes=1), progress=False)  # fmt: skip
    return root


@pytest.fixture(scope="session")
def cheetah_data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("d4rl") / "halfcheetah-random")


@pytest.fixture(scope="session")
def hopper_data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("d4rl") / "hopper-random", env="hopper", transitions=300)
