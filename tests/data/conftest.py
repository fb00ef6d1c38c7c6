"""Fixtures for the data-layer tests: synthetic stores built without a simulator."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Callable
from pathlib import Path

import pytest
from data_testing import synthetic_episode

from worldmodels.data.store import EpisodeStore


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., EpisodeStore]:
    """``make_store(lengths, name="ds", pixels=True)``: a store whose episode ``i`` has ``lengths[i]`` steps
    and is ``synthetic_episode(lengths[i], seed=i)``."""

    def make(lengths, name: str = "ds", pixels: bool = True) -> EpisodeStore:
        store = EpisodeStore.create(tmp_path / name, env_id="test/Synthetic-v0", behaviour_policy="random")
        for i, n in enumerate(lengths):
            store.append_episode(synthetic_episode(int(n), seed=i, pixels=pixels), seed=i)
        return store

    return make
