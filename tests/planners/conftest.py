"""Planner tests run single-threaded: their models are tiny, and on a busy 2-core machine OpenMP's
spinning threads make small ops up to 100x slower than one thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
