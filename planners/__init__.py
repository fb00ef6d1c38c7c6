"""Planners over any world model: CEM, iCEM, MPPI, gradient-based, MPC; objectives; evaluation.

Every planner has ``plan(cost_fn, *, horizon, action_dim, low, high, init=None, generator) -> PlanResult``
with ``cost_fn(actions (S, horizon, action_dim)) -> (S,)``; :class:`~planners.mpc.MPC` wraps any of them;
:func:`~planners.objectives.make_cost_fn` turns a world model, its encoded state and an objective into a
``cost_fn``; :func:`planners.evaluate.evaluate` runs DINO-WM's goal-reaching evaluation
(``planners eval`` on the command line).
"""

from __future__ import annotations

from typing import Any

from planners.base import Planner, PlanResult
from planners.mpc import MPC, MPCResult
from planners.objectives import GoalDistance, NegativeReturn, make_cost_fn

#: names accepted by :func:`build_planner`
PLANNERS = ("cem", "icem", "mppi", "gd")


def build_planner(name: str, **kwargs: Any) -> Planner:
    """Build a planner by name (``cem``, ``icem``, ``mppi``, ``gd``) with its constructor's keyword
    arguments (:class:`~planners.cem.CEM`, :class:`~planners.icem.ICEM`, :class:`~planners.mppi.MPPI`,
    :class:`~planners.gd.GradientPlanner`)."""
    if name == "cem":
        from planners.cem import CEM

        return CEM(**kwargs)
    if name == "icem":
        from planners.icem import ICEM

        return ICEM(**kwargs)
    if name == "mppi":
        from planners.mppi import MPPI

        return MPPI(**kwargs)
    if name == "gd":
        from planners.gd import GradientPlanner

        return GradientPlanner(**kwargs)
    raise ValueError(f"planner {name!r} is not known; allowed values: {PLANNERS}")


__all__ = [
    "MPC",
    "PLANNERS",
    "GoalDistance",
    "MPCResult",
    "NegativeReturn",
    "PlanResult",
    "Planner",
    "build_planner",
    "make_cost_fn",
]
