"""Timing for side-by-side benchmarks (``benchmarks/``): functions run alternately in one process, so a change
of load on a shared machine hits every arm alike and only their ratios are compared."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def interleave(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 0) -> dict[str, list[float]]:
    """Run every function once per round (A B A B ..., the order reversed every other round), ``warmup``
    untimed rounds first; returns each function's ``reps`` wall times in seconds."""
    if reps < 1 or warmup < 0:
        raise ValueError(f"reps={reps} must be >= 1 and warmup={warmup} >= 0")
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + reps):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
    return times
