"""MPC on the analytic point system: reaches a goal beyond one horizon, warm start shifts the plan."""

from __future__ import annotations

import pytest
import torch
from planners_testing import PointModel, PointState

from planners import MPC, GoalDistance, PlanResult, build_planner, make_cost_fn


class _Point:
    """The real system: x_{t+1} = x_t + clamp(a_t); done within 0.1 of the goal."""

    def __init__(self, start: list[float], goal: list[float]):
        self.x, self.goal, self.steps = torch.tensor(start), torch.tensor(goal), 0

    def observe(self) -> PointState:
        return PointState(self.x[None, None, None].clone())

    def step(self, actions: torch.Tensor) -> bool:
        for a in actions:
            self.x = self.x + a.clamp(-1, 1)
            self.steps += 1
        return bool((self.x - self.goal).norm() < 0.1)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi", "gd"])
def test_mpc_reaches_a_goal_beyond_the_horizon(name):
    kwargs = {"gd": {"steps": 60, "lr": 0.1, "restarts": 2}, "mppi": {"samples": 100, "iterations": 10}}
    planner = build_planner(name, **kwargs.get(name, {"samples": 100, "topk": 10, "iterations": 8}))
    model, system = PointModel(dim=2), _Point([0.0, 0.0], [6.0, -4.5])
    # all frames: a last-frame cost leaves the first action free once the goal is within one horizon
    goal = GoalDistance(PointState(system.goal[None, None, None]), mode="all", discount=0.5)
    mpc = MPC(planner, horizon=3, execute=1, max_steps=12)
    low, high = model.action_bounds()
    result = mpc.run(
        system.observe,
        lambda s: make_cost_fn(model, s, goal, differentiable=planner.differentiable),
        system.step,
        low=low, high=high, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert result.done, f"ended at {system.x.tolist()}"
    assert system.steps <= 8  # 6 steps is the minimum at |a| <= 1
    assert len(result.plans) == len(result.plan_times) == system.steps
    assert result.actions.shape == (system.steps, 2)
    assert bool((result.actions.abs() <= 1).all())


class _Recorder:
    """A planner that records its warm starts and returns a fixed, recognisable plan."""

    differentiable = False

    def __init__(self):
        self.inits: list[torch.Tensor | None] = []

    def plan(self, cost_fn, *, horizon, action_dim, low, high, init=None, generator):
        self.inits.append(None if init is None else init.clone())
        n = len(self.inits)
        actions = (
            torch.arange(horizon * action_dim, dtype=torch.float32).reshape(horizon, action_dim) / 10 + n
        )
        return PlanResult(actions.clamp(low, high), 0.0)


@pytest.mark.parametrize(("fill", "tail"), [("middle", [0.5, 0.0]), ("last", None)])
def test_warm_start_is_the_shifted_previous_plan(fill, tail):
    rec = _Recorder()
    low, high = torch.tensor([0.0, -10.0]), torch.tensor([1.0, 10.0])
    steps: list[torch.Tensor] = []
    mpc = MPC(rec, horizon=4, execute=2, max_steps=5, fill=fill)
    result = mpc.run(lambda: None, lambda s: None, lambda a: steps.append(a) or False, low=low, high=high,
                     generator=torch.Generator())  # fmt: skip
    assert not result.done
    assert [len(a) for a in steps] == [2, 2, 1]  # the budget cuts the last execution short
    assert rec.inits[0] is None
    plan1 = (torch.arange(8, dtype=torch.float32).reshape(4, 2) / 10 + 1).clamp(low, high)
    expected_tail = plan1[-1:].expand(2, -1) if tail is None else torch.tensor([tail, tail])
    torch.testing.assert_close(rec.inits[1], torch.cat([plan1[2:], expected_tail]))
    torch.testing.assert_close(result.actions[:2], plan1[:2])


def test_mpc_without_warm_start_and_bad_arguments():
    rec = _Recorder()
    MPC(rec, horizon=2, execute=1, max_steps=3, warm_start=False).run(
        lambda: None,
        lambda s: None,
        lambda a: False,
        low=-torch.ones(1),
        high=torch.ones(1),
        generator=torch.Generator(),
    )
    assert rec.inits == [None, None, None]
    with pytest.raises(ValueError, match="execute"):
        MPC(rec, horizon=2, execute=3)
    with pytest.raises(ValueError, match="max_steps"):
        MPC(rec, max_steps=0)
    with pytest.raises(ValueError, match="fill"):
        MPC(rec, fill="zeros")
