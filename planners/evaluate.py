"""Zero-shot goal-reaching evaluation (DINO-WM protocol).

For each pair ``i``: ``start, goal = env.unwrapped.sample_start_goal(seed + i)``; the goal is given as an
image (``render_state(goal)``, encoded once, with the goal's proprio for the proprio term); the agent
starts at ``start``; success is the env's own criterion (``is_success``) within the env's planning
budget (``planning_budget`` env steps). Open loop plans once and executes the whole plan; MPC executes
``execute`` model steps (x frameskip env steps) and re-plans with a warm start.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from tqdm.auto import tqdm

from planners import build_planner
from planners.mpc import MPC
from planners.objectives import GoalDistance, make_cost_fn


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate`; ``pairs`` holds one dict per start/goal pair."""

    success_rate: float
    ci95: tuple[float, float]
    plan_time_per_step_s: float
    pairs: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def _obs_tensors(frames: list[dict[str, np.ndarray]], device) -> dict[str, torch.Tensor]:
    px = torch.as_tensor(np.stack([f["pixels"] for f in frames]), device=device)
    return {
        "pixels": rearrange(px, "t h w c -> 1 t c h w"),
        "proprio": torch.as_tensor(
            np.stack([f["proprio"] for f in frames]), dtype=torch.float32, device=device
        )[None],
    }


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import imageio.v3 as iio

    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".mp4")
    os.close(fd)
    iio.imwrite(tmp, np.stack(frames), fps=fps, macro_block_size=1)
    os.replace(tmp, path)


def _to_uint8(img: torch.Tensor, size: int) -> np.ndarray:
    img = torch.nn.functional.interpolate(img[None].float(), size=(size, size), mode="nearest")[0]
    return (rearrange(img, "c h w -> h w c").clamp(0, 1) * 255).round().byte().cpu().numpy()


def evaluate(
    model,
    env_id: str,
    planner: str = "cem",
    *,
    pairs: int = 50,
    seed: int = 0,
    mpc: bool = True,
    horizon: int = 5,
    execute: int = 1,
    alpha: float = 1.0,
    objective_mode: str = "last",
    chunk_size: int | None = None,
    planner_kwargs: dict[str, Any] | None = None,
    out: str | os.PathLike | None = None,
    videos: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run the goal-reaching protocol on ``pairs`` start/goal pairs.

    Args:
        model: a world model (``encode``, ``rollout``, ``action_bounds``, ``to_env_actions``, ``frameskip``,
            ``num_hist``, ``img_size``; ``decode`` for videos of imagined frames).
        env_id: a ``worldmodels/...`` env id.
        planner: ``cem``, ``icem``, ``mppi`` or ``gd``.
        pairs: number of start/goal pairs (pair ``i`` uses seed ``seed + i``).
        seed: base seed (pairs and planner noise).
        mpc: re-plan after ``execute`` model steps (else open loop: plan once, execute it all).
        horizon: planning horizon in model steps (DINO-WM: 5).
        execute: MPC: model steps executed per plan.
        alpha: weight of the proprio term of the goal distance.
        objective_mode: ``last`` or ``all`` (see :class:`~planners.objectives.GoalDistance`).
        chunk_size: candidates per model call (bounds memory).
        planner_kwargs: planner arguments (e.g. ``{"samples": 300, "topk": 30, "iterations": 10}``).
        out: directory for ``results.json``, videos and ``plot.png`` (nothing written when None).
        videos: how many pairs get a video (default: all).
        progress: tqdm bar over pairs.
    """
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401
    from worldmodels.envs import planning_budget

    budget = planning_budget(env_id)
    env = gym.make(env_id, img_size=model.img_size, max_episode_steps=budget)
    base = env.unwrapped
    device = next(model.parameters()).device
    low, high = (b.to(device) for b in model.action_bounds())
    fs = model.frameskip
    max_model_steps = budget // fs
    plan_impl = build_planner(planner, **(planner_kwargs or {}))
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    records, plan_times, cost_traces = [], [], []
    for i in tqdm(range(pairs), desc=f"eval {planner}{'+mpc' if mpc else ''}", disable=not progress):
        pair_seed = seed + i
        start, goal = base.sample_start_goal(pair_seed)
        obs, _ = env.reset(seed=pair_seed, options={"state": start, "goal_state": goal})
        goal_obs = base.obs_from_state(goal)
        goal_latent = model.encode(_obs_tensors([goal_obs], device))
        objective = GoalDistance(goal_latent, alpha=alpha, mode=objective_mode)
        history: deque = deque([obs], maxlen=model.num_hist)
        past_actions: deque = deque(maxlen=max(model.num_hist - 1, 0))
        generator = torch.Generator(device=device).manual_seed(pair_seed)
        real, imagined = [obs["pixels"]], []
        done = {"flag": False, "steps": 0}
        latest_plan: dict[str, Any] = {}

        def observe():
            pa = torch.stack(list(past_actions))[None] if len(history) > 1 else None
            state = model.encode(_obs_tensors(list(history), device), past_actions=pa)
            latest_plan["state"] = state
            return state

        def cost_factory(state):
            return make_cost_fn(model.rollout, state, objective, chunk_size=chunk_size, grad=planner == "gd")

        def step(actions: torch.Tensor) -> bool:
            nonlocal obs
            pred = None
            if hasattr(model, "decode"):
                with torch.inference_mode():
                    pred = model.decode(model.rollout(latest_plan["state"], actions[None]))
            for k in range(actions.shape[0]):
                env_actions = model.to_env_actions(actions[k : k + 1]).cpu().numpy()
                for a in env_actions:
                    obs, _, terminated, truncated, _ = env.step(a)
                    done["steps"] += 1
                    real.append(obs["pixels"])
                    if pred is not None:
                        imagined.append(_to_uint8(pred[0, k], obs["pixels"].shape[0]))
                    if terminated or truncated:
                        return True
                history.append(obs)
                if model.num_hist > 1:
                    past_actions.append(actions[k])
            return False

        t0 = time.perf_counter()
        if mpc:
            runner = MPC(plan_impl, horizon=horizon, execute=execute, max_steps=max_model_steps)
            res = runner.run(observe, cost_factory, step, low=low, high=high, generator=generator)
            n_plans, plans = len(res.plan_times), res.plans
        else:
            plan = plan_impl.plan(cost_factory(observe()), horizon=horizon, action_dim=low.shape[0], low=low,
                                  high=high, generator=generator)  # fmt: skip
            step(plan.actions.detach())
            n_plans, plans = 1, [plan]
        elapsed = time.perf_counter() - t0
        plan_times.append(elapsed / max(n_plans, 1))
        trace = next(iter(plans[0].info.values()), [])
        cost_traces.append(list(trace))
        final = base.get_state()
        success = bool(base.is_success(final, goal))
        final_proprio = base.obs_from_state(final)["proprio"]
        records.append({
            "pair": i, "seed": pair_seed, "success": success, "env_steps": done["steps"], "plans": n_plans,
            "plan_time_s": elapsed / max(n_plans, 1),
            "final_proprio_distance": float(np.linalg.norm(final_proprio[:2] - goal_obs["proprio"][:2])),
        })  # fmt: skip
        if out_dir is not None and (videos is None or i < videos):
            goal_px = goal_obs["pixels"]
            blank = np.zeros_like(goal_px)
            frames = [
                np.concatenate([r, imagined[j - 1] if 0 < j <= len(imagined) else blank, goal_px], 1)
                for j, r in enumerate(real)
            ]
            _write_video(out_dir / f"pair_{i:03d}_{'success' if success else 'fail'}.mp4", frames)
    env.close()
    n_success = sum(r["success"] for r in records)
    config = {
        "env_id": env_id, "planner": planner, "mpc": mpc, "pairs": pairs, "seed": seed, "horizon": horizon,
        "execute": execute, "alpha": alpha, "objective_mode": objective_mode, "planner_kwargs": planner_kwargs or {},
        "budget_env_steps": budget, "frameskip": fs,
    }  # fmt: skip
    result = EvalResult(
        success_rate=n_success / max(pairs, 1),
        ci95=wilson_interval(n_success, pairs),
        plan_time_per_step_s=float(np.mean(plan_times)) if plan_times else 0.0,
        pairs=records,
        config=config,
    )
    if out_dir is not None:
        tmp = out_dir / "results.json.tmp"
        tmp.write_text(json.dumps(asdict(result), indent=1))
        os.replace(tmp, out_dir / "results.json")
        _plot(out_dir / "plot.png", result, cost_traces)
    return result


def _plot(path: Path, result: EvalResult, cost_traces: list[list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    for tr in cost_traces:
        a.plot(tr, color="tab:blue", alpha=0.3)
    a.set(xlabel="planner iteration (first plan)", ylabel="cost", title="planning cost")
    dist = [r["final_proprio_distance"] for r in result.pairs]
    colors = ["tab:green" if r["success"] else "tab:red" for r in result.pairs]
    b.bar(range(len(dist)), dist, color=colors)
    lo, hi = result.ci95
    b.set(
        xlabel="pair",
        ylabel="final distance",
        title=f"success {result.success_rate:.2f} [{lo:.2f}, {hi:.2f}]",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
