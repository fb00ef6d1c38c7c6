"""Data-layer benchmark: collection speed, window-loading speed, size on disk and peak memory.

    python benchmarks/data_bench.py                                  # full size (2000 Wall episodes)
    python benchmarks/data_bench.py --episodes 200 --speed-episodes 4 --out /tmp/data_bench.json

Measures
    * collection env steps/s (policy ``noisy-expert``, ``--img-size`` pixels, committed to a store: includes
      the fsync'd writes) per env (Wall, PointMaze UMaze, Reacher, PushT when ``gym_pusht`` is installed)
      with 1 and 2 worker processes, over ``--speed-episodes`` episodes (wall time of ``collect``, so the
      2-worker numbers include starting the worker processes, ~1 s);
    * for ``--episodes`` Wall episodes collected with 2 workers: wall time, size on disk and peak RSS of
      the process tree (psutil, sampled every 50 ms);
    * windows/s read from that store by :class:`FrameWindowDataModule` (DINO-WM shape: ``num_hist=3``,
      ``num_pred=1``, ``frameskip=5``, batch 32, pixels + proprio, normalised) with 0 and 2 DataLoader
      workers (in a fresh process with ``torch.set_num_threads(1)``), and the peak RSS of its process tree.

Prints a markdown table and writes the same numbers as JSON (atomically) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import psutil

from worldmodels.data.collect import collect
from worldmodels.io import atomic_write_text

ENVS = (
    "worldmodels/Wall-v0",
    "worldmodels/PointMazeUMaze-v0",
    "worldmodels/Reacher-v0",
    "worldmodels/PushT-v0",
)


class PeakRSS:
    """Sample the resident memory of this process and all its children in a background thread."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _available(env_id: str) -> bool:
    if env_id.endswith("PushT-v0"):
        try:
            import gym_pusht  # noqa: F401
        except ImportError:
            return False
    return True


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def collection_speed(env_id: str, episodes: int, workers: int, img_size: int, tmp: Path) -> float:
    out = tmp / f"speed-{env_id.replace('/', '_')}-{workers}"
    store, seconds = timed(
        lambda: collect(
            env_id,
            policy="noisy-expert",
            episodes=episodes,
            out=out,
            workers=workers,
            env_kwargs={"img_size": img_size},
            progress=False,
        )
    )
    steps = int(store.episode_lengths.sum())
    shutil.rmtree(out)
    return steps / seconds


def window_speed(root: Path, num_workers: int, batches: int) -> tuple[float, int]:
    # imported here so the collectors' spawned workers (which re-import this module) stay torch-free
    from worldmodels.data.datamodules import FrameWindowDataModule

    dm = FrameWindowDataModule(str(root), num_hist=3, num_pred=1, frameskip=5, batch_size=32,
                               num_workers=num_workers, keys=("pixels", "proprio"))  # fmt: skip
    dm.setup("fit")
    with PeakRSS() as rss:
        loader = iter(dm.train_dataloader())
        next(loader)  # worker start-up is not part of the rate
        t0 = time.perf_counter()
        n = 0
        for _ in range(batches):
            n += len(next(loader)["episode"])
        seconds = time.perf_counter() - t0
    return n / seconds, rss.peak


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=2000, help="Wall episodes for the size/RSS/loading run")
    p.add_argument("--speed-episodes", type=int, default=40, help="episodes per collection-speed measurement")
    p.add_argument("--img-size", type=int, default=64, help="pixel observation size (default 64)")
    p.add_argument("--batches", type=int, default=100, help="batches per windows/s measurement")
    p.add_argument("--workdir", default=None, help="where to write the datasets (default: a temp dir)")
    p.add_argument("--out", default="benchmarks/results/data_bench.json")
    p.add_argument("--load-only", default=None, help=argparse.SUPPRESS)
    p.add_argument("--load-workers", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.load_only is not None:  # the loading measurement, run by the parent in a fresh process
        import torch

        # one intra-op thread for collate: on a loaded 2-core machine torch's default pool makes each
        # torch.stack of a pixel batch take ~0.25 s instead of ~40 us (threads spin-wait for busy cores)
        torch.set_num_threads(1)
        print(json.dumps(window_speed(Path(args.load_only), args.load_workers, args.batches)))
        return {}

    tmp = Path(tempfile.mkdtemp(prefix="data_bench-", dir=args.workdir))
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": vars(args),
        "collection_steps_per_s": {},
    }
    try:
        for env_id in ENVS:
            if not _available(env_id):
                continue
            results["collection_steps_per_s"][env_id] = {
                str(w): round(collection_speed(env_id, args.speed_episodes, w, args.img_size, tmp), 1)
                for w in (1, 2)
            }
        big = tmp / "wall"
        with PeakRSS() as rss:
            store, seconds = timed(
                lambda: collect(
                    "worldmodels/Wall-v0",
                    policy="noisy-expert",
                    episodes=args.episodes,
                    out=big,
                    workers=2,
                    env_kwargs={"img_size": args.img_size},
                    progress=False,
                )
            )
        results["wall_store"] = {
            "episodes": len(store),
            "steps": int(store.episode_lengths.sum()),
            "collect_seconds": round(seconds, 1),
            "collect_steps_per_s": round(int(store.episode_lengths.sum()) / seconds, 1),
            "size_on_disk_mb": round(store.size_on_disk() / 2**20, 1),
            "collect_peak_rss_mb": round(rss.peak / 2**20, 1),
        }
        results["windows_per_s"] = {}
        # loading runs in a fresh process: importing torch after MuJoCo's EGL context exists in the same
        # process segfaults, and the child's tree is exactly the loader's memory
        for w in (0, 2):
            cmd = [sys.executable, __file__, "--load-only", str(big), "--load-workers", str(w),
                   "--batches", str(args.batches)]  # fmt: skip
            rate, peak = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            results["windows_per_s"][str(w)] = {
                "windows_per_s": round(rate, 1),
                "peak_rss_mb": round(peak / 2**20, 1),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("| measurement | value |\n|---|---|")
    for env_id, by_w in results["collection_steps_per_s"].items():
        for w, v in by_w.items():
            print(f"| collect {env_id} ({args.img_size}px), {w} worker(s) | {v} steps/s |")
    ws = results["wall_store"]
    print(
        f"| collect {ws['episodes']} Wall episodes, 2 workers | {ws['collect_seconds']} s ({ws['collect_steps_per_s']} steps/s) |"
    )
    print(f"| size on disk, {ws['episodes']} Wall episodes | {ws['size_on_disk_mb']} MiB |")
    print(f"| peak RSS (process tree) while collecting | {ws['collect_peak_rss_mb']} MiB |")
    for w, d in results["windows_per_s"].items():
        print(
            f"| windows/s (T=4, fs=5, B=32), {w} DataLoader workers | {d['windows_per_s']} (peak RSS {d['peak_rss_mb']} MiB) |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
