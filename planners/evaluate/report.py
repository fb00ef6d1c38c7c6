"""What an evaluation reports: per-pair and overall results, and the files written under ``out``
(``results.json``, one ``pair_XXX.mp4`` per pair, ``plot.png``), each written atomically
(:mod:`worldmodels.io`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from worldmodels.io import atomic_path, atomic_write_text


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % for the default ``z``); ``(0, 1)`` if ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class PairResult:
    """One start/goal pair.

    Attributes:
        index: pair number; the env's ``sample_start_goal`` seed is ``seed + index``.
        success: the env's ``is_success`` held at some step (the episode then terminates).
        env_steps: env steps executed.
        final_distance: Euclidean distance between the final and the goal proprio, in env units (Wall: the
            agent position; PointMaze: position and velocity, the goal at rest).
        plan_calls: planner calls (1 open loop; one per re-plan with MPC).
        plan_time: total seconds spent in the planner.
        final_plan_cost: the planner's cost of its last plan.
        costs: per-iteration ``cost`` trace of the first plan (for plots).
        video: path of the episode's mp4 (or ``None``).
    """

    index: int
    success: bool
    env_steps: int
    final_distance: float
    plan_calls: int
    plan_time: float
    final_plan_cost: float
    costs: list[float] = field(default_factory=list)
    video: str | None = None


@dataclass
class EvalResult:
    """Outcome of :func:`~planners.evaluate.evaluate`: success rate with its 95 % Wilson interval, per-pair
    results, mean planning time per planner call (s), the config, and the output directory."""

    success_rate: float
    ci95: tuple[float, float]
    plan_time_per_step_s: float
    pairs: list[PairResult]
    config: dict[str, Any]
    out: Path | None = None

    @classmethod
    def from_pairs(cls, pairs: list[PairResult], config: dict[str, Any], out: Path | None) -> EvalResult:
        """Aggregate the pairs (in index order)."""
        n_success = sum(p.success for p in pairs)
        calls = sum(p.plan_calls for p in pairs)
        return cls(
            success_rate=n_success / len(pairs),
            ci95=wilson_interval(n_success, len(pairs)),
            plan_time_per_step_s=sum(p.plan_time for p in pairs) / max(calls, 1),
            pairs=pairs,
            config=config,
            out=out,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what ``results.json`` holds)."""
        return {
            "success_rate": self.success_rate,
            "ci95": list(self.ci95),
            "plan_time_per_step_s": self.plan_time_per_step_s,
            "config": self.config,
            "pairs": [asdict(p) for p in self.pairs],
        }


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def write_report(result: EvalResult) -> None:
    """``results.json`` and ``plot.png`` under ``result.out``."""
    write_json(result.out / "results.json", result.to_dict())
    write_plot(result.out / "plot.png", result)


def _upscale(img: np.ndarray, min_size: int = 128) -> np.ndarray:
    k = max(1, math.ceil(min_size / img.shape[0]))
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def _resize_like(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if img.shape == ref.shape:
        return img
    t = rearrange(torch.as_tensor(img), "h w c -> 1 c h w").float()
    t = torch.nn.functional.interpolate(t, size=ref.shape[:2], mode="nearest")
    return rearrange(t[0], "c h w -> h w c").to(torch.uint8).numpy()


def video_frames(
    real: list[np.ndarray], imagined: list[np.ndarray | None], goal: np.ndarray
) -> list[np.ndarray]:
    """One frame per env step, ``(H, W, 3)`` uint8 panels side by side: real | imagined (when any step
    has one; black before the first plan) | goal, upscaled to at least 128 px high."""
    out = []
    has_imagined = any(im is not None for im in imagined)
    for frame, im in zip(real, imagined, strict=True):
        panels = [frame]
        if has_imagined:
            panels.append(np.zeros_like(frame) if im is None else _resize_like(im, frame))
        panels.append(goal)
        out.append(_upscale(np.concatenate(panels, axis=1)))
    return out


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import imageio.v2 as imageio

    with atomic_path(path, suffix=path.suffix) as tmp:
        imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=16)


def write_plot(path: Path, result: EvalResult) -> None:
    """Success per pair (with the rate and its interval) beside each first plan's cost per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(9, 3.2))
    idx = [p.index for p in result.pairs]
    ax_s.bar(idx, [float(p.success) for p in result.pairs], color="tab:green")
    lo, hi = result.ci95
    ax_s.axhline(
        result.success_rate, color="k", lw=1, label=f"rate {result.success_rate:.2f} [{lo:.2f}, {hi:.2f}]"
    )
    ax_s.set(xlabel="pair", ylabel="success", ylim=(0, 1.05), title="success per pair")
    ax_s.legend(loc="lower right", fontsize=8)
    for p in result.pairs:
        if p.costs:
            ax_c.plot(range(1, len(p.costs) + 1), p.costs, alpha=0.5)
    ax_c.set(xlabel="planner iteration", ylabel="cost", title="first plan: best cost per iteration")
    if any(c > 0 for p in result.pairs for c in p.costs):
        ax_c.set_yscale("log")
    fig.tight_layout()
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
