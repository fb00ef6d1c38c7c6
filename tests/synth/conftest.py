"""Fixtures for the SynthER tests: a tiny random-policy HalfCheetah-v5 store, a tiny trained SynthER."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from pathlib import Path

import pytest
import torch

from worldmodels.data.store import EpisodeStore

ENV_ID = "HalfCheetah-v5"


def uniform_store(root: Path, env_id: str = ENV_ID, episodes: int = 3, steps: int = 40) -> EpisodeStore:
    """``episodes`` episodes of uniform random actions (qpos/qvel kept), ``steps`` steps each."""
    import gymnasium as gym

    from worldmodels.data.collect import rollout_episode
    from worldmodels.data.d4rl import UniformPolicy

    env = gym.make(env_id, max_episode_steps=steps)
    store = EpisodeStore.create(root, env_id=env_id, env_kwargs={"max_episode_steps": steps})
    policy = UniformPolicy(env.action_space)
    for i in range(episodes):
        store.append_episode(rollout_episode(env, policy, seed=i), seed=i)
    env.close()
    return store


@pytest.fixture(scope="session")
def cheetah_store(tmp_path_factory) -> Path:
    """A 120-transition HalfCheetah-v5 store (3 random episodes of 40 steps, timeouts kept as steps)."""
    root = tmp_path_factory.mktemp("synth") / "cheetah"
    uniform_store(root, episodes=3, steps=41)
    return root


@pytest.fixture(scope="session")
def tiny_model(cheetah_store, tmp_path_factory):
    """A SynthER with a 32-wide denoiser fitted for 30 steps on the store (EMA weights), saved."""
    from synth.data import load_transitions
    from synth.model import SynthER, fit_normalization, flatten_transitions

    torch.manual_seed(0)
    data = load_transitions(cheetah_store)
    flat = flatten_transitions(data)
    o, a = data["observations"].shape[1], data["actions"].shape[1]
    model = SynthER(o, a, denoiser={"width": 32, "blocks": 2, "dim_t": 16}, sampler={"steps": 4, "solver": "heun"},
                    env_id=ENV_ID, dataset=str(cheetah_store))  # fmt: skip
    model.set_normalization(fit_normalization(flat, o, a))
    opt = torch.optim.AdamW(model.denoiser.parameters(), lr=1e-3)
    z = model.normalize(torch.as_tensor(flat))
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        loss = model.loss(z, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = tmp_path_factory.mktemp("synth") / "model"
    model.eval().save_pretrained(out)
    return out
