"""Planners over any world model: CEM, iCEM, MPPI, gradient-based, MPC; objectives; evaluation.

Every planner has ``plan(cost_fn, *, horizon, action_dim, low, high, init=None, generator) -> PlanResult``
with ``cost_fn(actions (S, horizon, action_dim)) -> (S,)``; :class:`~planners.mpc.MPC` wraps any of them.
"""

from __future__ import annotations

from typing import Any

from planners.base import Planner, PlanResult

PLANNERS = ("cem", "icem", "mppi", "gd")


def build_planner(name: str, **kwargs: Any) -> Planner:
    """Build a planner by name (``cem``, ``icem``, ``mppi``, ``gd``) with its keyword arguments."""
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


__all__ = ["PLANNERS", "PlanResult", "Planner", "build_planner"]
