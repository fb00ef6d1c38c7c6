"""Objectives and make_cost_fn: exact values, chunking, inference mode vs gradients."""

from __future__ import annotations

import pytest
import torch
from planners_testing import PointModel, PointState, point_state

from planners import GoalDistance, NegativeReturn, make_cost_fn


def _pred(visual: torch.Tensor, proprio: torch.Tensor | None = None) -> PointState:
    return PointState(visual, proprio)


def test_goal_distance_last_frame_with_proprio_term():
    goal = PointState(torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 2))
    visual = torch.zeros(2, 3, 2, 3)
    visual[0, -1] = 2.0  # last frame off by 2 everywhere -> MSE 4
    visual[1, 0] = 5.0  # only an earlier frame is off -> last-frame cost 0
    proprio = torch.zeros(2, 3, 2)
    proprio[1, -1] = torch.tensor([1.0, 3.0])  # MSE 5
    actions = torch.zeros(2, 3, 1)
    torch.testing.assert_close(
        GoalDistance(goal, alpha=0.5)(_pred(visual, proprio), actions), torch.tensor([4.0, 2.5])
    )
    torch.testing.assert_close(
        GoalDistance(goal, alpha=0.0)(_pred(visual, proprio), actions), torch.tensor([4.0, 0.0])
    )


def test_goal_distance_all_frames_discounted():
    goal = PointState(torch.zeros(1, 1, 1, 1))
    visual = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)  # per-frame costs 1, 4, 9
    cost = GoalDistance(goal, mode="all", discount=0.5)(_pred(visual), torch.zeros(1, 3, 1))
    expected = (0.25 * 1 + 0.5 * 4 + 1.0 * 9) / (0.25 + 0.5 + 1.0)
    torch.testing.assert_close(cost, torch.tensor([expected]))


def test_goal_distance_uses_the_goals_last_frame():
    goal = PointState(torch.tensor([7.0, 1.0]).reshape(1, 2, 1, 1))
    cost = GoalDistance(goal)(_pred(torch.ones(1, 1, 1, 1)), torch.zeros(1, 1, 1))
    torch.testing.assert_close(cost, torch.tensor([0.0]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"mode": "first"}, "mode"), ({"alpha": -1.0}, "alpha"), ({"discount": 0.0}, "discount")],
)
def test_goal_distance_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GoalDistance(point_state([0.0]), **kwargs)
    with pytest.raises(ValueError, match="visual"):
        GoalDistance(object())


def test_negative_return():
    pred = PointState(torch.zeros(2, 3, 1, 1))
    pred.reward = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 2.0]])
    torch.testing.assert_close(
        NegativeReturn(gamma=0.5)(pred, torch.zeros(2, 3, 1)), torch.tensor([-1.75, -0.5])
    )
    fn = NegativeReturn(gamma=1.0, reward_fn=lambda p, a: a.sum(-1))
    torch.testing.assert_close(fn(pred, torch.ones(2, 3, 2)), torch.tensor([-6.0, -6.0]))
    with pytest.raises(ValueError, match="reward"):
        NegativeReturn()(PointState(torch.zeros(1, 1, 1, 1)), torch.zeros(1, 1, 1))


def test_make_cost_fn_chunks_give_identical_costs_and_bound_the_batch():
    model = PointModel(dim=2, with_proprio=True)
    objective = GoalDistance(point_state([1.0, -1.0]), alpha=1.0)
    actions = torch.rand(10, 4, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    full = make_cost_fn(model, point_state([0.0, 0.0]), objective)(actions)
    model.rollout_calls.clear()
    chunked = make_cost_fn(model, point_state([0.0, 0.0]), objective, chunk_size=3)(actions)
    assert model.rollout_calls == [3, 3, 3, 1]
    torch.testing.assert_close(chunked, full)
    # exact: the point ends at the sum of its actions; visual and proprio terms are equal here
    expected = 2 * (actions.sum(1) - torch.tensor([1.0, -1.0])).pow(2).mean(-1)
    torch.testing.assert_close(full, expected)
    assert not full.requires_grad and not full.is_inference()
    with pytest.raises(ValueError, match="chunk_size"):
        make_cost_fn(model, point_state([0.0, 0.0]), objective, chunk_size=0)
    with pytest.raises(ValueError, match="actions has shape"):
        make_cost_fn(model, point_state([0.0, 0.0]), objective)(torch.zeros(4, 2))


def test_make_cost_fn_differentiable_gives_the_analytic_gradient():
    model = PointModel(dim=1)
    cost_fn = make_cost_fn(model, point_state([0.0]), GoalDistance(point_state([1.0])), chunk_size=1,
                           differentiable=True)  # fmt: skip
    actions = torch.tensor([[[0.25], [0.25]], [[1.0], [1.0]]], requires_grad=True)
    cost_fn(actions).sum().backward()
    # d/da_t (sum a - 1)^2 = 2 (sum a - 1) for every step t
    torch.testing.assert_close(actions.grad, torch.tensor([[[-1.0], [-1.0]], [[2.0], [2.0]]]))


def test_make_cost_fn_seeds_a_stochastic_model_from_its_generator():
    class NoisyPoint(PointModel):
        def rollout(self, state, actions, *, generator=None):
            pred = super().rollout(state, actions)
            noise = torch.randn(pred.visual.shape, generator=generator)
            return type(pred)(pred.visual + noise, None)

    model, state = NoisyPoint(), point_state([0.0, 0.0])
    goal = GoalDistance(point_state([1.0, 1.0]), alpha=0.0)
    actions = torch.zeros(4, 3, 2)
    costs = [
        make_cost_fn(model, state, goal, generator=torch.Generator().manual_seed(s))(actions)
        for s in (0, 0, 1)
    ]
    assert torch.equal(costs[0], costs[1]) and not torch.equal(costs[0], costs[2])
    with pytest.raises(ValueError, match=r"PointModel\.rollout is deterministic"):
        make_cost_fn(PointModel(), state, goal, generator=torch.Generator())


def test_auto_chunk_size_from_the_models_rollout_memory(monkeypatch):
    """``chunk_size="auto"``: chunks from the memory budget over the model's bytes per candidate (its KV
    cache is most of them); the costs equal one call over all candidates."""
    from planners_testing import tiny_wall_latent_model

    import planners.objectives as objectives
    from planners.evaluate import EvalOptions
    from worldmodels.models.latent_world_model import LatentState

    model = tiny_wall_latent_model()
    g = torch.Generator().manual_seed(0)
    state = LatentState(torch.randn(1, 3, 64, 8, generator=g), torch.randn(1, 3, 2, generator=g))
    per_sample = model.rollout_bytes_per_sample(state, 4)
    # the cache a rollout of 4 steps actually grows, per candidate
    with torch.no_grad():
        p = model.predictor
        _, _, cache = p.step(
            state.visual[:, :-1], state.proprio[:, :-1], torch.zeros(1, 2, 10), None, capacity=6
        )
        v, pr = state.visual[:, -1:].expand(5, -1, -1, -1), state.proprio[:, -1:].expand(5, -1, -1)
        for _ in range(4):
            v, pr, cache = p.step(v, pr, torch.zeros(5, 1, 10), cache, capacity=6)
    cache_bytes = sum(k.nbytes + val.nbytes for k, val in cache.layers) / 5
    assert cache_bytes <= per_sample <= 3 * cache_bytes
    monkeypatch.setattr(objectives, "memory_budget", lambda device: 3 * per_sample + 1)
    assert objectives.auto_chunk_size(model, state, 4, torch.device("cpu")) == 3
    calls = []
    rollout = model.rollout
    monkeypatch.setattr(model, "rollout", lambda s, a: calls.append(a.shape[0]) or rollout(s, a))
    goal = GoalDistance(LatentState(torch.randn(1, 1, 64, 8, generator=g), torch.randn(1, 1, 2, generator=g)))
    actions = torch.randn(8, 4, 10, generator=g)
    auto = make_cost_fn(model, state, goal, chunk_size="auto")(actions)
    assert calls == [3, 3, 2]
    torch.testing.assert_close(auto, make_cost_fn(model, state, goal)(actions), atol=1e-6, rtol=1e-5)
    assert EvalOptions(chunk_size="auto").chunk_size == "auto"
    for bad in (0, "all"):
        with pytest.raises(ValueError, match="chunk_size"):
            make_cost_fn(model, state, goal, chunk_size=bad)
    with pytest.raises(ValueError, match="chunk_size=0"):
        EvalOptions(chunk_size=0)
