"""Planner tests run single-threaded: their models are tiny (see ``one_torch_thread``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every planner test uses the root conftest's ``one_torch_thread``."""
