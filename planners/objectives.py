"""Objectives ``objective(pred_state, actions (B, H, A)) -> (B,)`` and chunked cost functions.

An objective scores the states a world model predicted for ``B`` candidate action sequences. Predicted
states are duck-typed: goal distances read ``pred.visual (B, H, N, D)`` and ``pred.proprio (B, H, P)``
(or ``None``), e.g. :class:`worldmodels.models.latent_world_model.LatentState`; returns read
``pred.reward (B, H)``. :func:`make_cost_fn` binds a model, its encoded start state and an objective into
the ``cost_fn(actions) -> (B,)`` that planners minimise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from worldmodels.api import CostFn, Objective, WorldModel

#: ``make_cost_fn(amp=...)`` names
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def amp_dtype(amp: str | None) -> torch.dtype | None:
    """The autocast dtype named by ``amp`` (``None``: no autocast); an unknown name is a ``ValueError``."""
    if amp is None:
        return None
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp={amp!r}; allowed values: {sorted(AMP_DTYPES)} or None")
    return AMP_DTYPES[amp]


def float32_state(pred: Any) -> Any:
    """A predicted state with its floating tensor fields cast to float32 (dataclasses and plain tensors)."""
    if isinstance(pred, Tensor):
        return pred.float() if pred.is_floating_point() else pred
    if dataclasses.is_dataclass(pred):
        return dataclasses.replace(
            pred, **{f.name: float32_state(getattr(pred, f.name)) for f in dataclasses.fields(pred)}
        )
    return pred


class GoalDistance:
    """Distance to a goal in the model's latent space (DINO-WM): mean squared error between predicted and
    goal visual features, plus ``alpha`` times the mean squared error between predicted and goal proprio
    (both as the model represents them, e.g. normalised proprio).

    Args:
        goal: encoded goal with ``visual (1, T, N, D)`` and ``proprio (1, T, P)`` or ``None`` (from
            ``model.encode`` of the goal observation; its last frame is the goal).
        alpha: weight of the proprio term (DINO-WM: 1 for Wall/PushT, 0 for PointMaze).
        mode: ``"last"``: the last predicted frame only (DINO-WM); ``"all"``: every predicted frame,
            frame ``h`` of ``H`` weighted ``discount ** (H - 1 - h)`` (the last weighs 1), normalised by
            the sum of the weights.
        discount: frame discount of ``mode="all"``, in (0, 1].
    """

    def __init__(
        self, goal: Any, alpha: float = 1.0, mode: Literal["last", "all"] = "last", discount: float = 0.9
    ):
        if mode not in ("last", "all"):
            raise ValueError(f"mode={mode!r}; allowed values: 'last', 'all'")
        if alpha < 0:
            raise ValueError(f"alpha={alpha} must be >= 0")
        if not 0 < discount <= 1:
            raise ValueError(f"discount={discount} must be in (0, 1]")
        if getattr(goal, "visual", None) is None:
            raise ValueError("goal must have a 'visual' tensor (1, T, N, D), e.g. model.encode(goal_obs)")
        self.goal_visual = goal.visual[:, -1:]
        proprio = getattr(goal, "proprio", None)
        self.goal_proprio = None if proprio is None else proprio[:, -1:]
        self.alpha, self.mode, self.discount = alpha, mode, discount

    def per_frame(self, pred: Any) -> Tensor:
        """``(B, H)``: the cost of every predicted frame."""
        goal_visual = self.goal_visual.to(pred.visual)
        cost = (pred.visual - goal_visual).pow(2).mean(dim=(-1, -2))
        proprio = getattr(pred, "proprio", None)
        if self.alpha and proprio is not None and self.goal_proprio is not None:
            cost = cost + self.alpha * (proprio - self.goal_proprio.to(proprio)).pow(2).mean(-1)
        return cost

    def __call__(self, pred: Any, actions: Tensor) -> Tensor:
        """``(B,)`` goal distance of each candidate's predicted frames."""
        cost = self.per_frame(pred)
        if self.mode == "last":
            return cost[:, -1]
        h = cost.shape[1]
        w = self.discount ** torch.arange(h - 1, -1, -1, device=cost.device, dtype=cost.dtype)
        return (cost * w).sum(1) / w.sum()


class NegativeReturn:
    """``-sum_h gamma^h r_h``: for models that predict rewards.

    Args:
        gamma: discount in (0, 1].
        reward_fn: ``reward_fn(pred, actions) -> (B, H)``; by default ``pred.reward``.
    """

    def __init__(self, gamma: float = 0.99, reward_fn: Callable[[Any, Tensor], Tensor] | None = None):
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma={gamma} must be in (0, 1]")
        self.gamma, self.reward_fn = gamma, reward_fn

    def __call__(self, pred: Any, actions: Tensor) -> Tensor:
        """``(B,)`` negative discounted predicted return."""
        if self.reward_fn is not None:
            r = self.reward_fn(pred, actions)
        elif getattr(pred, "reward", None) is not None:
            r = pred.reward
        else:
            raise ValueError(
                "predicted states carry no 'reward'; pass reward_fn= or use a model that predicts rewards"
            )
        w = self.gamma ** torch.arange(r.shape[1], device=r.device, dtype=r.dtype)
        return -(r * w).sum(1)


def memory_budget(device: torch.device) -> int:
    """Bytes a chunk of rollouts may take: half the free memory of a CUDA device, else a quarter of the
    available RAM (at most 4 GiB: on a CPU larger chunks bring no speed, see docs/speed.md)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    import psutil

    return min(psutil.virtual_memory().available // 4, 4 * 2**30)


def auto_chunk_size(model: WorldModel, state: Any, horizon: int, device: torch.device) -> int | None:
    """Candidates per model call from the model's rollout memory per candidate and :func:`memory_budget`
    (``None``: the model does not say, so all candidates at once)."""
    per_sample = getattr(model, "rollout_bytes_per_sample", None)
    if per_sample is None:
        return None
    return max(1, memory_budget(device) // max(1, per_sample(state, horizon)))


def make_cost_fn(
    model: WorldModel,
    state: Any,
    objective: Objective,
    *,
    chunk_size: int | Literal["auto"] | None = None,
    differentiable: bool = False,
    amp: str | None = None,
    generator: torch.Generator | None = None,
) -> CostFn:
    """Bind a model, its encoded state and an objective into a planner's cost function.

    ``cost_fn(actions (S, H, A)) -> (S,)`` rolls the model out from ``state`` (batch 1, encoded once and
    broadcast by ``model.rollout``) and scores the prediction with ``objective``, ``chunk_size`` candidates
    at a time so peak memory is bounded by the chunk, not by ``S``.

    Args:
        model: any :class:`worldmodels.api.WorldModel`.
        state: ``model.encode(...)`` of the current observation history (batch 1); for
            ``differentiable=True`` encode it under ``torch.no_grad()``, not ``torch.inference_mode()``.
        objective: ``objective(pred_state, actions) -> (B,)``.
        chunk_size: candidates per model call (``None``: all at once; ``"auto"``: as many as fit
            :func:`memory_budget` by the model's ``rollout_bytes_per_sample``, see :func:`auto_chunk_size`).
        differentiable: keep the autograd graph (gradient planners); otherwise the rollouts run under
            ``torch.inference_mode()``.
        amp: ``"bf16"`` or ``"fp16"``: roll out under ``torch.autocast`` of that dtype on the actions'
            device (tensor cores on a GPU; the KV cache is half the size); the objective is computed in
            float32 and the costs are float32. ``None``: the model's own precision.
        generator: for a :class:`~worldmodels.api.StochasticWorldModel` (a ``rollout`` that takes
            ``generator``): every rollout draws from it, so a plan is reproducible from its seed. Refused for
            a deterministic model (it would be silently ignored).
    """
    if (
        chunk_size is not None
        and chunk_size != "auto"
        and (not isinstance(chunk_size, int) or chunk_size < 1)
    ):
        raise ValueError(f"chunk_size={chunk_size!r} must be >= 1, 'auto' or None")
    auto: dict[tuple[int, torch.device], int | None] = {}  # (horizon, device) -> chunk
    dtype = amp_dtype(amp)
    kwargs: dict[str, Any] = {}
    if generator is not None:
        if "generator" not in inspect.signature(model.rollout).parameters:
            raise ValueError(
                f"generator= given, but {type(model).__name__}.rollout is deterministic (no generator)"
            )
        kwargs["generator"] = generator

    def rollout(a: Tensor) -> Any:
        if dtype is None:
            return model.rollout(state, a, **kwargs)
        with torch.autocast(a.device.type, dtype=dtype):
            pred = model.rollout(state, a, **kwargs)
        return float32_state(pred)

    def cost_fn(actions: Tensor) -> Tensor:
        if actions.ndim != 3:
            raise ValueError(f"actions has shape {tuple(actions.shape)}, expected (S, horizon, action_dim)")
        size = chunk_size
        if size == "auto":
            key = (actions.shape[1], actions.device)
            if key not in auto:
                auto[key] = auto_chunk_size(model, state, actions.shape[1], actions.device)
            size = auto[key]
        size = size or actions.shape[0]
        ctx = contextlib.nullcontext() if differentiable else torch.inference_mode()
        with ctx:
            costs = torch.cat([objective(rollout(a), a) for a in actions.split(size)])
        return costs if differentiable else costs.clone()

    return cost_fn
