"""Helpers of the data-layer tests (imported by name; ``conftest`` holds the fixtures)."""

from __future__ import annotations

import numpy as np


def synthetic_episode(
    length: int, seed: int, img: int = 8, proprio_dim: int = 2, action_dim: int = 2, pixels: bool = True
) -> dict[str, np.ndarray]:
    """One random episode with ``length`` steps in the store's key layout."""
    rng = np.random.default_rng(seed)
    ep = {
        "proprio": rng.normal(size=(length + 1, proprio_dim)).astype(np.float32),
        "state": rng.normal(size=(length + 1, proprio_dim + 1)),
        "action": rng.uniform(-1, 1, size=(length, action_dim)).astype(np.float32),
        "reward": rng.normal(size=length).astype(np.float32),
        "terminated": np.zeros(length, dtype=bool),
        "truncated": np.zeros(length, dtype=bool),
    }
    ep["truncated"][-1] = True
    if pixels:
        ep["pixels"] = rng.integers(0, 256, size=(length + 1, img, img, 3), dtype=np.uint8)
    return ep
