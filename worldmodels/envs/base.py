"""The base class of every visual environment in :mod:`worldmodels.envs`.

:class:`VisualGoalEnv` implements the parts of the contract (see ``worldmodels/envs/__init__.py``) that do
not depend on the simulator: argument checks, ``reset`` options, the observation dict, the optional goal
(reward 1 and ``terminated`` on success) and ``render_state``/``obs_from_state`` on top of the
simulator-specific ``get_state``/``set_state``/``render``. A subclass fills in the abstract methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: image sizes every visual env accepts (``img_size``)
ALLOWED_IMG_SIZES: tuple[int, ...] = (32, 48, 64, 96, 128, 224)

#: keys accepted in ``reset(options=...)``
RESET_OPTION_KEYS: tuple[str, ...] = ("state", "goal_state")


def check_img_size(img_size: int) -> int:
    """Return ``img_size`` if it is one of :data:`ALLOWED_IMG_SIZES`, else raise ``ValueError``."""
    if (
        isinstance(img_size, bool)
        or not isinstance(img_size, int | np.integer)
        or img_size not in ALLOWED_IMG_SIZES
    ):
        raise ValueError(f"img_size={img_size!r} is not supported; allowed values: {ALLOWED_IMG_SIZES}")
    return int(img_size)


class VisualGoalEnv(gym.Env, ABC):
    """A Gymnasium env with pixel + proprio observations, an explicit simulator state and goal helpers.

    Observations are ``{"pixels": uint8 (S, S, 3), "proprio": float32 (P,)}``. ``reset`` accepts
    ``options={"state": np.ndarray, "goal_state": np.ndarray}`` (both optional): start from a given full
    simulator state, and/or set a goal state; with a goal, the reward is 1.0 and the episode terminates
    once :meth:`is_success` holds, otherwise the reward is 0.0 and the episode never terminates.

    Subclasses set ``action_space``, ``proprio_dim``, ``state_dim`` and implement the abstract methods.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    #: env steps allowed in the planning evaluation (the scripted expert reaches >= 90% of goals in it)
    planning_budget: ClassVar[int]
    #: size of the full simulator state returned by :meth:`get_state`
    state_dim: int

    def __init__(
        self,
        img_size: int,
        proprio_dim: int,
        render_mode: str | None,
        proprio_bounds: tuple[float, float] = (-np.inf, np.inf),
    ) -> None:
        """
        Args:
            img_size: side ``S`` of the square pixel observation, one of :data:`ALLOWED_IMG_SIZES`.
            proprio_dim: size ``P`` of the proprio vector.
            render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns the current ``(S, S, 3)`` image).
            proprio_bounds: ``(low, high)`` of every proprio entry in the observation space.
        """
        self.img_size = check_img_size(img_size)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; allowed values: (None, 'rgb_array')"
            )
        self.render_mode = render_mode
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, (self.img_size, self.img_size, 3), np.uint8),
                "proprio": spaces.Box(*proprio_bounds, (proprio_dim,), np.float32),
            }
        )
        self.goal_state: np.ndarray | None = None

    # ------------------------------------------------------------------ simulator-specific parts
    @abstractmethod
    def get_state(self) -> np.ndarray:
        """The full simulator state, float64 ``(state_dim,)``."""

    @abstractmethod
    def set_state(self, state: np.ndarray) -> None:
        """Set the full simulator state ``(state_dim,)`` (as returned by :meth:`get_state`)."""

    @abstractmethod
    def _render_current(self) -> np.ndarray:
        """Image of the current state, uint8 ``(S, S, 3)``."""

    @abstractmethod
    def _proprio(self) -> np.ndarray:
        """Proprio of the current state, float32 ``(P,)``."""

    @abstractmethod
    def _reset_state(self) -> None:
        """Put the simulator into a random initial state drawn from ``self.np_random``."""

    @abstractmethod
    def _apply_action(self, action: np.ndarray) -> None:
        """Advance the simulator by one env step under a validated float32 action."""

    @abstractmethod
    def is_success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Whether ``state`` counts as reaching ``goal_state`` (DINO-WM's criterion for this task)."""

    @abstractmethod
    def sample_start_goal(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A reachable ``(start_state, goal_state)`` pair for the planning evaluation, deterministic in ``seed``."""

    @abstractmethod
    def expert_action(self, goal_state: np.ndarray) -> np.ndarray:
        """A scripted controller's float32 action from the current state toward ``goal_state``."""

    @abstractmethod
    def sample_waypoint(self, rng: np.random.Generator) -> np.ndarray:
        """A random state reachable from the current one (a target for the noisy-expert collector)."""

    # ------------------------------------------------------------------ shared parts
    def _check_state(self, state: np.ndarray, name: str = "state") -> np.ndarray:
        arr = np.asarray(state, dtype=np.float64)
        expected = (self.state_dim,)
        if arr.shape != expected or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be a finite array of shape {expected}, got shape {arr.shape}")
        return arr

    def _check_action(self, action: np.ndarray) -> np.ndarray:
        arr = np.asarray(action)
        expected = self.action_space.shape
        if arr.shape != expected or not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
            raise ValueError(
                f"action must be a finite numeric array of shape {expected}, got shape {arr.shape} dtype {arr.dtype}"
            )
        return np.clip(arr.astype(np.float32), self.action_space.low, self.action_space.high)

    def _obs(self) -> dict[str, np.ndarray]:
        return {"pixels": self._render_current(), "proprio": self._proprio().astype(np.float32)}

    def obs_from_state(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Observation ``{"pixels" (S, S, 3) uint8, "proprio" (P,) float32}`` of ``state``; the current state is kept."""
        saved = self.get_state()
        try:
            self.set_state(state)
            return self._obs()
        finally:
            self.set_state(saved)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Image uint8 ``(S, S, 3)`` of ``state`` without disturbing the current state."""
        return self.obs_from_state(state)["pixels"]

    def render(self) -> np.ndarray:
        """The current image, uint8 ``(S, S, 3)``."""
        return self._render_current()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTION_KEYS))
        if unknown:
            raise ValueError(f"unknown reset option {unknown[0]!r}; allowed keys: {RESET_OPTION_KEYS}")
        goal = options.get("goal_state")
        self.goal_state = None if goal is None else self._check_state(goal, "goal_state")
        if options.get("state") is not None:
            self.set_state(self._check_state(options["state"]))
        else:
            self._reset_state()
        return self._obs(), self._info()

    def _info(self) -> dict[str, Any]:
        if self.goal_state is None:
            return {}
        return {"is_success": bool(self.is_success(self.get_state(), self.goal_state))}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self._apply_action(self._check_action(action))
        info = self._info()
        success = info.get("is_success", False)
        return self._obs(), float(success), success, False, info
