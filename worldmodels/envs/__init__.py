"""Gymnasium environments for world-model planning, registered on import under ``worldmodels/``.

===================================  =================================================  =========  ======
id                                   what                                               max steps  budget
===================================  =================================================  =========  ======
``worldmodels/Wall-v0``              DINO-WM 2D wall + door navigation (numpy drawn)    50         50
``worldmodels/WallRandom-v0``        same, wall x / door position + size per episode    50         50
``worldmodels/PointMazeUMaze-v0``    gymnasium-robotics ``PointMaze_UMaze-v3``, top     100        150
``worldmodels/PointMazeMedium-v0``   gymnasium-robotics ``PointMaze_Medium-v3``, top    100        250
``worldmodels/Reacher-v0``           MuJoCo ``Reacher-v5`` model, top view              50         50
``worldmodels/PushT-v0``             ``gym_pusht`` (extra ``[pusht]``), relative act.   200        200
===================================  =================================================  =========  ======

``max steps`` is the registered ``max_episode_steps``, the data-collection episode length (DINO-WM's
data: Wall 1920 x 50 steps, PointMaze 2000 x 100, Reacher 50, PushT 100-300, so 200). ``budget`` is the
class attribute ``planning_budget``: env steps allowed in the planning evaluation, chosen so the scripted
expert reaches >= 90% of ``sample_start_goal`` pairs (measured over 50 pairs: 100% on Wall, WallRandom,
PointMaze UMaze/Medium (the ball's 5 m/s speed limit needs up to ~120 / ~200 steps across the maze) and
Reacher; PushT's expert only moves the agent and reaches 56%, see ``benchmarks/envs_speed.py``).

Contract of every env (what data collectors, planners and the demo code against)
--------------------------------------------------------------------------------
* Constructor kwargs ``img_size: int = 64`` (one of :data:`ALLOWED_IMG_SIZES`, else ``ValueError``) and
  ``render_mode: None | "rgb_array"``; ``render()`` returns the current image ``(S, S, 3)`` uint8.
* ``observation_space = Dict({"pixels": Box(0, 255, (S, S, 3), uint8), "proprio": Box(float32, (P,))})``;
  ``action_space`` a float32 ``Box`` in ``[-1, 1]^A``. A wrong action shape / non-numeric / non-finite
  action raises ``ValueError`` naming ``action`` and the expected shape; out-of-range values are clipped.
* ``reset(seed=..., options={"state": s, "goal_state": g})`` (both optional; any other key raises
  ``ValueError``): start from a full simulator state and/or set a goal. With a goal, ``step`` returns reward
  1.0 and ``terminated=True`` on success and ``info["is_success"]``; without, reward 0 and no termination.
  Deterministic under ``reset(seed=...)``.
* On ``env.unwrapped``:

  - ``get_state() -> np.ndarray`` float64 ``(state_dim,)``: the full simulator state (WallRandom includes
    its layout); ``set_state(state)``; ``set_state(get_state())`` renders the identical image.
  - ``render_state(state) -> (S, S, 3) uint8`` and ``obs_from_state(state) -> {"pixels", "proprio"}``,
    both without disturbing the current state.
  - ``sample_start_goal(seed) -> (start_state, goal_state)``: a reachable pair for planning evaluation.
  - ``is_success(state, goal_state) -> bool``: DINO-WM's criteria (see each module).
  - ``expert_action(goal_state) -> (A,) float32``: scripted controller from the current state.
  - ``sample_waypoint(rng: np.random.Generator) -> state``: a random reachable target state.
  - ``planning_budget: int`` (class attribute; also :func:`planning_budget` by id, for any registered env,
    ``module:Env-v0`` included) and ``state_dim: int``.
    Make the planning-evaluation env with ``gym.make(id, max_episode_steps=planning_budget(id))``.

* :class:`~worldmodels.envs.controllers.ScriptedPolicy` (``random`` / ``expert`` / ``noisy-expert``) is the
  behaviour policy of the data collectors.

MuJoCo rendering is offscreen; on Linux without ``DISPLAY`` this package sets ``MUJOCO_GL=egl`` unless
it is already set (set it yourself, e.g. ``osmesa``, before importing ``mujoco`` to choose otherwise).

Proprio per env: Wall ``(x, y)``; PointMaze ``(x, y, vx, vy)``; Reacher ``(q0, q1, dq0, dq1)``; PushT
``(agent_x, agent_y, agent_vx, agent_vy)``.
"""

from __future__ import annotations

import importlib
import os
import sys

# headless Linux (no X display): render MuJoCo offscreen with EGL unless the user chose a backend
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
from gymnasium.envs.registration import EnvSpec, load_env_creator, register, registry

from worldmodels.envs.base import ALLOWED_IMG_SIZES, RESET_OPTION_KEYS, VisualGoalEnv
from worldmodels.envs.controllers import POLICY_KINDS, ScriptedPolicy
from worldmodels.errors import UserError

#: ``(id, entry point, max_episode_steps)`` of every env in this package
_SPECS: tuple[tuple[str, str, int], ...] = (
    ("worldmodels/Wall-v0", "worldmodels.envs.wall:WallEnv", 50),
    ("worldmodels/WallRandom-v0", "worldmodels.envs.wall:WallRandomEnv", 50),
    ("worldmodels/PointMazeUMaze-v0", "worldmodels.envs.pointmaze:PointMazeUMazeEnv", 100),
    ("worldmodels/PointMazeMedium-v0", "worldmodels.envs.pointmaze:PointMazeMediumEnv", 100),
    ("worldmodels/Reacher-v0", "worldmodels.envs.reacher:ReacherEnv", 50),
    ("worldmodels/PushT-v0", "worldmodels.envs.pusht:PushTEnv", 200),
)

#: ids of every env registered by this package
ENV_IDS: tuple[str, ...] = tuple(env_id for env_id, _, _ in _SPECS)

for _env_id, _entry_point, _max_steps in _SPECS:
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point, max_episode_steps=_max_steps)


def env_spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id``, in either of Gymnasium's forms: ``ns/Name-v0`` or
    ``module:ns/Name-v0`` (``module`` is imported first, so an env registered by the user's own module
    works the same as ours). One-line :class:`~worldmodels.errors.UserError` naming the id otherwise."""
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UserError(f"env_id={env_id!r}: cannot import module {module!r} ({err})") from None
    if name not in registry:
        raise UserError(
            f"env_id={env_id!r} is not registered (this package's ids: {', '.join(ENV_IDS)}; for your own env "
            "use 'yourmodule:YourEnv-v0', the module registering it)"
        )
    return registry[name]


def planning_budget(env_id: str) -> int:
    """The env's own ``planning_budget`` (env steps a planning evaluation allows, part of the env contract),
    read from its class without building it, or from an instance when the entry point is a factory; any
    registered id, ``module:Env-v0`` included.

    A planning evaluation makes its env with ``gym.make(env_id, max_episode_steps=planning_budget(env_id))``
    (the registered ``max_episode_steps`` is the data-collection episode length, shorter for PointMaze).
    """
    spec = env_spec(env_id)
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    budget = getattr(creator, "planning_budget", None)
    if budget is None:
        import gymnasium as gym

        env = gym.make(env_id)
        try:
            budget = getattr(env.unwrapped, "planning_budget", None)
        finally:
            env.close()
    if budget is None:
        raise UserError(
            f"env_id={env_id!r}: the env has no planning_budget (env steps a planning evaluation allows; see "
            "docs/bring_your_own_env.md); give it one, or pass the budget (--budget)"
        )
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise UserError(f"env_id={env_id!r}: planning_budget={budget!r} must be an int >= 1")
    return int(budget)


__all__ = [
    "ALLOWED_IMG_SIZES",
    "ENV_IDS",
    "POLICY_KINDS",
    "RESET_OPTION_KEYS",
    "ScriptedPolicy",
    "VisualGoalEnv",
    "env_spec",
    "planning_budget",
]
