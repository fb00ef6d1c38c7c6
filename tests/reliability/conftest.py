"""Fixtures of the reliability suite: run the real commands (in this process or as subprocesses that can be
killed), snapshot directories to prove nothing already written changed, and check one-line errors."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest
from reliability_testing import cli_env

from worldmodels.data.collect import collect


@pytest.fixture
def sub_env() -> dict[str, str]:
    """The environment of a subprocess running this checkout's code with one torch thread."""
    return cli_env()


@pytest.fixture(scope="session")
def wall_data(tmp_path_factory):
    """A tiny Wall-v0 dataset (6 episodes, 32 px) collected once per session; tests copy it, never write it."""
    return collect("worldmodels/Wall-v0", policy="noisy-expert", episodes=6, out=tmp_path_factory.mktemp("wall") / "d",
                   env_kwargs={"img_size": 32}, progress=False).root  # fmt: skip
