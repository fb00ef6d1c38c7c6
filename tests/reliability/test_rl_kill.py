"""``worldmodels rl train`` killed with SIGKILL mid-run and run again ends exactly where an uninterrupted run
ends (issue 18: kill -9 during RL training, then resume and compare)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from worldmodels.data.d4rl import BuildConfig, build_tier

TINY = ["--total-updates", "120", "--rollout-batch-size", "16", "--rollout-every", "10", "--rollout-length", "3",
        "--batch-size", "32", "--hidden", "16", "16", "--eval-every", "20", "--eval-episodes", "1",
        "--max-episode-steps", "20", "--log-every", "10", "--checkpoint-every", "20", "--stats-batch", "32"]  # fmt: skip


def _argv(data, out) -> list[str]:
    return [sys.executable, "-m", "worldmodels.cli", "rl", "train", "--algo", "mbpo", "--data", str(data),
            "--model", "true-dynamics", "--out", str(out), "--no-progress", *TINY]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


def _update(path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["update"])
    except (FileNotFoundError, RuntimeError, EOFError, KeyError):
        return -1


def test_rl_train_killed_and_rerun_equals_an_uninterrupted_run(tmp_path):
    data = tmp_path / "halfcheetah-random"
    build_tier(BuildConfig(env="halfcheetah", tier="random", out=str(data), transitions=1000, restore_samples=4,
                           reference_episodes=1), progress=False)  # fmt: skip
    subprocess.run(_argv(data, tmp_path / "full"), check=True, env=_env(), capture_output=True, timeout=500)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        _argv(data, cut), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 400
    while _update(cut / "checkpoint.pt") < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; raise --total-updates"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _update(cut / "checkpoint.pt")
    assert 40 <= killed_at < 120
    subprocess.run(_argv(data, cut), check=True, env=_env(), capture_output=True, timeout=500)

    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(cut / "checkpoint.pt", weights_only=True)
    assert full["update"] == resumed["update"] == 120
    for key, value in full["agent"].items():
        assert torch.equal(value, resumed["agent"][key]), key
