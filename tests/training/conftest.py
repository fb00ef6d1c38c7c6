"""Shared fixture of the training tests: a tiny real Wall dataset and an untrained conv_ae encoder."""

import pytest

from worldmodels.data.collect import collect
from worldmodels.encoders.conv_ae import ConvAEEncoder


@pytest.fixture(scope="module")
def wall_data(tmp_path_factory):
    """``root/data``: 4 noisy-expert Wall episodes; ``root/enc``: a saved ``ConvAEEncoder``."""
    root = tmp_path_factory.mktemp("wall")
    collect("worldmodels/Wall-v0", policy="noisy-expert", episodes=4, out=root / "data", progress=False)
    ConvAEEncoder(embed_dim=16, width=8).save_pretrained(root / "enc")
    return root
