"""Scripted behaviour policies over the visual envs: what the data collectors roll out.

:class:`ScriptedPolicy` wraps an env's ``expert_action`` / ``sample_waypoint`` / ``is_success``:

* ``"random"``: uniform over the action space;
* ``"expert"``: toward ``goal_state`` when one is given, else toward random waypoints from
  ``sample_waypoint`` (resampled every ``waypoint_every`` steps or when reached);
* ``"noisy-expert"``: the expert action plus Gaussian noise of std ``noise_std`` (in action units),
  clipped to the action space; with waypoints this gives DINO-WM-like coverage of the state space;
* ``"sticky-random"``: a uniform random action held for a geometric number of steps (mean
  ``hold_steps``): ballistic motion that runs into walls and keeps pushing, the contacts an expert avoids
  and a sampling planner tries all the time.

All randomness comes from the policy's own ``np.random.Generator`` (``seed``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np

PolicyKind = Literal["random", "expert", "noisy-expert", "sticky-random"]
POLICY_KINDS: tuple[str, ...] = get_args(PolicyKind)


class ScriptedPolicy:
    """A seeded scripted policy ``obs -> action`` over one of the visual envs.

    The policy reads the simulator state from ``env.unwrapped`` (``get_state``, ``expert_action``), so
    call it between ``env.reset``/``env.step`` of the same env it was built with.
    """

    def __init__(
        self,
        env: gym.Env,
        kind: PolicyKind,
        noise_std: float = 0.3,
        waypoint_every: int = 25,
        seed: int = 0,
        hold_steps: float = 10.0,
    ) -> None:
        """
        Args:
            env: a ``worldmodels.envs`` env (wrapped or not).
            kind: ``"random"``, ``"expert"``, ``"noisy-expert"`` or ``"sticky-random"``.
            noise_std: std of the Gaussian action noise of ``"noisy-expert"`` (action units, >= 0).
            waypoint_every: steps between waypoint resamples when no goal is given (> 0).
            seed: seed of the policy's own random generator.
            hold_steps: mean number of steps ``"sticky-random"`` holds an action (>= 1).
        """
        if kind not in POLICY_KINDS:
            raise ValueError(f"kind={kind!r} is not supported; allowed values: {POLICY_KINDS}")
        if not noise_std >= 0:
            raise ValueError(f"noise_std={noise_std!r} must be >= 0")
        if not hold_steps >= 1:
            raise ValueError(f"hold_steps={hold_steps!r} must be >= 1")
        if waypoint_every <= 0:
            raise ValueError(f"waypoint_every={waypoint_every!r} must be > 0")
        self.env = env
        self.base = env.unwrapped
        self.kind = kind
        self.noise_std = float(noise_std)
        self.waypoint_every = int(waypoint_every)
        self.hold_steps = float(hold_steps)
        self._held: np.ndarray | None = None
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise ValueError(f"env.action_space must be a gymnasium Box, got {type(space).__name__}")
        self.low = space.low.astype(np.float32)
        self.high = space.high.astype(np.float32)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.goal_state: np.ndarray | None = None
        self.waypoint: np.ndarray | None = None
        self._steps_on_waypoint = 0

    def reset(self, seed: int | None = None, goal_state: np.ndarray | None = None) -> None:
        """Start a new episode: optionally reseed, and fix ``goal_state`` (else follow random waypoints)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.goal_state = None if goal_state is None else np.asarray(goal_state, dtype=np.float64)
        self.waypoint = None
        self._steps_on_waypoint = 0
        self._held = None

    def _target(self) -> np.ndarray:
        if self.goal_state is not None:
            return self.goal_state
        reached = self.waypoint is not None and self.base.is_success(self.base.get_state(), self.waypoint)
        if self.waypoint is None or reached or self._steps_on_waypoint >= self.waypoint_every:
            self.waypoint = self.base.sample_waypoint(self.rng)
            self._steps_on_waypoint = 0
        self._steps_on_waypoint += 1
        return self.waypoint

    def __call__(self, obs: Any = None) -> np.ndarray:
        """The action for the env's current state, float32 ``(A,)`` inside the action space (``obs`` unused)."""
        if self.kind == "random":
            return self.rng.uniform(self.low, self.high).astype(np.float32)
        if self.kind == "sticky-random":
            if self._held is None or self.rng.random() < 1.0 / self.hold_steps:
                self._held = self.rng.uniform(self.low, self.high).astype(np.float32)
            return self._held.copy()
        action = np.asarray(self.base.expert_action(self._target()), dtype=np.float32)
        if self.kind == "noisy-expert":
            action = action + self.rng.normal(0.0, self.noise_std, size=action.shape).astype(np.float32)
        return np.clip(action, self.low, self.high).astype(np.float32)
