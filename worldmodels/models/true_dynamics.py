"""The true dynamics as a :class:`~worldmodels.api.SteppableModel`: each state of a batch is restored in the
env's own MuJoCo simulator (``set_state(qpos, qvel)``) and stepped with the env's own ``step``, so rewards
and terminations are the env's, not a re-implementation.

States are observations. For Gymnasium's HalfCheetah-v5, Hopper-v5 and Walker2d-v5 the observation is
``concat(qpos[1:], qvel)``: only the root's x position is left out, and it changes neither the dynamics nor
the reward (the forward reward is a difference of x positions), so ``qpos = [0, obs[:nq - 1]]`` and
``qvel = obs[nq - 1:]`` restore the state exactly. One exception: Hopper and Walker2d clip the velocities
in the observation to ``[-10, 10]``, so a state whose true velocity lies outside that range is restored with
the clipped velocity (datasets carry ``infos/qpos``/``infos/qvel``: :meth:`TrueDynamics.step_qpos` restores
those exactly). Rows are stepped one after another in one simulator (about 20k steps/s on one core).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from worldmodels.api import StepResult

#: envs whose observation is ``concat(qpos[1:], qvel)`` (the ones this model supports)
SUPPORTED = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")


class TrueDynamics:
    """The env's simulator behind the ``step`` role.

    Args:
        env_id: a Gymnasium id of :data:`SUPPORTED`.

    Shapes: ``step(state (B, O), action (B, A))`` -> ``StepResult`` with ``next_state (B, O)``, ``reward (B,)``,
    ``terminated (B,)`` bool and ``uncertainty`` zero ``(B,)`` (the model is exact; MOPO's penalty vanishes).
    """

    def __init__(self, env_id: str = "HalfCheetah-v5") -> None:
        import gymnasium as gym

        if env_id not in SUPPORTED:
            raise ValueError(f"true-dynamics: env {env_id!r} is not supported; supported: {SUPPORTED}")
        self.env_id = env_id
        self.env = gym.make(env_id).unwrapped
        self.env.reset(seed=0)
        self.nq, self.nv = self.env.model.nq, self.env.model.nv
        self.state_dim = int(self.env.observation_space.shape[0])
        self.action_dim = int(self.env.action_space.shape[0])
        if self.state_dim != self.nq - 1 + self.nv:
            raise ValueError(f"{env_id}: observation size {self.state_dim} is not nq - 1 + nv")

    def obs_to_qpos_qvel(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``obs (O,)`` -> ``qpos (nq,)`` with x = 0, ``qvel (nv,)``."""
        return np.concatenate([[0.0], obs[: self.nq - 1]]), obs[self.nq - 1 :]

    def _step_rows(self, qpos: np.ndarray, qvel: np.ndarray, action: np.ndarray):
        b = len(action)
        next_obs = np.empty((b, self.state_dim))
        reward = np.empty(b)
        terminated = np.zeros(b, dtype=bool)
        for i in range(b):
            self.env.set_state(qpos[i], qvel[i])
            obs, r, term, _, _ = self.env.step(action[i])
            next_obs[i], reward[i], terminated[i] = obs, r, term
        return next_obs, reward, terminated

    @torch.no_grad()
    def step(self, state: Tensor, action: Tensor, *, generator: torch.Generator | None = None) -> StepResult:
        """Step every row of ``state (B, O)`` (observations) with ``action (B, A)``; ``generator`` is
        accepted for the role and unused (the simulator is deterministic)."""
        if state.shape[-1] != self.state_dim or action.shape[-1] != self.action_dim:
            raise ValueError(
                f"TrueDynamics({self.env_id}).step: state {tuple(state.shape)} / action {tuple(action.shape)}, "
                f"expected (B, {self.state_dim}) / (B, {self.action_dim})"
            )
        s = state.detach().double().cpu().numpy()
        a = action.detach().double().cpu().numpy()
        qpos = np.concatenate([np.zeros((len(s), 1)), s[:, : self.nq - 1]], 1)
        qvel = s[:, self.nq - 1 :]
        next_obs, reward, terminated = self._step_rows(qpos, qvel, a)
        return self._result(next_obs, reward, terminated, state)

    def step_qpos(self, qpos: Tensor, qvel: Tensor, action: Tensor) -> StepResult:
        """Step from full simulator states ``qpos (B, nq)``, ``qvel (B, nv)`` (exact for every env)."""
        next_obs, reward, terminated = self._step_rows(
            qpos.double().cpu().numpy(), qvel.double().cpu().numpy(), action.double().cpu().numpy()
        )
        return self._result(next_obs, reward, terminated, action)

    @staticmethod
    def _result(next_obs, reward, terminated, like: Tensor) -> StepResult:
        kw = {"dtype": like.dtype if like.is_floating_point() else torch.float32, "device": like.device}
        return StepResult(
            next_state=torch.as_tensor(next_obs, **kw),
            reward=torch.as_tensor(reward, **kw),
            terminated=torch.as_tensor(terminated, device=like.device),
            uncertainty=torch.zeros(len(reward), **kw),
        )

    def close(self) -> None:
        self.env.close()
