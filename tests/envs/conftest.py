"""Fixtures of the env tests: ``env_id`` runs a test once per registered id."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

from worldmodels.envs import ENV_IDS


@pytest.fixture(params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param
