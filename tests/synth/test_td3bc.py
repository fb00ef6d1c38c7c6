"""TD3+BC (worldmodels.rl.td3bc): the BC term imitates the data, the critic fits a known value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodels.rl.td3bc import TD3BC, TD3BCConfig


def _data(n=512, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    act = np.tanh(obs[:, :2] * 1.5).astype(np.float32)
    return {"observations": obs, "actions": act, "rewards": np.ones(n, np.float32),
            "next_observations": rng.normal(size=(n, 3)).astype(np.float32), "terminals": np.ones(n, np.float32)}  # fmt: skip


def test_pure_bc_imitates_the_dataset_actions(one_torch_thread):
    torch.manual_seed(0)
    data = _data()
    agent = TD3BC(3, 2, [-1, -1], [1, 1], TD3BCConfig(alpha=0.0, policy_freq=1, hidden=(64, 64), lr=3e-3))
    obs = torch.as_tensor(data["observations"])
    before = float((agent.act(obs) - torch.as_tensor(data["actions"])).pow(2).mean())
    agent.train_offline(data, 200, torch.Generator().manual_seed(0))
    after = float((agent.act(obs) - torch.as_tensor(data["actions"])).pow(2).mean())
    assert after < 0.02 < before


def test_critic_learns_the_one_step_value_of_terminal_transitions(one_torch_thread):
    torch.manual_seed(0)
    data = _data()  # every transition terminal with reward 1: Q = 1 everywhere
    agent = TD3BC(3, 2, [-1, -1], [1, 1], TD3BCConfig(hidden=(64, 64), lr=1e-3))
    agent.train_offline(data, 300, torch.Generator().manual_seed(0))
    q = agent.critic(torch.as_tensor(data["observations"][:64]), torch.as_tensor(data["actions"][:64]))
    assert q.shape == (2, 64) and torch.allclose(q, torch.ones_like(q), atol=0.1)


def test_bad_config_and_data():
    with pytest.raises(ValueError, match="policy_freq=0"):
        TD3BCConfig(policy_freq=0)
    agent = TD3BC(3, 2, [-1, -1], [1, 1])
    with pytest.raises(ValueError, match="key 'rewards' is missing"):
        agent.train_offline({"observations": np.zeros((2, 3)), "actions": np.zeros((2, 2))}, 1,
                            torch.Generator())  # fmt: skip
