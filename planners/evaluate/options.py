"""The settings of a goal-reaching evaluation, shared by ``planners eval`` (built from its flags) and the
Python API (:func:`planners.evaluate.evaluate`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from planners.objectives import amp_dtype

#: ``gym.make`` arguments the evaluation sets itself (the budget, the model's image size)
RESERVED_ENV_KWARGS = ("max_episode_steps", "img_size")


@dataclass
class EvalOptions:
    """How to evaluate: pairs and seed, open loop or MPC, the objective, outputs and workers.

    Attributes:
        pairs: start/goal pairs (DINO-WM: 50).
        seed: pair ``i`` uses ``sample_start_goal(seed + i)`` and a planner generator seeded ``seed + i``.
        mpc: re-plan every ``execute`` model steps (warm start) until success or the budget; otherwise
            open loop: plan ``horizon`` steps once and execute them all.
        out: directory for ``results.json``, videos and ``plot.png`` (``None``: write nothing).
        horizon: planning horizon in model steps (DINO-WM: 5).
        execute: model steps executed per MPC re-plan.
        planner_kwargs: constructor arguments when the planner is given by name.
        chunk_size: candidates per model call in the cost function (bounds memory: at DINO-WM's shapes, 32
            keeps a CEM step within 8 GiB on CPU, see ``benchmarks/planning_bench.py``); ``"auto"``: from the
            model's rollout memory per candidate and the free memory
            (:func:`planners.objectives.auto_chunk_size`).
        alpha: weight of the proprio term of the goal distance (DINO-WM: 1 Wall/PushT, 0 PointMaze).
        objective_mode: goal distance on the ``"last"`` predicted frame or on ``"all"`` frames (discounted).
        discount: frame discount of ``objective_mode="all"``.
        budget: env steps per episode (``None``: the env's ``planning_budget``).
        videos: write an mp4 for the first ``videos`` pairs (``None``: every pair; needs ``out``).
        progress: show a progress bar.
        workers: evaluate pairs in this many processes (spawned, one torch thread each; the model is sent
            to each once). Results do not depend on ``workers``: pair ``i`` always uses seed ``seed + i``.
        env_kwargs: extra ``gym.make`` arguments of the env (a protocol variant, e.g. ``{"max_step": 5.0}``
            for ``worldmodels/Wall-v0``); recorded in the results' config.
        amp: ``"bf16"`` / ``"fp16"``: model rollouts under ``torch.autocast`` (see
            :func:`planners.objectives.make_cost_fn`); recorded in the results' config.
    """

    pairs: int = 50
    seed: int = 0
    mpc: bool = False
    out: str | os.PathLike | None = None
    horizon: int = 5
    execute: int = 1
    planner_kwargs: dict[str, Any] = field(default_factory=dict)
    chunk_size: int | Literal["auto"] | None = 32
    alpha: float = 1.0
    objective_mode: Literal["last", "all"] = "last"
    discount: float = 0.9
    budget: int | None = None
    videos: int | None = None
    progress: bool = True
    workers: int = 1
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    amp: str | None = None

    def __post_init__(self) -> None:
        for name in ("pairs", "horizon", "execute", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.chunk_size != "auto" and self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size={self.chunk_size} must be >= 1, 'auto' or None")
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"budget={self.budget} must be >= 1 or None")
        if self.videos is not None and self.videos < 0:
            raise ValueError(f"videos={self.videos} must be >= 0 or None")
        if self.objective_mode not in ("last", "all"):
            raise ValueError(f"objective_mode={self.objective_mode!r}; allowed values: ('last', 'all')")
        if reserved := sorted(set(RESERVED_ENV_KWARGS) & self.env_kwargs.keys()):
            raise ValueError(
                f"env_kwargs: {reserved} are set by the evaluation (budget, the model's img_size)"
            )
        amp_dtype(self.amp)  # checks the name before any pair runs
