"""The true-dynamics model against the simulator: restored from observations alone (x position dropped) or
from qpos/qvel, a batch of states steps exactly as the env steps each of them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from worldmodels.api import SteppableModel
from worldmodels.models.true_dynamics import TrueDynamics


def _trajectory(env_id: str, steps: int, seed: int):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(steps):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        qpos, qvel = env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()
        nxt, r, term, trunc, _ = env.step(a)
        rows.append((obs, qpos, qvel, a, nxt, r, term))
        obs = nxt
        if term or trunc:
            break
    env.close()
    return [np.stack(c) for c in zip(*rows)]


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"])
def test_a_batch_of_states_steps_like_the_simulator(env_id):
    obs, qpos, qvel, act, nxt, rew, term = _trajectory(env_id, 40, seed=3)
    model = TrueDynamics(env_id)
    assert isinstance(model, SteppableModel)
    out = model.step(torch.as_tensor(obs, dtype=torch.float64), torch.as_tensor(act, dtype=torch.float64))
    assert out.next_state.shape == nxt.shape and out.terminated.dtype == torch.bool
    # observations of these envs omit only the x position, which changes neither dynamics nor reward;
    # hopper/walker clip velocities at 10 in the observation: only unclipped states restore from obs alone
    exact_obs = np.abs(qvel).max(1) < 10
    assert exact_obs.sum() >= 2
    np.testing.assert_allclose(out.next_state.numpy()[exact_obs], nxt[exact_obs], atol=1e-6)
    np.testing.assert_allclose(out.reward.numpy()[exact_obs], rew[exact_obs], atol=1e-6)
    assert out.terminated.numpy()[exact_obs].tolist() == term[exact_obs].tolist()
    assert (out.uncertainty == 0).all()
    exact = model.step_qpos(
        torch.as_tensor(qpos), torch.as_tensor(qvel), torch.as_tensor(act, dtype=torch.float64)
    )
    np.testing.assert_allclose(exact.next_state.numpy(), nxt, atol=1e-9)
    np.testing.assert_allclose(exact.reward.numpy(), rew, atol=1e-6)  # float32 vs float64 control cost


def test_bad_shapes_and_envs_are_named():
    with pytest.raises(ValueError, match="not supported"):
        TrueDynamics("Ant-v5")
    model = TrueDynamics("HalfCheetah-v5")
    with pytest.raises(ValueError, match=r"state \(2, 11\).*expected \(B, 17\)"):
        model.step(torch.zeros(2, 11), torch.zeros(2, 6))
