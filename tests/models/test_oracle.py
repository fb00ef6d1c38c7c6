"""Exact-dynamics models: each one's rollout is its env's own dynamics, candidate by candidate."""

from __future__ import annotations

import os
import pickle

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldmodels.envs.wall import WallEnv
from worldmodels.models.oracle import PointMazeOracleModel, WallOracleModel, oracle_model


@pytest.mark.parametrize("variant", [{}, {"max_step": 5.0}, {"slide": False}])
def test_wall_oracle_rollout_is_the_env_dynamics(variant):
    """The oracle's vectorised collision dynamics match the env step for step, for each protocol variant."""
    env = WallEnv(**variant)
    model = WallOracleModel(**variant)
    gen = torch.Generator().manual_seed(0)
    for seed in range(6):
        start, _ = env.sample_start_goal(seed)
        actions = (torch.rand(1, 4, model.action_dim, generator=gen) * 2.4 - 1.2).double()
        obs, _ = env.reset(options={"state": start})
        state = model.encode({"proprio": torch.as_tensor(obs["proprio"])[None, None]})
        imagined = model.rollout(state, actions).proprio[0].double() * 64.0
        real = []
        for k, a in enumerate(model.to_env_actions(actions[0]).numpy()):
            env.step(np.clip(a, -1, 1).astype(np.float32))
            if (k + 1) % model.frameskip == 0:
                real.append(env.get_state())
        np.testing.assert_allclose(imagined.numpy(), np.array(real), atol=1e-4)


def test_pointmaze_oracle_rollout_is_the_real_env_and_survives_pickling():
    model = oracle_model("worldmodels/PointMazeUMaze-v0")
    assert isinstance(model, PointMazeOracleModel) and model.action_dim == 10
    env = gym.make("worldmodels/PointMazeUMaze-v0").unwrapped
    start, _ = env.sample_start_goal(3)
    env.reset(seed=0)
    env.set_state(start)
    obs = {"proprio": torch.tensor(start, dtype=torch.float32)[None, None]}
    actions = torch.rand(3, 2, 10, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pred = pickle.loads(pickle.dumps(model)).rollout(model.encode(obs), actions)  # a worker's copy
    assert pred.proprio.shape == (3, 2, 4) and pred.visual.shape == (3, 2, 1, 2)
    for i in range(3):  # candidate i replayed in the real env
        env.set_state(start)
        for h, step_actions in enumerate(model.to_env_actions(actions[i]).reshape(2, 5, 2)):
            for a in step_actions:
                env.step(a.numpy())
            torch.testing.assert_close(pred.proprio[i, h], torch.tensor(env.get_state(), dtype=torch.float32))
    assert not torch.equal(pred.proprio[0], pred.proprio[1])  # each candidate starts from the same state
    frames = model.decode(pred)
    assert frames.shape == (3, 2, 3, 64, 64) and 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    env.close()


def test_oracle_model_names_the_envs_it_has():
    assert isinstance(oracle_model("worldmodels/Wall-v0"), WallOracleModel)
    with pytest.raises(ValueError, match="no oracle model for --env worldmodels/Reacher-v0"):
        oracle_model("worldmodels/Reacher-v0")
