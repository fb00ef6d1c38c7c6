"""Open-loop position error of Wall world models on planner-like random action sequences.

Sampling planners score jerky, random action sequences, not the smooth ones a scripted controller
produces; this measures how far a model's imagined agent position drifts from the real one on such
sequences: from ``--starts`` held-out start states (``sample_start_goal(1000 + i)``), a random sequence of
``--horizon`` model steps (alternately uniform in the action bounds and Gaussian like CEM's first
iteration) is imagined by each model and executed in ``worldmodels/Wall-v0``.

A second probe measures whether a model knows the wall blocks: from the same starts, full speed straight at
the pair's goal (on the other side of the wall, so the real agent ends pressed against it unless the line
happens to pass the door) for ``--horizon`` model steps. It reports how often the imagined agent ends on the
goal's side while the real one does not (a *leak* through the wall) and the final position error.

    python experiments/rollout_error/rollout_error.py runs/wall/fit/model [OTHER_MODEL ...] [--starts 100]

The table is printed and its numbers are written to ``--out`` (default:
``experiments/rollout_error/results.json``, atomically).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import worldmodels.envs  # noqa: F401  (registers the ids)
from planners.evaluate import to_model_obs
from worldmodels import load_pretrained
from worldmodels.envs.wall import FIXED_LAYOUT
from worldmodels.io import atomic_write_text
from worldmodels.models.latent_world_model import LatentWorldModel

ENV = "worldmodels/Wall-v0"


def imagine_and_execute(model: LatentWorldModel, env, start: np.ndarray, actions: torch.Tensor):
    """Agent positions ``(H, 2)`` after each model step of planning ``actions (H, A * frameskip)`` from
    ``start``: imagined by ``model`` and real (the env run on the same actions)."""
    obs, _ = env.reset(options={"state": start})
    with torch.inference_mode():
        state = model.encode(to_model_obs([obs], torch.device("cpu")))
        imagined = model.rollout(state, actions[None]).proprio[0] * model.proprio_std + model.proprio_mean
    real = []
    for k, action in enumerate(model.to_env_actions(actions).numpy()):
        obs, *_ = env.step(action)
        if (k + 1) % model.frameskip == 0:
            real.append(obs["proprio"][:2])
    return imagined[:, :2].numpy(), np.array(real)


def rollout_errors(model: LatentWorldModel, starts: int, horizon: int, seed: int) -> np.ndarray:
    """``(starts, horizon)`` distances between imagined and real agent positions after each model step."""
    env = gym.make(ENV).unwrapped
    low, high = model.action_bounds()
    gen = torch.Generator().manual_seed(seed)
    errors = []
    for i in range(starts):
        start, _ = env.sample_start_goal(1000 + i)
        shape = (horizon, low.numel())
        if i % 2:
            actions = torch.randn(shape, generator=gen).clamp(low, high)
        else:
            actions = low + (high - low) * torch.rand(shape, generator=gen)
        imagined, real = imagine_and_execute(model, env, start, actions)
        errors.append(np.linalg.norm(imagined - real, axis=-1))
    env.close()
    return np.array(errors)


def wall_push_errors(model: LatentWorldModel, starts: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Straight at the goal: ``(starts,)`` leaks through the wall (bool) and final position errors."""
    env = gym.make(ENV).unwrapped
    wall_x = FIXED_LAYOUT[0]
    leaks, errors = [], []
    for i in range(starts):
        start, goal = env.sample_start_goal(1000 + i)
        direction = goal[:2] - start[:2]
        action = direction / np.abs(direction).max()
        env_actions = torch.tensor(np.tile(action, (horizon, model.frameskip)), dtype=torch.float32)
        imagined, real = imagine_and_execute(model, env, start, model.normalize_action(env_actions))
        final_im, final_real = imagined[-1], real[-1]
        side = np.sign(start[0] - wall_x)
        leaks.append(np.sign(final_im[0] - wall_x) != side and np.sign(final_real[0] - wall_x) == side)
        errors.append(np.linalg.norm(final_im - final_real))
    env.close()
    return np.array(leaks), np.array(errors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="saved Wall world model directories")
    p.add_argument("--starts", type=int, default=100)
    p.add_argument("--horizon", type=int, default=5, help="model steps (x frameskip env steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("experiments/rollout_error/results.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for path in args.models:
        model = load_pretrained(path)
        if not isinstance(model, LatentWorldModel):
            p.error(f"{path}: a {type(model).__name__}, expected a LatentWorldModel (its proprio statistics)")
        err = rollout_errors(model, args.starts, args.horizon, args.seed)
        leaks, push_err = wall_push_errors(model, args.starts, args.horizon)
        rows[path] = {
            "mean_error_per_step": err.mean(0).round(3).tolist(),
            "final_mean": float(err[:, -1].mean()),
            "final_median": float(np.median(err[:, -1])),
            "final_p90": float(np.percentile(err[:, -1], 90)),
            "wall_push_leak_rate": float(leaks.mean()),
            "wall_push_final_mean": float(push_err.mean()),
            "wall_push_final_median": float(np.median(push_err)),
        }
    print(f"\n{args.starts} starts, {args.horizon} model steps; error in arena units (success radius 4.43)\n")
    print("| model | mean error per model step | final mean | final median | final p90 "
          "| straight at goal: leaks through wall | final mean | final median |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for path, r in rows.items():
        steps = ", ".join(f"{e:.2f}" for e in r["mean_error_per_step"])
        print(
            f"| {path} | {steps} | {r['final_mean']:.2f} | {r['final_median']:.2f} | {r['final_p90']:.2f} "
            f"| {r['wall_push_leak_rate']:.2f} | {r['wall_push_final_mean']:.2f} "
            f"| {r['wall_push_final_median']:.2f} |"
        )
    atomic_write_text(
        args.out, json.dumps({"starts": args.starts, "horizon": args.horizon, "models": rows}, indent=1)
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
