"""SAC: the actor's log-density, a short run that learns nothing wrong, and exact resume / extension."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from worldmodels import load_pretrained
from worldmodels.rl.networks import TanhGaussianActor, VectorizedCritic
from worldmodels.rl.sac import SACConfig, train_sac

TINY = dict(env_id="HalfCheetah-v5", max_episode_steps=30, total_steps=200, learning_starts=50, batch_size=32,
            hidden=(32, 32), eval_every=100, eval_episodes=1, checkpoint_every=70, buffer_size=1000)  # fmt: skip


def test_actor_log_prob_matches_torch_distributions():
    torch.manual_seed(0)  # the initial weights (other tests move the global RNG)
    actor = TanhGaussianActor(5, 3, hidden=(16,), action_low=[-2.0, 0.0, -1.0], action_high=[2.0, 1.0, 3.0])
    obs = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    action, log_prob = actor.sample(obs, torch.Generator().manual_seed(1))
    mean, log_std = actor(obs)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform(), torch.distributions.AffineTransform(actor.action_bias, actor.action_scale)],
    )  # fmt: skip
    pre = torch.atanh(((action - actor.action_bias) / actor.action_scale).clamp(-1 + 1e-6, 1 - 1e-6))
    expected = (
        dist.base_dist.log_prob(pre) - torch.log(actor.action_scale * (1 - torch.tanh(pre) ** 2))
    ).sum(-1)
    torch.testing.assert_close(log_prob, expected, rtol=1e-4, atol=1e-3)
    low, high = torch.tensor([-2.0, 0.0, -1.0]), torch.tensor([2.0, 1.0, 3.0])
    assert ((action >= low) & (action <= high)).all()
    # deterministic action is the squashed mean; samples with the same generator state repeat
    torch.testing.assert_close(actor.act(obs), torch.tanh(mean) * actor.action_scale + actor.action_bias)
    a1, _ = actor.sample(obs, torch.Generator().manual_seed(3))
    a2, _ = actor.sample(obs, torch.Generator().manual_seed(3))
    assert torch.equal(a1, a2)


def test_critic_shapes_and_save_load(tmp_path):
    critic = VectorizedCritic(4, 2, num_critics=10, hidden=(8, 8))
    obs, act = torch.randn(7, 4), torch.randn(7, 2)
    assert critic(obs, act).shape == (10, 7)
    assert critic(obs.expand(10, 7, 4), act).shape == (10, 7)
    critic.save_pretrained(tmp_path / "c")
    loaded = load_pretrained(tmp_path / "c")
    assert torch.equal(loaded(obs, act), critic(obs, act))


def test_actor_is_a_collector_policy(tmp_path):
    actor = TanhGaussianActor(3, 2, hidden=(8,), action_low=[-0.5, -0.5], action_high=[0.5, 0.5])
    actor.save_pretrained(tmp_path / "a")
    loaded = load_pretrained(tmp_path / "a")
    policy = loaded.as_env_policy(None, stochastic=True)
    obs = np.ones(3)
    policy.reset(seed=5)
    first = [policy(obs) for _ in range(3)]
    assert math.isfinite(policy.last_log_prob)
    policy.reset(seed=5)
    assert all(np.array_equal(a, policy(obs)) for a in first)
    assert first[0].dtype == np.float32 and np.all(np.abs(first[0]) <= 0.5)
    mean = loaded.as_env_policy(None)(obs)
    np.testing.assert_array_equal(mean, actor.act(torch.ones(1, 3))[0].detach().numpy())


def _weights(run_dir) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return ckpt["agent"]


def _assert_same_run(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ea, eb = json.loads((a / "evals.json").read_text()), json.loads((b / "evals.json").read_text())
    rb = {e["step"]: e["returns"] for e in eb}  # an extended run also evaluated where it first ended
    assert [e["returns"] for e in ea] == [rb[e["step"]] for e in ea]
    sa, sb = load_pretrained(a / "actor"), load_pretrained(b / "actor")
    for (k, va), (_, vb) in zip(sa.state_dict().items(), sb.state_dict().items()):
        assert torch.equal(va, vb), k


def test_sac_exact_resume_after_kill(tmp_path):
    cfg = SACConfig(**TINY)
    full = train_sac(cfg, tmp_path / "full", progress=False)
    assert full.finished and full.final_step == 210  # ends with the episode running at step 200
    exp = full.experience
    assert int(exp.episode_lengths.sum()) == 210 and {"qpos", "qvel", "observation"} <= set(exp.keys)
    assert [e["step"] for e in full.evals] == [100, 200, 210]

    killed = train_sac(cfg, tmp_path / "resumed", progress=False, stop_after=150)  # checkpoint at step 90
    assert not killed.finished and len(killed.experience) == 5
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["step"] == 90
    train_sac(cfg, tmp_path / "resumed", progress=False)
    _assert_same_run(tmp_path / "full", tmp_path / "resumed")
    a, b = full.experience, killed.experience
    assert len(a) == len(b) == 7
    for i in range(len(a)):
        for key in a.keys:
            np.testing.assert_array_equal(a.read(i, key), b.read(i, key), err_msg=f"episode {i} {key}")


def test_sac_extension_equals_longer_run(tmp_path):
    train_sac(SACConfig(**TINY), tmp_path / "full", progress=False)
    short = train_sac(SACConfig(**(TINY | {"total_steps": 100})), tmp_path / "ext", progress=False)
    assert short.final_step == 120
    ext = train_sac(SACConfig(**TINY), tmp_path / "ext", progress=False)
    assert ext.finished and ext.final_step == 210
    assert [e["step"] for e in ext.evals] == [100, 120, 200, 210]
    _assert_same_run(tmp_path / "full", tmp_path / "ext")


def test_sac_config_mismatch_and_bad_values(tmp_path):
    train_sac(SACConfig(**(TINY | {"total_steps": 60})), tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="field 'batch_size' is 32, this run asks for 64"):
        train_sac(SACConfig(**(TINY | {"batch_size": 64})), tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="num_critics=0 must be >= 1"):
        SACConfig(num_critics=0)
    with pytest.raises(ValueError, match="unknown field 'lr'"):
        SACConfig.from_dict({"lr": 1.0})
