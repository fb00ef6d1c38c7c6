"""kill -9 during ``planners eval``, then the same command again: it resumes from the pairs already saved
and ends with the results of an uninterrupted run (pair for pair, plan costs included)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from reliability_testing import command

from planners.cli import main as planners_main

ARGS = ["eval", "--model", "oracle", "--env", "worldmodels/Wall-v0", "--planner", "cem", "--mpc", "--pairs", "6",
        "--samples", "30", "--topk", "5", "--iters", "3", "--horizon", "3", "--budget", "25", "--videos", "0",
        "--no-progress", "--threads", "1"]  # fmt: skip


def _comparable(results_json) -> list[dict]:
    saved = json.loads(results_json.read_text())
    return [{k: v for k, v in p.items() if k not in ("plan_time",)} for p in saved["pairs"]]


def test_kill_9_during_eval_then_rerun_gives_the_uninterrupted_results(tmp_path, sub_env):
    out = tmp_path / "killed"
    proc = subprocess.Popen(command("planners", *ARGS, "--out", str(out)), env=sub_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while (
        len(list((out / "pairs").glob("pair_*.json"))) < 2
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "pairs").glob("pair_*.json")))
    assert 2 <= done < 6 and not (out / "results.json").exists(), "the evaluation was not interrupted mid-run"
    saved = {p.name: p.stat().st_mtime_ns for p in (out / "pairs").glob("pair_*.json")}
    assert planners_main([*ARGS, "--out", str(out)]) == 0
    assert all((out / "pairs" / name).stat().st_mtime_ns == t for name, t in saved.items())  # not redone
    assert planners_main([*ARGS, "--out", str(tmp_path / "full")]) == 0
    assert _comparable(out / "results.json") == _comparable(tmp_path / "full" / "results.json")
