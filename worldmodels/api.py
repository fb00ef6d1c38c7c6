"""One API per role: each role is a small Protocol, checked with ``isinstance`` (``runtime_checkable``).

* :class:`WorldModel`: ``encode`` observations, ``rollout`` many candidate action sequences (open loop);
  planners only ever see a cost function over action sequences built on it, so every planner works with
  every world model (latent DINO-WM, video diffusion, ensemble dynamics, exact-dynamics oracles).
* :class:`StochasticWorldModel`: a world model whose rollout samples; it takes a ``torch.Generator`` so a
  plan is reproducible from a seed.
* :class:`SteppableModel`: closed loop, one step at a time for a batch of states: what an RL agent rolls
  its policy through (learned ensemble dynamics, the true simulator).
* :class:`TransitionGenerator`: draws whole transitions ``(s, a, r, s', terminal)`` (SynthER).

``tests/test_model_contract.py`` checks every registered model class against its roles.

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
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
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


@runtime_checkable
class StochasticWorldModel(WorldModel, Protocol):
    """A world model whose imagination samples (diffusion, probabilistic ensembles).

    ``rollout`` takes an optional ``generator``: with the same generator state, the same ``state`` and
    ``actions`` give the same prediction bit for bit (on the same device), so MPC with a seeded planner is
    reproducible. ``generator=None`` draws from the global RNG.
    """

    def rollout(self, state: Any, actions: Tensor, *, generator: torch.Generator | None = None) -> Any:
        """``actions (B, horizon, action_dim)`` -> predicted states (``horizon`` future frames, batch ``B``)."""
        ...


@dataclass
class StepResult:
    """One closed-loop step for a batch of ``B`` states.

    Attributes:
        next_state: ``(B, state_dim)``.
        reward: ``(B,)``.
        terminated: bool ``(B,)``: the env's termination rule (not a time limit).
        uncertainty: ``(B,)`` per-transition uncertainty where the model has one (ensemble disagreement,
            aleatoric scale), else ``None``; MOPO-style penalties read it.
        info: anything model-specific (e.g. the member each sample came from).
    """

    next_state: Tensor
    reward: Tensor
    terminated: Tensor
    uncertainty: Tensor | None = None
    info: dict[str, Any] | None = None


@runtime_checkable
class SteppableModel(Protocol):
    """Closed-loop dynamics for agents that roll a policy through a model (MBPO, MOPO, RAVL).

    States and actions are raw env vectors (the model normalises internally): ``state (B, state_dim)``,
    ``action (B, action_dim)`` in the env's action box.
    """

    state_dim: int
    action_dim: int

    def step(self, state: Tensor, action: Tensor, *, generator: torch.Generator | None = None) -> StepResult:
        """Sample one transition per row; seeded by ``generator`` where the model is stochastic."""
        ...


#: keys of a transition batch, as D4RL's ``qlearning_dataset`` names them
TRANSITION_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


@runtime_checkable
class TransitionGenerator(Protocol):
    """Draws synthetic transitions keyed like the transition data (SynthER).

    ``sample(n)`` returns float32 numpy arrays: ``observations (n, obs_dim)``, ``actions (n, action_dim)``,
    ``rewards (n,)``, ``next_observations (n, obs_dim)``, ``terminals (n,)`` in ``{0, 1}``; the same
    generator state gives the same samples.
    """

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> dict[str, np.ndarray]:
        """``n`` transitions, see the class docstring."""
        ...
