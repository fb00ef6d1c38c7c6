"""One start/goal pair's episode: the goal encoded once, the env reset to the start, the planner driven by
:class:`~planners.mpc.MPC` (open loop: one plan of ``horizon`` model steps executed whole; MPC: re-plan every
``execute`` model steps with a warm start) until success, termination or the budget."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from planners.base import Planner
from planners.evaluate.options import EvalOptions
from planners.evaluate.report import PairResult, video_frames, write_video
from planners.mpc import MPC, MPCResult
from planners.objectives import GoalDistance, make_cost_fn


def model_device(model: Any) -> torch.device:
    """The device of an ``nn.Module``'s first parameter or buffer; CPU for other models."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
        for b in model.buffers():
            return b.device
    return torch.device("cpu")


def to_model_obs(frames: list[Mapping[str, np.ndarray]], device: torch.device) -> dict[str, Tensor]:
    """``T`` env observations -> ``pixels`` uint8 ``(1, T, 3, S, S)`` and ``proprio`` float ``(1, T, P)``."""
    pixels = torch.as_tensor(np.stack([f["pixels"] for f in frames]), device=device)
    proprio = torch.as_tensor(np.stack([f["proprio"] for f in frames]), device=device, dtype=torch.float32)
    return {"pixels": rearrange(pixels, "t h w c -> 1 t c h w"), "proprio": proprio[None]}


class Episode:
    """The callbacks :class:`MPC` drives for one pair (observe, cost function, step), plus what the video
    needs (real frames, decoded imagined frames)."""

    def __init__(self, model: Any, env: gym.Env, goal: np.ndarray, objective: GoalDistance, *,
                 chunk_size: int | None, differentiable: bool, device: torch.device, video: bool,
                 amp: str | None = None):  # fmt: skip
        self.model, self.env, self.goal, self.objective = model, env, goal, objective
        self.chunk_size, self.differentiable, self.device = chunk_size, differentiable, device
        self.video, self.amp = video, amp
        self.frameskip = int(getattr(model, "frameskip", 1))
        self.num_hist = max(1, int(getattr(model, "num_hist", 1)))
        self.takes_past = "past_actions" in inspect.signature(model.encode).parameters
        self.history: list[Mapping[str, np.ndarray]] = []  # observations at model-step boundaries
        self.past_actions: list[Tensor] = []  # planning actions between them
        self.state: Any = None
        self.real: list[np.ndarray] = []
        self.imagined: list[np.ndarray | None] = []
        self.env_steps, self.success = 0, False
        self.last_obs: Mapping[str, np.ndarray] | None = None

    def start(self, obs: Mapping[str, np.ndarray]) -> None:
        self.history, self.last_obs = [obs], obs
        self.real, self.imagined = [obs["pixels"]], [None]

    def observe(self) -> Any:
        frames = self.history[-self.num_hist :]
        obs = to_model_obs(frames, self.device)
        with torch.no_grad():  # not inference_mode: gradient planners back-propagate from this state
            if self.takes_past and len(frames) > 1:
                past = torch.stack(self.past_actions[-(len(frames) - 1) :])[None]
                state = self.model.encode(obs, past_actions=past)
            else:
                state = self.model.encode(obs)
        self.state = state
        return state

    def make_cost_fn(self, state: Any):
        return make_cost_fn(self.model, state, self.objective, chunk_size=self.chunk_size,
                            differentiable=self.differentiable, amp=self.amp)  # fmt: skip

    def _imagine(self, actions: Tensor) -> list[np.ndarray] | None:
        decode = getattr(self.model, "decode", None)
        if not self.video or decode is None:
            return None
        with torch.inference_mode():
            images = decode(self.model.rollout(self.state, actions[None]))
        if images is None:
            return None
        images = rearrange(images[0].float().clamp(0, 1) * 255, "t c h w -> t h w c")
        return list(images.round().to(torch.uint8).cpu().numpy())

    def step(self, actions: Tensor) -> bool:
        """Execute ``(k, action_dim)`` planning actions (``k * frameskip`` env steps); True when done."""
        imagined = self._imagine(actions)
        env_actions = self.model.to_env_actions(actions).detach().cpu().numpy().astype(np.float32)
        for j, a in enumerate(env_actions):
            obs, _, terminated, truncated, info = self.env.step(a)
            self.env_steps += 1
            self.last_obs = obs
            self.real.append(obs["pixels"])
            self.imagined.append(None if imagined is None else imagined[j // self.frameskip])
            success = bool(info.get("is_success", False)) or self.env.unwrapped.is_success(
                self.env.unwrapped.get_state(), self.goal
            )
            self.success = self.success or success
            if (j + 1) % self.frameskip == 0:
                self.history.append(obs)
                self.past_actions.append(actions[j // self.frameskip].detach())
            if terminated or truncated or self.success:
                return True
        return False


@dataclass
class PairJob:
    """Everything needed to evaluate one start/goal pair (picklable, sent once to each worker process):
    the model, the env (``env_kwargs``: the full ``gym.make`` arguments, budget included), the planner in
    its controller, the options, and the output directory."""

    model: Any
    env_id: str
    env_kwargs: dict[str, Any]
    planner: Planner
    controller: MPC
    options: EvalOptions
    out_dir: Path | None

    def make_env(self) -> gym.Env:
        import worldmodels.envs  # noqa: F401  (registers the environments)

        return gym.make(self.env_id, **self.env_kwargs)

    def run_pair(self, env: gym.Env, i: int) -> PairResult:
        """Pair ``i``: ``sample_start_goal(seed + i)``, planner generator seeded ``seed + i``; writes
        ``pair_XXX.mp4`` under ``out_dir`` for the first ``videos`` pairs."""
        model, opts = self.model, self.options
        device = model_device(model)
        low, high = (b.to(device) for b in model.action_bounds())
        start, goal = env.unwrapped.sample_start_goal(opts.seed + i)
        goal_obs = env.unwrapped.obs_from_state(goal)
        with torch.no_grad():
            goal_state = model.encode(to_model_obs([goal_obs], device))
        with_video = self.out_dir is not None and (opts.videos is None or i < opts.videos)
        objective = GoalDistance(
            goal_state, alpha=opts.alpha, mode=opts.objective_mode, discount=opts.discount
        )
        episode = Episode(
            model, env, goal, objective, chunk_size=opts.chunk_size, differentiable=self.planner.differentiable,
            device=device, video=with_video, amp=opts.amp,
        )  # fmt: skip
        obs, _ = env.reset(seed=opts.seed + i, options={"state": start, "goal_state": goal})
        episode.start(obs)
        gen = torch.Generator(device=device).manual_seed(opts.seed + i)
        run: MPCResult = self.controller.run(
            episode.observe, episode.make_cost_fn, episode.step, low=low, high=high, generator=gen
        )
        final = np.asarray(episode.last_obs["proprio"], dtype=np.float64)
        pair = PairResult(
            index=i,
            success=episode.success,
            env_steps=episode.env_steps,
            final_distance=float(np.linalg.norm(final - np.asarray(goal_obs["proprio"], dtype=np.float64))),
            plan_calls=len(run.plans),
            plan_time=float(sum(run.plan_times)),
            final_plan_cost=float(run.plans[-1].cost),
            costs=[float(c) for c in run.plans[0].info.get("cost", [])],
        )
        if with_video:
            path = self.out_dir / f"pair_{i:03d}.mp4"
            write_video(path, video_frames(episode.real, episode.imagined, goal_obs["pixels"]))
            pair.video = path.name
        return pair
