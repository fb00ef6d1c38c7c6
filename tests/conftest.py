"""Fixtures every test folder may use."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread: tiny models on a busy 2-core machine run up to 100x faster than
    with OpenMP's spinning threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
