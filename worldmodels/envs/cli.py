"""``worldmodels envs``: list the environments, roll out the scripted expert to mp4.

    worldmodels envs list
    worldmodels envs rollout --env worldmodels/Wall-v0 --env worldmodels/Reacher-v0 --out outputs/envs
    worldmodels envs rollout --all --episodes 2 --out outputs/envs --img-size 64 --seed 0

``rollout`` plays ``--episodes`` start/goal pairs (``sample_start_goal(seed + episode)``) per env with the
expert :class:`~worldmodels.envs.controllers.ScriptedPolicy` for up to ``planning_budget`` steps, writes
one mp4 per env (each frame: current image | goal image) to ``OUT/<name>.mp4`` and prints a table of
steps/s (pixel observations included) and success rates. PushT is skipped with a message when gym-pusht
is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from worldmodels.envs import ALLOWED_IMG_SIZES, ENV_IDS, ScriptedPolicy, env_spec, planning_budget
from worldmodels.io import atomic_path

PUSHT_ID = "worldmodels/PushT-v0"


def _available(env_id: str) -> bool:
    return env_id != PUSHT_ID or importlib.util.find_spec("gym_pusht") is not None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _env_id(text: str) -> str:
    try:
        env_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worldmodels envs", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered environments")
    roll = sub.add_parser("rollout", help="roll out the scripted expert, one mp4 per env")
    which = roll.add_mutually_exclusive_group(required=True)
    which.add_argument("--env", action="append", type=_env_id, metavar="ID",
                       help=f"one of {ENV_IDS}, or yourmodule:YourEnv-v0 for an env your module registers")  # fmt: skip
    which.add_argument("--all", action="store_true", help="every registered env")
    roll.add_argument(
        "--episodes", type=_positive_int, default=1, help="start/goal pairs per env (default 1)"
    )
    roll.add_argument("--out", type=Path, default=Path("outputs/envs"), help="output directory")
    roll.add_argument("--img-size", type=int, default=64, choices=ALLOWED_IMG_SIZES, help="image side")
    roll.add_argument("--seed", type=int, default=0, help="seed of the first start/goal pair")
    roll.add_argument("--fps", type=int, default=10, help="video frame rate")
    return parser


def list_envs() -> int:
    """Print the registered env ids with their step limits."""
    print(f"{'id':<34} {'max_episode_steps':>17} {'planning_budget':>15}  available")
    for env_id in ENV_IDS:
        available = _available(env_id)
        budget = planning_budget(env_id) if available else "-"
        note = "yes" if available else "no (pip install worldmodels[pusht])"
        print(f"{env_id:<34} {gym.spec(env_id).max_episode_steps:>17} {budget!s:>15}  {note}")
    return 0


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Write uint8 ``(H, W, 3)`` frames to an mp4 atomically (:func:`worldmodels.io.atomic_path`)."""
    with atomic_path(path, suffix=".mp4") as tmp:
        imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=16)


def rollout_env(
    env_id: str, episodes: int, img_size: int, seed: int
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Play ``episodes`` expert episodes; returns frames ``(S, 2S, 3)`` (current | goal) and statistics."""
    env = gym.make(env_id, img_size=img_size, max_episode_steps=planning_budget(env_id))
    base = env.unwrapped
    policy = ScriptedPolicy(env, "expert", seed=seed)
    frames: list[np.ndarray] = []
    steps, successes, elapsed = 0, 0, 0.0
    for episode in tqdm(range(episodes), desc=env_id, leave=False, file=sys.stderr):
        start, goal = base.sample_start_goal(seed + episode)
        goal_image = base.render_state(goal)
        obs, _ = env.reset(seed=seed + episode, options={"state": start, "goal_state": goal})
        policy.reset(seed=seed + episode, goal_state=goal)
        frames.append(np.concatenate([obs["pixels"], goal_image], axis=1))
        for _ in range(base.planning_budget):
            tic = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(policy(obs))
            elapsed += time.perf_counter() - tic
            steps += 1
            frames.append(np.concatenate([obs["pixels"], goal_image], axis=1))
            if terminated or truncated:
                break
        successes += int(info.get("is_success", False))
    env.close()
    return frames, {
        "steps": steps,
        "steps_per_s": steps / max(elapsed, 1e-9),
        "success": successes / episodes,
    }


def rollout(args: argparse.Namespace) -> int:
    """Roll out every requested env, write the videos and print the table."""
    env_ids = ENV_IDS if args.all else tuple(dict.fromkeys(args.env))
    rows = []
    for env_id in env_ids:
        if not _available(env_id):
            print(
                f"skipping {env_id}: gym-pusht is not installed (pip install worldmodels[pusht])",
                file=sys.stderr,
            )
            continue
        frames, stats = rollout_env(env_id, args.episodes, args.img_size, args.seed)
        path = args.out / f"{env_id.rpartition(':')[2].split('/')[-1]}.mp4"
        write_video(path, frames, args.fps)
        rows.append((env_id, stats, path))
    print(f"| {'env':<32} | steps | steps/s | success | video |")
    print(f"|{'-' * 34}|------:|--------:|--------:|-------|")
    for env_id, stats, path in rows:
        print(
            f"| {env_id:<32} | {stats['steps']:>5} | {stats['steps_per_s']:>7.0f} | {stats['success']:>7.2f} | {path} |"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``worldmodels envs``; returns the exit code."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "list":
        return list_envs()
    return rollout(args)


if __name__ == "__main__":
    sys.exit(main())
