"""Ensemble dynamics: the vectorised ensemble equals a loop over plain per-member MLPs, the MOPO penalties
equal hand-computed values, the termination rules, the soft log-variance bounds and the step / rollout
roles (seeded, shapes, termination)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from worldmodels.models.ensemble_dynamics import TERMINATION_FNS, EnsembleDynamics, penalties


def _member_mlp(model: EnsembleDynamics, e: int) -> nn.Sequential:
    """Member ``e`` as a plain ``nn.Sequential`` of ``nn.Linear`` with the same weights."""
    layers: list[nn.Module] = []
    for layer in [*model.layers, model.head]:
        lin = nn.Linear(layer.in_features, layer.out_features)
        with torch.no_grad():
            lin.weight.copy_(layer.weight[e].T)
            lin.bias.copy_(layer.bias[e, 0])
        layers += [lin, nn.SiLU()]
    return nn.Sequential(*layers[:-1])


def _model(**kw) -> EnsembleDynamics:
    torch.manual_seed(0)
    m = EnsembleDynamics(obs_dim=5, action_dim=2, num_members=4, num_elites=3, hidden=(16, 16), **kw)
    with torch.no_grad():  # non-trivial standardisation
        m.input_mean.copy_(torch.linspace(-1, 1, 7))
        m.input_std.copy_(torch.linspace(0.5, 2, 7))
        m.target_mean.copy_(torch.linspace(-0.3, 0.3, 6))
        m.target_std.copy_(torch.linspace(0.1, 1.0, 6))
    return m


def test_vectorised_ensemble_equals_a_loop_over_members():
    m = _model()
    g = torch.Generator().manual_seed(1)
    obs, act = torch.randn(9, 5, generator=g), torch.rand(9, 2, generator=g) * 2 - 1
    mean, logvar = m(obs, act)
    assert mean.shape == logvar.shape == (4, 9, 6)
    x = (torch.cat([obs, act], -1) - m.input_mean) / m.input_std
    for e in range(4):
        out = _member_mlp(m, e)(x)
        want_mean, raw = out.chunk(2, -1)
        want_logvar = m.max_logvar - torch.nn.functional.softplus(m.max_logvar - raw)
        want_logvar = m.min_logvar + torch.nn.functional.softplus(want_logvar - m.min_logvar)
        torch.testing.assert_close(mean[e], want_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(logvar[e], want_logvar, rtol=1e-5, atol=1e-6)
    # a subset of members (the elites of a rollout step) computes only those members
    sub_mean, sub_logvar = m(obs, act, torch.tensor([2, 0]))
    torch.testing.assert_close(sub_mean, mean[[2, 0]])
    torch.testing.assert_close(sub_logvar, logvar[[2, 0]])
    # per-member batches: member e sees only its own rows
    obs_e = torch.randn(4, 3, 5, generator=g)
    act_e = torch.rand(4, 3, 2, generator=g)
    mean_e, _ = m(obs_e, act_e)
    for e in range(4):
        x = (torch.cat([obs_e[e], act_e[e]], -1) - m.input_mean) / m.input_std
        torch.testing.assert_close(mean_e[e], _member_mlp(m, e)(x)[:, :6], rtol=1e-5, atol=1e-6)


def test_soft_logvar_bounds_hold_for_extreme_outputs():
    m = _model()
    with torch.no_grad():
        m.head.bias.fill_(1e4)
    _, hi = m(torch.zeros(2, 5), torch.zeros(2, 2))
    with torch.no_grad():
        m.head.bias.fill_(-1e4)
    _, lo = m(torch.zeros(2, 5), torch.zeros(2, 2))
    assert (hi <= 0.5 + 1e-3).all() and (lo >= -10 - 1e-3).all()
    assert hi.max() > 0.4 and lo.min() < -9.9


def test_penalties_equal_hand_computed_values():
    # 2 members, 1 row, 2 dims
    mean = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]])
    std = torch.tensor([[[1.0, 2.0]], [[2.0, 2.0]]])
    sample = torch.tensor([[1.0, 1.0]])
    p = penalties(mean, std, sample)
    assert p["aleatoric"].item() == pytest.approx(math.sqrt(8.0))  # max(sqrt(5), sqrt(8))
    assert p["ensemble_std"].item() == pytest.approx(math.sqrt(1.5**2 + 2.0**2))  # population std: 1.5, 2
    assert p["max_pairwise"].item() == pytest.approx(5.0)  # ||(3, 4)||
    c = 0.5 * math.log(2 * math.pi)
    ll0 = (-0.5 * 1.0 - 0.0 - c) + (-0.5 * 0.25 - math.log(2.0) - c)
    ll1 = (-0.5 * 1.0 - math.log(2.0) - c) + (-0.5 * 2.25 - math.log(2.0) - c)
    assert p["ll_var"].item() == pytest.approx(((ll0 - ll1) / 2) ** 2, rel=1e-5)


def test_termination_rules():
    hopper, walker, cheetah = (
        TERMINATION_FNS["hopper"],
        TERMINATION_FNS["walker2d"],
        TERMINATION_FNS["halfcheetah"],
    )
    ok = torch.zeros(11)
    ok[0] = 1.25
    low, tilted, fast = ok.clone(), ok.clone(), ok.clone()
    low[0], tilted[1], fast[5] = 0.6, 0.3, 150.0
    assert hopper(torch.stack([ok, low, tilted, fast])).tolist() == [False, True, True, True]
    w = torch.zeros(4, 17)
    w[:, 0] = torch.tensor([1.2, 0.7, 2.1, 1.2])
    w[3, 1] = 1.5
    assert walker(w).tolist() == [False, True, True, True]
    assert not cheetah(torch.randn(5, 17) * 100).any()


def test_step_samples_elites_with_the_generator_and_terminates_by_the_env_rule():
    m = _model(env_id="Hopper-v5")
    m.elites.copy_(torch.tensor([0, 2, 3]))
    s, a = torch.randn(64, 5), torch.rand(64, 2)
    out = m.step(s, a, generator=torch.Generator().manual_seed(3))
    again = m.step(s, a, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out.next_state, again.next_state) and torch.equal(out.reward, again.reward)
    assert set(out.info["member"].tolist()) <= {0, 2, 3} and len(set(out.info["member"].tolist())) == 3
    assert torch.equal(out.terminated, TERMINATION_FNS["hopper"](out.next_state))
    assert set(out.info["penalties"]) == {"aleatoric", "ensemble_std", "max_pairwise", "ll_var"}
    assert torch.equal(out.uncertainty, out.info["penalties"]["aleatoric"])
    with pytest.raises(ValueError, match=r"state \(64, 4\).*expected \(B, 5\)"):
        m.step(s[:, :4], a, generator=torch.Generator())


def test_rollout_predicts_rewards_for_return_planning():
    from planners.objectives import NegativeReturn, make_cost_fn

    m = _model(env_id="HalfCheetah-v5")
    state = m.encode({"proprio": torch.randn(1, 2, 5)})
    g = torch.Generator().manual_seed(0)
    cost = make_cost_fn(m, state, NegativeReturn(0.9), generator=g)
    actions = torch.rand(6, 4, 2) * 2 - 1
    c = cost(actions)
    assert c.shape == (6,) and torch.isfinite(c).all()
    pred = m.rollout(state, actions, generator=torch.Generator().manual_seed(0))
    assert pred.reward.shape == (6, 4) and pred.proprio.shape == (6, 4, 5)
    w = 0.9 ** torch.arange(4.0)
    torch.testing.assert_close(make_cost_fn(m, state, NegativeReturn(0.9), generator=torch.Generator().manual_seed(0))(actions),
                               -(pred.reward * w).sum(1))  # fmt: skip
