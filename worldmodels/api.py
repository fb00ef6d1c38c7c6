"""One API per role (see ARCHITECTURE.md in the shared docs).

A world model turns observations into a state and imagines the future under candidate action
sequences; planners only ever see a cost function over action sequences. Every world model in this
package satisfies :class:`WorldModel`, so every planner works with every model.

Conventions
-----------
* ``obs`` is a mapping of tensors with a time axis: ``obs["pixels"]`` uint8 ``(B, T, 3, H, W)`` and
  ``obs["proprio"]`` float ``(B, T, P)`` in raw (unnormalised) env units.
* Actions seen by ``rollout`` are *planning actions*: normalised with the dataset statistics and, for
  models trained with a frameskip, the ``frameskip`` env actions of one model step concatenated:
  shape ``(B, horizon, action_dim)`` with ``action_dim = env_action_dim * frameskip``.
  ``to_env_actions`` maps them back to ``(horizon * frameskip, env_action_dim)`` env actions.
* ``rollout`` broadcasts a state of batch 1 against ``B`` candidate sequences, so a planner encodes the
  start observation once and never copies it per sample.
* Device and dtype follow the model's parameters; nothing here names a device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

#: ``cost_fn(actions (B, horizon, action_dim)) -> (B,)``: what every planner minimises.
CostFn = Callable[[Tensor], Tensor]

#: ``objective(predicted_states, actions (B, horizon, action_dim)) -> (B,)``.
Objective = Callable[[Any, Tensor], Tensor]


@runtime_checkable
class WorldModel(Protocol):
    """What planners, RL agents and generators need from a world model."""

    #: planning action dimension (env action dim x frameskip)
    action_dim: int

    def encode(self, obs: Mapping[str, Tensor]) -> Any:
        """Encode observations ``(B, T, ...)`` into the model's state (B, T history frames)."""
        ...

    def rollout(self, state: Any, actions: Tensor) -> Any:
        """Imagine ``horizon`` steps: ``actions (B, horizon, action_dim)`` -> predicted states
        with ``horizon`` future frames, batch ``B`` (a state of batch 1 is broadcast)."""
        ...

    def action_bounds(self) -> tuple[Tensor, Tensor]:
        """``(low, high)`` of planning actions, each ``(action_dim,)``, from the env's action space."""
        ...

    def to_env_actions(self, actions: Tensor) -> Tensor:
        """Planning actions ``(horizon, action_dim)`` -> env actions ``(horizon * frameskip, A_env)``."""
        ...
