"""DINO-WM's 2D wall navigation task, drawn with numpy.

A point agent (a disk of radius :data:`AGENT_RADIUS`) moves in a square arena of :data:`ARENA` = 64
units split by a vertical wall of width :data:`WALL_WIDTH` with one door. Coordinates: ``x`` grows to the
right (image columns), ``y`` grows downward (image rows); the arena is ``[0, 64]^2`` and pixel ``(i, j)`` of
an ``S x S`` image covers ``[j, j + 1] x [i, i + 1] * 64 / S``.

* :class:`WallEnv` (``worldmodels/Wall-v0``): a fixed layout (wall at x=32, door centred at y=32, 12 high, as DINO-WM's door near the middle);
  state ``(x, y)``.
* :class:`WallRandomEnv` (``worldmodels/WallRandom-v0``): wall x-position, door centre and door height are
  drawn per episode; the layout is part of the state ``(x, y, wall_x, door_center, door_height)``.

Action: ``[-1, 1]^2``, the displacement of one step in units of :data:`MAX_STEP` (2.5 units per axis). The
motion is split into 4 sub-steps; a sub-step that would hit the wall or leave the arena slides along the
obstacle (keeps the free axis) or stops. Success (DINO-WM): distance to the goal below 4.5 on their
65-unit arena, scaled to ours: ``4.5 * 64 / 65`` = 4.43 units.

The dynamics are written once, in :func:`wall_step` (vectorised over a batch, numpy or torch): the env
calls it with one agent, the exact-dynamics model :class:`worldmodels.models.oracle.WallOracleModel` with
a batch of planning candidates (torch, so gradient planners can differentiate through it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from worldmodels.envs.base import VisualGoalEnv

ARENA = 64.0
WALL_WIDTH = 4.0
AGENT_RADIUS = 2.5
MAX_STEP = 2.5
N_SUBSTEPS = 4
#: DINO-WM's 4.5 on a 65-unit arena, scaled to the 64-unit arena
SUCCESS_DISTANCE = 4.5 * ARENA / 65.0
#: half-width of the x-band where the agent centre touches the wall
BAND_HALF = WALL_WIDTH / 2 + AGENT_RADIUS
#: range of agent-centre coordinates inside the arena
POS_LO, POS_HI = AGENT_RADIUS, ARENA - AGENT_RADIUS
#: fixed layout of ``Wall-v0``: (wall_x, door_center, door_height)
FIXED_LAYOUT = (32.0, 32.0, 12.0)
#: ranges of the ``WallRandom-v0`` layout: wall_x, door_center, door_height
RANDOM_LAYOUT_RANGES = ((20.0, 44.0), (14.0, 50.0), (10.0, 18.0))
#: bound on ``pair_margin``: each side of every layout keeps room for a start (the narrowest side, wall at
#: x=20, leaves agent-centre x in [2.5, 15.5], so a margin must stay below 6.5)
MAX_PAIR_MARGIN = 6.0

BACKGROUND = np.array([0, 0, 0], np.uint8)
WALL_COLOR = np.array([230, 230, 230], np.uint8)
AGENT_COLOR = np.array([255, 60, 60], np.uint8)
#: the moves a sub-step tries in order: the full move, then sliding along x, then along y
SUBSTEP_TRIES = ((1.0, 1.0), (1.0, 0.0), (0.0, 1.0))

#: ``(wall_x, door_center, door_height)``: a tuple or a ``(3,)`` array
Layout = tuple[float, float, float] | np.ndarray


def door_free(layout: Layout) -> tuple[float, float]:
    """Interval of agent-centre y positions that pass through the door of ``(wall_x, door_center,
    door_height)``."""
    _, center, height = layout
    return center - height / 2 + AGENT_RADIUS, center + height / 2 - AGENT_RADIUS


def is_free(pos: Any, layout: Layout) -> Any:
    """Whether agent centres ``pos (..., 2)`` (numpy or torch) inside the arena (``[POS_LO, POS_HI]^2``, which
    every caller ensures: the moves are clipped to it, the samplers draw from it) are clear of the wall or
    in its door: a bool array ``(...)``."""
    door_lo, door_hi = door_free(layout)
    x, y = pos[..., 0], pos[..., 1]
    return (abs(x - layout[0]) >= BAND_HALF) | ((y >= door_lo) & (y <= door_hi))


def _array_ops(a: Any) -> tuple[Any, Any, Any]:
    """``(stack, where, const)`` of the library of ``a``: numpy, or torch for a tensor (torch is imported
    only when a tensor comes in, so the env does not import it); ``const(values)`` is an array of ``a``'s
    dtype and device."""
    if isinstance(a, np.ndarray):
        return np.array, np.where, lambda values: np.asarray(values, dtype=a.dtype)
    import torch

    return torch.stack, torch.where, a.new_tensor


def wall_step(
    pos: Any, action: Any, layout: Layout = FIXED_LAYOUT, *, max_step: float = MAX_STEP, slide: bool = True
) -> Any:
    """One env step of the Wall dynamics for a batch: agent centres ``pos (..., 2)`` and actions
    ``action (..., 2)`` (clipped to ``[-1, 1]``), both numpy arrays or both torch tensors of one dtype, in
    the layout ``(wall_x, door_center, door_height)`` shared by the batch -> next centres ``(..., 2)``.

    The displacement ``action * max_step`` is taken in :data:`N_SUBSTEPS` equal sub-steps; each moves to
    the first free position (:func:`is_free`) among :data:`SUBSTEP_TRIES` clipped to the arena (with
    ``slide=False`` only the full move) or stays. Most steps touch nothing: when the full move of every
    sub-step is free for every row, those moves are the result and the other tries are never built (the
    same numbers and gradients as the loop, which runs otherwise). Gradients flow through the moves taken.
    """
    stack, where, const = _array_ops(pos)
    delta = action.clip(-1.0, 1.0) * max_step / N_SUBSTEPS
    path = [(pos + delta).clip(POS_LO, POS_HI)]
    for _ in range(N_SUBSTEPS - 1):
        path.append((path[-1] + delta).clip(POS_LO, POS_HI))
    if is_free(stack(path), layout).all():
        return path[-1]
    tries = const(SUBSTEP_TRIES if slide else SUBSTEP_TRIES[:1])  # (K, 2)
    moves = delta[..., None, :] * tries  # (..., K, 2)
    for _ in range(N_SUBSTEPS):
        cand = (pos[..., None, :] + moves).clip(POS_LO, POS_HI)
        free = is_free(cand, layout)
        moved = pos
        for k in reversed(range(len(tries))):  # the first free try wins
            moved = where(free[..., k, None], cand[..., k, :], moved)
        pos = moved
    return pos


class WallEnv(VisualGoalEnv):
    """Point navigation through the door of a fixed wall (DINO-WM "Wall"); see the module docstring."""

    planning_budget: ClassVar[int] = 50
    random_layout: ClassVar[bool] = False

    def __init__(
        self,
        img_size: int = 64,
        render_mode: str | None = None,
        *,
        max_step: float = MAX_STEP,
        slide: bool = True,
        pair_margin: float = 0.0,
    ) -> None:
        """
        Args:
            img_size: side ``S`` of the pixel observation ``(S, S, 3)``, one of ``ALLOWED_IMG_SIZES``.
            render_mode: ``None`` or ``"rgb_array"``.
            max_step: displacement per axis of a full action (the data, models and README numbers use the
                default, :data:`MAX_STEP`); other values are protocol variants, e.g. a faster agent.
            slide: a sub-step that hits the wall or the border keeps its free axis (default); ``False``
                stops it at the last free position, as DINO-WM's DotWall stops the dot at the contact.
            pair_margin: extra distance that ``sample_start_goal`` keeps from the border and the wall
                (0: uniform over the free space of each side; 3.35: DINO-WM's ``2 * dot_std`` padding).
        """
        super().__init__(
            img_size=img_size, proprio_dim=2, render_mode=render_mode, proprio_bounds=(0.0, ARENA)
        )
        if not max_step > 0:
            raise ValueError(f"max_step={max_step} must be > 0")
        if not 0 <= pair_margin < MAX_PAIR_MARGIN:
            raise ValueError(f"pair_margin={pair_margin} must be in [0, {MAX_PAIR_MARGIN})")
        self.max_step, self.slide, self.pair_margin = float(max_step), bool(slide), float(pair_margin)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_dim = 5 if self.random_layout else 2
        self._pos = np.array([ARENA / 4, ARENA / 2])
        self._layout = np.array(FIXED_LAYOUT)
        centres = (np.arange(self.img_size) + 0.5) * ARENA / self.img_size
        self._grid_x = centres[None, :]
        self._grid_y = centres[:, None]
        self._background_cache: dict[tuple[float, ...], np.ndarray] = {}

    # ------------------------------------------------------------------ geometry
    def _in_band(self, pos: np.ndarray, layout: np.ndarray, margin: float = 0.0) -> bool:
        """Whether the agent centre is within ``margin`` of the x-band where it touches the wall."""
        return abs(pos[0] - layout[0]) < BAND_HALF + margin

    def _sample_free(
        self, rng: np.random.Generator, layout: np.ndarray, side: int = 0, margin: float = 0.0
    ) -> np.ndarray:
        """Uniform free position; ``side`` -1 / +1 restricts to left / right of the wall (outside the door),
        at least ``margin`` from the border and from the wall's band."""
        lo, hi = POS_LO + margin, POS_HI - margin
        while True:
            pos = rng.uniform(lo, hi, size=2)
            if not is_free(pos, layout):
                continue
            if side == 0 or (not self._in_band(pos, layout, margin) and np.sign(pos[0] - layout[0]) == side):
                return pos

    def _sample_layout(self, rng: np.random.Generator) -> np.ndarray:
        if not self.random_layout:
            return np.array(FIXED_LAYOUT)
        return np.array([rng.uniform(lo, hi) for lo, hi in RANDOM_LAYOUT_RANGES])

    def _split(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        state = self._check_state(state)
        layout = state[2:5] if self.random_layout else np.array(FIXED_LAYOUT)
        return state[:2], layout

    def _join(self, pos: np.ndarray, layout: np.ndarray) -> np.ndarray:
        return np.concatenate([pos, layout]) if self.random_layout else pos.astype(np.float64).copy()

    # ------------------------------------------------------------------ contract
    def get_state(self) -> np.ndarray:
        """``(x, y)`` (Wall) or ``(x, y, wall_x, door_center, door_height)`` (WallRandom), float64."""
        return self._join(self._pos, self._layout)

    def set_state(self, state: np.ndarray) -> None:
        pos, layout = self._split(state)
        self._pos, self._layout = pos.copy(), layout.copy()

    def _proprio(self) -> np.ndarray:
        return self._pos.astype(np.float32)

    def _reset_state(self) -> None:
        self._layout = self._sample_layout(self.np_random)
        self._pos = self._sample_free(self.np_random, self._layout)

    def _apply_action(self, action: np.ndarray) -> None:
        self._pos = wall_step(
            self._pos,
            action.astype(np.float64),
            self._layout,
            max_step=self.max_step,
            slide=self.slide,
        )

    def _background(self) -> np.ndarray:
        key = tuple(self._layout.tolist())
        if key not in self._background_cache:
            if len(self._background_cache) > 64:
                self._background_cache.clear()
            wall_x, center, height = self._layout
            in_wall = np.abs(self._grid_x - wall_x) < WALL_WIDTH / 2
            in_door = np.abs(self._grid_y - center) < height / 2
            mask = in_wall & ~in_door
            img = np.empty((self.img_size, self.img_size, 3), np.uint8)
            img[:] = BACKGROUND
            img[mask] = WALL_COLOR
            self._background_cache[key] = img
        return self._background_cache[key]

    def _render_current(self) -> np.ndarray:
        img = self._background().copy()
        x, y = self._pos
        disk = (self._grid_x - x) ** 2 + (self._grid_y - y) ** 2 <= AGENT_RADIUS**2
        img[disk] = AGENT_COLOR
        return img

    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Agent within :data:`SUCCESS_DISTANCE` (4.43 units) of the goal's agent position."""
        pos, _ = self._split(state)
        goal, _ = self._split(goal_state)
        return bool(np.linalg.norm(pos - goal) < SUCCESS_DISTANCE)

    def sample_start_goal(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """DINO-WM protocol: start and goal on opposite sides of the wall (same layout), uniform otherwise."""
        rng = np.random.default_rng(seed)
        layout = self._sample_layout(rng)
        side = int(rng.choice([-1, 1]))
        start = self._sample_free(rng, layout, side, self.pair_margin)
        goal = self._sample_free(rng, layout, -side, self.pair_margin)
        return self._join(start, layout), self._join(goal, layout)

    def _expert_target(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        layout = self._layout
        wall_x, center, _ = layout
        exit_dx = BAND_HALF + 1.0
        pos_band, goal_band = self._in_band(pos, layout), self._in_band(goal, layout)
        same_side = not pos_band and not goal_band and np.sign(pos[0] - wall_x) == np.sign(goal[0] - wall_x)
        if same_side or (pos_band and goal_band):
            return goal
        if pos_band:
            return np.array([wall_x + np.sign(goal[0] - wall_x) * exit_dx, center])
        door_lo, door_hi = door_free(layout)
        if door_lo + 0.5 <= pos[1] <= door_hi - 0.5:
            return goal if goal_band else np.array([wall_x + np.sign(goal[0] - wall_x) * exit_dx, center])
        return np.array([wall_x + np.sign(pos[0] - wall_x) * exit_dx, center])

    def expert_action(self, goal_state: np.ndarray) -> np.ndarray:
        """Straight to the goal on the same side; otherwise to the door, through it, then to the goal."""
        goal, _ = self._split(goal_state)
        target = self._expert_target(self._pos, goal)
        return np.clip((target - self._pos) / self.max_step, -1.0, 1.0).astype(np.float32)

    def sample_waypoint(self, rng: np.random.Generator) -> np.ndarray:
        """A uniform free position in the current layout."""
        return self._join(self._sample_free(rng, self._layout), self._layout)


class WallRandomEnv(WallEnv):
    """Wall task with the wall position and the door position/size drawn per episode (part of the state)."""

    random_layout: ClassVar[bool] = True
