"""Every planner on analytic problems with a known optimum: convergence, bounds, determinism, dtype."""

from __future__ import annotations

import pytest
import torch
from planners_testing import PointModel, point_state

from planners import PLANNERS, GoalDistance, build_planner, make_cost_fn
from planners.base import Planner, PlanResult, colored_noise

# small but honest budgets (each test file runs in seconds on 2 CPU cores)
FAST = {
    "cem": {"samples": 200, "topk": 20, "iterations": 20},
    "icem": {"samples": 200, "topk": 20, "iterations": 12},
    "mppi": {"samples": 200, "iterations": 30, "temperature": 0.05, "noise_std": 0.3},
    "gd": {"steps": 200, "lr": 0.05, "restarts": 4},
}


def _planner(name: str, **overrides) -> Planner:
    return build_planner(name, **{**FAST[name], **overrides})


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _quadratic(target: torch.Tensor):
    """cost(A) = mean((A - target)^2): the box-constrained optimum is clamp(target, low, high)."""

    def cost_fn(actions: torch.Tensor) -> torch.Tensor:
        return (actions - target).pow(2).mean(dim=(1, 2))

    return cost_fn


@pytest.mark.parametrize("name", PLANNERS)
def test_registry_builds_every_planner_and_rejects_unknown(name):
    assert isinstance(build_planner(name), Planner)
    with pytest.raises(ValueError, match="planner 'nope'"):
        build_planner("nope")


@pytest.mark.parametrize("name", PLANNERS)
def test_box_constrained_quadratic_reaches_the_clamped_target(name):
    low, high = torch.tensor([-0.5, -1.0]), torch.tensor([1.0, 0.25])
    target = torch.tensor([[0.3, 0.9], [1.7, -0.4], [-2.0, 0.1]])  # some entries outside the box
    seen = []

    def cost_fn(actions):
        seen.append(actions.detach().clone())
        return _quadratic(target)(actions)

    res = _planner(name).plan(cost_fn, horizon=3, action_dim=2, low=low, high=high, generator=_gen())
    assert isinstance(res, PlanResult)
    optimum = torch.maximum(torch.minimum(target, high), low)
    assert res.actions.shape == (3, 2)
    torch.testing.assert_close(res.actions, optimum, atol=0.06, rtol=0)
    assert res.cost == pytest.approx(float(_quadratic(target)(res.actions[None])[0]), rel=1e-5, abs=1e-7)
    # every candidate ever evaluated respects the bounds
    allc = torch.cat([s.reshape(-1, 2) for s in seen])
    assert bool((allc >= low).all()) and bool((allc <= high).all())
    assert len(res.info["cost"]) == len(res.info["cost_mean"]) > 0


@pytest.mark.parametrize("name", PLANNERS)
def test_point_dynamics_goal_reached_through_the_model(name):
    """x_{t+1} = x_t + a_t from 0 to a goal 3.5 units away: reachable in 5 steps of |a| <= 1, cost 0."""
    model = PointModel(dim=2)
    goal = point_state([3.5, -2.0])
    cost_fn = make_cost_fn(model, point_state([0.0, 0.0]), GoalDistance(goal), chunk_size=64,
                           differentiable=build_planner(name).differentiable)  # fmt: skip
    low, high = model.action_bounds()
    res = _planner(name).plan(cost_fn, horizon=5, action_dim=2, low=low, high=high, generator=_gen())
    final = res.actions.sum(0)
    torch.testing.assert_close(final, torch.tensor([3.5, -2.0]), atol=0.1, rtol=0)
    assert res.cost < 5e-3


@pytest.mark.parametrize("name", PLANNERS)
def test_non_convex_finds_the_global_basin(name):
    """Two quadratic basins: a local one near the box middle (value 0.3) that holds the middle itself, and
    the global one (value 0) further away; starting from the middle, the planner must end in the global
    basin (all seeds 0-9 do at these budgets)."""
    t_global, t_local = 0.8, -0.3

    def cost_fn(a):
        d_global = (a - t_global).pow(2).mean(dim=(1, 2))
        d_local = (a - t_local).pow(2).mean(dim=(1, 2)) + 0.3
        return torch.minimum(d_global, d_local)

    low, high = -torch.ones(2), torch.ones(2)
    overrides = {"restarts": 32} if name == "gd" else {}
    assert float(cost_fn(torch.zeros(1, 2, 2))[0]) > 0.3 - 1e-6  # the middle lies in the local basin
    res = _planner(name, **overrides).plan(
        cost_fn, horizon=2, action_dim=2, low=low, high=high, generator=_gen()
    )
    assert res.cost < 0.02
    torch.testing.assert_close(res.actions, torch.full((2, 2), t_global), atol=0.15, rtol=0)


@pytest.mark.parametrize("name", PLANNERS)
def test_deterministic_given_the_generator(name):
    target = torch.tensor([[0.2, -0.3]] * 3)
    kw = {"horizon": 3, "action_dim": 2, "low": -torch.ones(2), "high": torch.ones(2)}
    planner = _planner(name, **({"steps": 10} if name == "gd" else {"iterations": 3}))
    a = planner.plan(_quadratic(target), generator=_gen(1), **kw)
    b = planner.plan(_quadratic(target), generator=_gen(1), **kw)
    c = planner.plan(_quadratic(target), generator=_gen(2), **kw)
    assert torch.equal(a.actions, b.actions) and a.cost == b.cost
    assert not torch.equal(a.actions, c.actions)


@pytest.mark.parametrize("name", PLANNERS)
def test_device_and_dtype_follow_low_and_init_warm_starts(name):
    target = torch.tensor([[0.5, -0.5]] * 2, dtype=torch.float64)
    low, high = -torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    first = []

    def cost_fn(actions):
        first.append(actions[0].detach().clone())
        return _quadratic(target)(actions)

    planner = _planner(name, **({"steps": 3} if name == "gd" else {"iterations": 2}))
    warm = planner.plan(
        cost_fn, horizon=2, action_dim=2, low=low, high=high, init=target.clone(), generator=_gen()
    )
    assert warm.actions.dtype == torch.float64 and first[0].dtype == torch.float64
    torch.testing.assert_close(first[0], target)  # the warm start is the first candidate evaluated
    n_calls = len(first)
    planner.plan(cost_fn, horizon=2, action_dim=2, low=low, high=high, generator=_gen())
    torch.testing.assert_close(first[n_calls], torch.zeros(2, 2, dtype=torch.float64))  # box middle


@pytest.mark.parametrize("name", PLANNERS)
def test_bad_plan_arguments_raise(name):
    planner = build_planner(name)
    cost_fn = _quadratic(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="horizon"):
        planner.plan(
            cost_fn, horizon=0, action_dim=2, low=-torch.ones(2), high=torch.ones(2), generator=_gen()
        )
    with pytest.raises(ValueError, match="low must be <= high"):
        planner.plan(
            cost_fn, horizon=2, action_dim=2, low=torch.ones(2), high=-torch.ones(2), generator=_gen()
        )
    with pytest.raises(ValueError, match="init has shape"):
        planner.plan(cost_fn, horizon=2, action_dim=2, low=-torch.ones(2), high=torch.ones(2),
                     init=torch.zeros(3, 2), generator=_gen())  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("cem", {"topk": 0}, "topk"),
        ("cem", {"topk": 400}, "topk"),
        ("icem", {"decay": 0.5}, "decay"),
        ("icem", {"keep_fraction": 1.5}, "keep_fraction"),
        ("mppi", {"temperature": 0.0}, "temperature"),
        ("mppi", {"noise_beta": -1.0}, "noise_beta"),
        ("gd", {"optimizer": "lbfgs"}, "optimizer"),
        ("gd", {"steps": 0}, "steps"),
    ],
)
def test_bad_constructor_arguments_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_planner(name, **kwargs)


def test_cem_sample_zero_is_the_mean_and_the_plan_is_the_final_mean():
    """With topk=1 and a cost that prefers the mean, CEM must keep the initial mean (sample 0)."""
    init = torch.tensor([[0.25, -0.75]])

    def cost_fn(a):
        return (a - init).abs().sum(dim=(1, 2))

    res = build_planner("cem", samples=50, topk=1, iterations=3).plan(
        cost_fn, horizon=1, action_dim=2, low=-torch.ones(2), high=torch.ones(2), init=init, generator=_gen()
    )
    assert torch.equal(res.actions, init) and res.cost == 0.0


def test_icem_population_decays_to_twice_topk_and_carries_elites():
    planner = build_planner("icem", samples=100, topk=10, iterations=8, decay=2.0, keep_fraction=0.3)
    res = planner.plan(_quadratic(torch.zeros(3, 1)), horizon=3, action_dim=1, low=-torch.ones(1),
                       high=torch.ones(1), generator=_gen())  # fmt: skip
    assert res.info["population"][0] == 100
    assert res.info["population"][1] == 50 + 3  # 100 / 2 fresh samples + 3 carried elites
    assert res.info["population"][-1] == 20 + 3
    assert all(b <= a for a, b in zip(res.info["cost"], res.info["cost"][1:]))  # best-so-far never worsens


def test_gd_rejects_a_non_differentiable_cost():
    model = PointModel(dim=1)
    cost_fn = make_cost_fn(model, point_state([0.0]), GoalDistance(point_state([1.0])))  # inference mode
    with pytest.raises(ValueError, match="differentiable=True"):
        build_planner("gd", steps=2).plan(cost_fn, horizon=2, action_dim=1, low=-torch.ones(1),
                                          high=torch.ones(1), generator=_gen())  # fmt: skip


@pytest.mark.parametrize(("beta", "horizon"), [(0.0, 5), (1.0, 5), (2.0, 6), (2.5, 30)])
def test_colored_noise_has_unit_variance_and_smooths_with_beta(beta, horizon):
    noise = colored_noise(beta, 20000, horizon, 2, generator=_gen(), like=torch.zeros(()))
    assert noise.shape == (20000, horizon, 2)
    torch.testing.assert_close(noise.var(0), torch.ones(horizon, 2), atol=0.06, rtol=0)
    increments = (noise[:, 1:] - noise[:, :-1]).pow(2).mean().item()
    if beta == 0:
        assert increments == pytest.approx(2.0, abs=0.06)  # independent steps
    else:
        assert increments < 1.7  # correlated in time
    with pytest.raises(ValueError, match="beta"):
        colored_noise(-1.0, 2, 3, 1, generator=_gen(), like=torch.zeros(()))


def test_colored_noise_substeps_colours_along_env_time():
    """substeps=5: (samples, horizon, 5 * 2) noise whose env actions, read in env order, are one coloured
    sequence of horizon * 5 steps: neighbours inside a planning step are as correlated as across steps."""
    horizon, k, d = 4, 5, 2
    noise = colored_noise(2.0, 20000, horizon, k * d, generator=_gen(), like=torch.zeros(()), substeps=k)
    assert noise.shape == (20000, horizon, k * d)
    torch.testing.assert_close(noise.var(0), torch.ones(horizon, k * d), atol=0.06, rtol=0)
    env = noise.reshape(20000, horizon * k, d)  # the order of LatentWorldModel.to_env_actions
    inc = (env[:, 1:] - env[:, :-1]).pow(2).mean(dim=(0, 2))  # (horizon * k - 1,)
    assert float(inc.max()) < 0.5  # every env-time neighbour pair is strongly correlated
    within = inc[[i for i in range(horizon * k - 1) if (i + 1) % k]].mean()
    across = inc[[i for i in range(horizon * k - 1) if (i + 1) % k == 0]].mean()
    assert float(within) == pytest.approx(float(across), rel=0.25)
    # substeps=1 over the same shape only correlates planning steps: sub-actions are independent
    plain = colored_noise(2.0, 20000, horizon, k * d, generator=_gen(), like=torch.zeros(()))
    plain_env = plain.reshape(20000, horizon * k, d)
    assert float((plain_env[:, 1] - plain_env[:, 0]).pow(2).mean()) == pytest.approx(2.0, abs=0.08)
    with pytest.raises(ValueError, match="substeps"):
        colored_noise(2.0, 2, 3, 5, generator=_gen(), like=torch.zeros(()), substeps=2)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_coloured_noise_along_env_time_still_reaches_the_clamped_optimum(name):
    """substeps=2 (two 2-d env actions per planning action) with coloured noise: the same box-constrained
    optimum as with white noise, and every candidate inside the box."""
    low, high = -torch.ones(4), torch.tensor([1.0, 1.0, 0.5, 0.5])
    target = torch.tensor([[0.3, -0.6, 0.9, 0.1], [-0.2, 0.4, 0.2, -1.5]])
    seen = []

    def cost_fn(actions):
        seen.append(actions.detach().clone())
        return _quadratic(target)(actions)

    beta = {"noise_beta": 1.0} if name == "mppi" else {"beta": 2.0}  # mppi: its default pink noise
    more = {"cem": {}, "icem": {"iterations": 25}, "mppi": {"iterations": 150}}[name]  # correlated samples
    res = _planner(name, substeps=2, **beta, **more).plan(
        cost_fn, horizon=2, action_dim=4, low=low, high=high, generator=_gen()
    )
    torch.testing.assert_close(
        res.actions, torch.maximum(torch.minimum(target, high), low), atol=0.08, rtol=0
    )
    allc = torch.cat([c.reshape(-1, 4) for c in seen])
    assert bool((allc >= low).all()) and bool((allc <= high).all())
    with pytest.raises(ValueError, match="substeps"):
        _planner(name, substeps=3, **beta).plan(
            cost_fn, horizon=2, action_dim=4, low=low, high=high, generator=_gen()
        )


def test_cem_with_white_noise_draws_exactly_dino_wm_samples():
    """beta=0 (the default) keeps CEM's plain torch.randn draws, so its results are unchanged."""
    target = torch.tensor([[0.2, -0.3]] * 3)
    kw = {"horizon": 3, "action_dim": 2, "low": -torch.ones(2), "high": torch.ones(2)}
    a = _planner("cem", iterations=3).plan(_quadratic(target), generator=_gen(4), **kw)
    b = _planner("cem", iterations=3, beta=0.0, substeps=2).plan(_quadratic(target), generator=_gen(4), **kw)
    assert torch.equal(a.actions, b.actions)
    with pytest.raises(ValueError, match="beta"):
        build_planner("cem", beta=-1.0)


@pytest.mark.parametrize("seed", range(5))
def test_cem_return_best_escapes_the_mean_between_two_optima(seed):
    """Every action has two equally good values, +-0.7, with a ridge at 0 between them: the elites split
    across both signs, so the final mean (DINO-WM's plan) sits near the ridges, while ``return_best``
    returns the cheapest sample seen; its reported cost is the best of every iteration's."""

    def cost_fn(a):
        return torch.minimum((a - 0.7).pow(2), (a + 0.7).pow(2)).sum(dim=(1, 2))

    kw = {"horizon": 4, "action_dim": 2, "low": -torch.ones(2), "high": torch.ones(2)}
    planner = {"samples": 100, "topk": 20, "iterations": 5}
    mean = build_planner("cem", **planner).plan(cost_fn, generator=_gen(seed), **kw)
    best = build_planner("cem", return_best=True, **planner).plan(cost_fn, generator=_gen(seed), **kw)
    assert mean.cost > 0.6 and best.cost < 0.4  # seeds 0-9: mean 0.76-1.79, best 0.16-0.35
    assert (
        best.cost
        == pytest.approx(min(best.info["cost"]))
        == pytest.approx(float(cost_fn(best.actions[None])[0]))
    )
    assert mean.info["cost"] == best.info["cost"]  # same draws: the option only changes what is returned


@pytest.mark.parametrize("unclamped", [False, True])
def test_cem_refit_unclamped_refits_the_drawn_samples_and_scores_clamped_ones(unclamped):
    """With every sample an elite (topk = samples) the second iteration's candidates are fully determined
    by the first's draws: the Gaussian is refitted to the drawn samples with ``refit_unclamped`` and to their
    clamped copies without; either way ``cost_fn`` only ever sees actions inside the box."""
    S, H, A = 64, 3, 2
    low, high = -torch.ones(A), torch.ones(A)
    seen: list[torch.Tensor] = []

    def cost_fn(a):
        seen.append(a.clone())
        return -a.sum(dim=(1, 2))  # the optimum is the box corner `high`, so many draws get clamped

    res = build_planner(
        "cem", samples=S, topk=S, iterations=2, var_scale=1.5, refit_unclamped=unclamped
    ).plan(cost_fn, horizon=H, action_dim=A, low=low, high=high, generator=_gen(3))  # fmt: skip
    gen = _gen(3)
    drawn = 1.5 * torch.randn(S, H, A, generator=gen)
    drawn[0] = 0.0  # sample 0 is the initial mean, the middle of the box
    fit = drawn if unclamped else drawn.clamp(-1, 1)
    mean, std = fit.mean(0), fit.std(0, correction=0)
    expect = (mean + std * torch.randn(S, H, A, generator=gen)).clamp(-1, 1)
    expect[0] = mean.clamp(-1, 1)
    torch.testing.assert_close(seen[1], expect)
    # unclamped, the refit keeps the draws' spread (std 1.5); clamped copies cannot spread beyond the box
    assert bool((std > 1).all()) == unclamped
    assert all(bool((c >= low).all() and (c <= high).all()) for c in seen)  # no candidate leaves the box
    assert bool((res.actions >= low).all() and (res.actions <= high).all())
