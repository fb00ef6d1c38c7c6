"""Speed of the ``worldmodels.envs`` environments, MuJoCo render settings side by side, start/goal figures.

    python benchmarks/envs_speed.py --img-size 64 --steps 500 --out benchmarks/results/envs_speed.json
    python benchmarks/envs_speed.py --figures          # also benchmarks/figures/env_<name>.png

Per env: env steps/s with pixel observations (random actions from a seeded generator), renders/s
(``env.render()``), the expert's success rate within ``planning_budget`` over ``--pairs`` start/goal
pairs. For the MuJoCo envs (PointMaze, Reacher), renders/s of our ``TopDownRenderer`` with the speed
flags (no shadows/reflections/skybox/fog/haze, no multisampling) and without them, and of gymnasium's
stock path (``render_mode="rgb_array"`` at 480 px, then resized to ``S``). Prints a markdown table and
writes the same numbers as JSON (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from PIL import Image

from worldmodels.envs import ENV_IDS, ScriptedPolicy
from worldmodels.envs.cli import _available
from worldmodels.io import atomic_write_text

#: our MuJoCo-rendered envs -> gymnasium's stock env of the same scene (for the 480 px + resize baseline)
STOCK_ENVS = {
    "worldmodels/PointMazeUMaze-v0": "PointMaze_UMaze-v3",
    "worldmodels/PointMazeMedium-v0": "PointMaze_Medium-v3",
    "worldmodels/Reacher-v0": "Reacher-v5",
}


def rate(fn: Callable[[], object], n: int) -> float:
    """Calls per second of ``fn`` over ``n`` calls (after one warm-up call)."""
    fn()
    tic = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - tic)


def step_rate(env: gym.Env, steps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(steps + 1, *env.action_space.shape)).astype(np.float32)
    env.reset(seed=seed)
    it = iter(actions)
    return rate(lambda: env.step(next(it)), steps)


def expert_success(env: gym.Env, pairs: int) -> float:
    base = env.unwrapped
    policy = ScriptedPolicy(env, "expert")
    reached = 0
    for seed in range(pairs):
        start, goal = base.sample_start_goal(seed)
        env.reset(options={"state": start, "goal_state": goal})
        policy.reset(goal_state=goal)
        for _ in range(base.planning_budget):
            *_, terminated, _, _ = env.step(policy())
            if terminated:
                reached += 1
                break
    return reached / pairs


def stock_render_rate(stock_id: str, img_size: int, n: int) -> float:
    """gymnasium's default path: render at 480 px, then resize to ``img_size`` (PIL bilinear)."""
    if stock_id.startswith("PointMaze"):
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
    env = gym.make(stock_id, render_mode="rgb_array")
    env.reset(seed=0)

    def render() -> np.ndarray:
        return np.asarray(Image.fromarray(env.render()).resize((img_size, img_size), Image.BILINEAR))

    result = rate(render, n)
    env.close()
    return result


def benchmark(env_id: str, args: argparse.Namespace) -> dict[str, float]:
    env = gym.make(env_id, img_size=args.img_size)
    row = {
        "steps_per_s": step_rate(env, args.steps, args.seed),
        "renders_per_s": rate(env.render, args.steps),
        "expert_success": expert_success(env, args.pairs),
        "planning_budget": env.unwrapped.planning_budget,
    }
    env.close()
    if env_id in STOCK_ENVS:
        slow = gym.make(env_id, img_size=args.img_size, fast_render=False)
        slow.reset(seed=args.seed)
        row["renders_per_s_no_speed_flags"] = rate(slow.render, args.steps)
        slow.close()
        row["renders_per_s_gymnasium_480px_resize"] = stock_render_rate(
            STOCK_ENVS[env_id], args.img_size, max(args.steps // 5, 10)
        )
    return row


def write_figure(env_id: str, path: Path, size: int, seed: int) -> None:
    """Start and goal image of ``sample_start_goal(seed)`` side by side, 2 px white gap."""
    env = gym.make(env_id, img_size=size)
    start, goal = env.unwrapped.sample_start_goal(seed)
    gap = np.full((size, 2, 3), 255, np.uint8)
    image = np.concatenate([env.unwrapped.render_state(start), gap, env.unwrapped.render_state(goal)], axis=1)
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, image)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--img-size", type=int, default=64, help="observation side S")
    parser.add_argument("--steps", type=int, default=500, help="timed steps / renders per env")
    parser.add_argument("--pairs", type=int, default=50, help="start/goal pairs for the expert success rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", action="append", choices=ENV_IDS, help="only these envs (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/envs_speed.json"))
    parser.add_argument("--figures", action="store_true", help="write benchmarks/figures/env_<name>.png")
    parser.add_argument("--figure-size", type=int, default=96, help="pixels per figure panel")
    parser.add_argument("--figure-dir", type=Path, default=Path("benchmarks/figures"))
    args = parser.parse_args(argv)

    env_ids = [e for e in (args.env or ENV_IDS) if _available(e)]
    results = {env_id: benchmark(env_id, args) for env_id in env_ids}
    print(f"\nimg_size {args.img_size}, {args.steps} timed steps/renders, {args.pairs} start/goal pairs\n")
    print(
        "| env | steps/s | renders/s | renders/s no speed flags | gymnasium 480 px + resize/s "
        "| expert success (budget) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for env_id, row in results.items():
        print(
            f"| {env_id} | {fmt(row['steps_per_s'])} | {fmt(row['renders_per_s'])} "
            f"| {fmt(row.get('renders_per_s_no_speed_flags'))} "
            f"| {fmt(row.get('renders_per_s_gymnasium_480px_resize'))} "
            f"| {row['expert_success']:.2f} ({row['planning_budget']}) |"
        )
    payload = {
        "img_size": args.img_size,
        "steps": args.steps,
        "pairs": args.pairs,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "mujoco_gl": os.environ["MUJOCO_GL"],
        },
        "envs": results,
    }
    atomic_write_text(args.out, json.dumps(payload, indent=2))
    print(f"\nwrote {args.out}")
    if args.figures:
        for env_id in env_ids:
            name = env_id.split("/")[-1].removesuffix("-v0").lower()
            path = args.figure_dir / f"env_{name}.png"
            write_figure(env_id, path, args.figure_size, args.seed)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
