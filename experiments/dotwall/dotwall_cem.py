"""Is our Wall harder than DINO-WM's? MPC+CEM with exact dynamics on both rule sets, side by side.

DINO-WM reports MPC+CEM 0.96 on its Wall task (the DotWall environment of its public code). This script
plans with the *exact* dynamics of two worlds, so no world model is involved:

* ``wall``: ``worldmodels/Wall-v0`` (our env: a disk agent, actions clamped to ``[-1, 1]``, 2.5 units per
  axis per step, sliding contacts; pairs from its ``sample_start_goal``), stepped by the env's own
  :func:`worldmodels.envs.wall.wall_step`;
* ``dotwall``: DINO-WM's DotWall rules, re-implemented here from reading its code: a point agent moves by
  twice the action, unclamped; a step that crosses the wall (x = 29 and 35 outside the door 26 < y < 34),
  the door's top or bottom edge between the wall faces, or the border (4 and 60) ends at the crossing point
  moved back by 0.5; the start/goal sampler (x in [7.4, 25.6] and [38.4, 56.6], y in [7.4, 56.6], direction
  swapped half the time, ``numpy.random.RandomState(seed)``); success = distance < 4.5. The planner works in
  DINO-WM's z-scored action space: one unit is the data's per-axis action std (0.76 env units: step
  lengths ~ N(1, 0.4) truncated to [0.2, 1.8] in random directions).

Every row is MPC over the library's planners (``planners.build_planner`` + ``planners.mpc.MPC``) with horizon
5 model steps x frameskip 5 env steps, cost = distance of the last predicted position to the goal (any
increasing function of it ranks CEM's candidates the same, so DINO-WM's squared-error cost is covered), run
to ``--budget`` env steps (250); the first env step within the success distance is recorded, and the
table gives the success rate within 50 env steps and within the budget. ``check: chunk`` tests success
only at the end of each executed chunk, as DINO-WM's MPC evaluator does. Two rows add CEM's options that
depart from DINO-WM (``return_best``, ``refit_unclamped``; on DotWall's unclamped actions only the first acts).

    python experiments/dotwall/dotwall_cem.py            # every row, 200 pairs per world, ~11 min on 2 cores
    python experiments/dotwall/dotwall_cem.py --only readme --pairs 50
    python experiments/dotwall/dotwall_cem.py --only dinowm --worlds dotwall --budget 1000 --out /tmp/dw1000.jsonl

As each row finishes, its summary (success rates with 95 % intervals, seconds per plan) is merged into
``--out`` (JSON lines, one row per line; ``experiments/dotwall/results.jsonl`` is committed) and its full record (each
pair's first successful env step, the failed pairs) is written to ``--runs`` (git-ignored ``runs/``); the
markdown table is printed at the end, so an interrupted run resumes with ``--only`` for the rows still
missing.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from planners import build_planner
from planners.evaluate import wilson_interval
from planners.mpc import MPC
from worldmodels.io import atomic_write_text

FRAMESKIP = 5
SHORT_BUDGET = 50  # the README protocol's Wall budget

# DINO-WM DotWall geometry (65 x 65 image units): wall centre, faces, door centre and half-height, borders
DW_WALL_X, DW_LEFT_FACE, DW_RIGHT_FACE = 32.0, 29.0, 35.0
DW_DOOR_Y, DW_DOOR_HALF = 30.0, 4.0
DW_BORDER_LO, DW_BORDER_HI = 4.0, 60.0
DW_PAD = 2 * 1.7  # 2 * dot_std
DW_SUCCESS = 4.5
DW_ACTION_STD = 0.76  # per-axis std of the data's actions, the z-scored planning unit
DW_PUSH_BACK = 0.5


def dotwall_step(p1: Tensor, action: Tensor) -> Tensor:
    """One DotWall step for a batch: ``p1 (B, 2)`` positions, ``action (B, 2)`` in env units."""
    p2 = p1 + 2.0 * action
    dx, dy = (p2 - p1).unbind(-1)
    x1, y1 = p1.unbind(-1)
    out = p2.clone()
    full = torch.full_like

    def at(x: Tensor, y: Tensor) -> Tensor:
        return torch.stack([x, y], -1)

    # the door's top / bottom edge, between the wall faces: stop there, pushed back into the door (and +x)
    door_top, door_bot = DW_DOOR_Y + DW_DOOR_HALF, DW_DOOR_Y - DW_DOOR_HALF
    handled = torch.zeros_like(dx, dtype=torch.bool)
    for edge, moving, sign in ((door_top, dy > 0, -1.0), (door_bot, dy < 0, 1.0)):
        crosses = moving & ((y1 - edge) * (p2[:, 1] - edge) < 0)
        x_edge = x1 + (edge - y1) * dx / dy
        hit = crosses & (x_edge >= DW_LEFT_FACE) & (x_edge <= DW_RIGHT_FACE) & ~handled
        out = torch.where(hit[:, None], at(x_edge + DW_PUSH_BACK, full(dx, edge + sign * DW_PUSH_BACK)), out)
        handled |= hit

    # walls to the left / right of the agent: the near wall face (with the door) and the border (without)
    left_of_wall = x1 < DW_WALL_X
    lo_x = torch.where(left_of_wall, full(dx, DW_BORDER_LO), full(dx, DW_RIGHT_FACE))
    hi_x = torch.where(left_of_wall, full(dx, DW_LEFT_FACE), full(dx, DW_BORDER_HI))

    def vertical(w: Tensor, has_door: Tensor) -> tuple[Tensor, Tensor]:
        crosses = torch.sign(x1 - w) * torch.sign(p2[:, 0] - w) <= 0.1
        y = y1 + (w - x1) * dy / dx
        outside_door = (y < door_bot) | (y > door_top)
        return crosses & (~has_door | outside_door), y

    v_lo, y_lo = vertical(lo_x, ~left_of_wall)
    v_hi, y_hi = vertical(hi_x, left_of_wall)
    v, vx, vy = v_lo | v_hi, torch.where(v_lo, lo_x, hi_x), torch.where(v_lo, y_lo, y_hi)

    def horizontal(w: float) -> tuple[Tensor, Tensor]:
        crosses = torch.sign(y1 - w) * torch.sign(p2[:, 1] - w) <= 0.1
        return crosses, x1 + (w - y1) * dx / dy

    h_lo, x_lo = horizontal(DW_BORDER_LO)
    h_hi, x_hi = horizontal(DW_BORDER_HI)
    h, hx = h_lo | h_hi, torch.where(h_lo, x_lo, x_hi)
    hy = torch.where(h_lo, full(dx, DW_BORDER_LO), full(dx, DW_BORDER_HI))
    use_v = v & (~h | (torch.hypot(x1 - vx, y1 - vy) < torch.hypot(x1 - hx, y1 - hy)))
    use_h = h & ~use_v
    # pushed back by 0.5 along the normal (and +0.5 along the other axis, as DotWall does), kept inside
    rx = torch.where(use_v, vx + DW_PUSH_BACK * torch.sign(x1 - vx), hx + DW_PUSH_BACK)
    ry = torch.where(use_v, vy + DW_PUSH_BACK, hy + DW_PUSH_BACK * torch.sign(y1 - hy))
    rx = torch.minimum(torch.maximum(rx, lo_x), hi_x)
    ry = ry.clamp(DW_BORDER_LO, DW_BORDER_HI)
    rx = torch.where(rx <= lo_x, lo_x + 0.3, torch.where(rx >= hi_x, hi_x - 0.3, rx))
    ry = torch.where(ry <= DW_BORDER_LO, ry.new_tensor(DW_BORDER_LO + 0.3), ry)
    ry = torch.where(ry >= DW_BORDER_HI, ry.new_tensor(DW_BORDER_HI - 0.3), ry)
    collided = (use_v | use_h) & ~handled
    return torch.where(collided[:, None], at(rx, ry), out)


def dotwall_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """DotWall's start/goal sampler: opposite sides of the wall, DINO-WM's padding, ``RandomState(seed)``."""
    rs = np.random.RandomState(seed)
    lo = DW_BORDER_LO + DW_PAD
    start_x = rs.uniform(lo, DW_LEFT_FACE - DW_PAD)
    goal_x = rs.uniform(DW_RIGHT_FACE + DW_PAD, 64.0 - lo)
    start_y, goal_y = rs.uniform(lo, 64.0 - lo), rs.uniform(lo, 64.0 - lo)
    if rs.uniform(0, 1) < 0.5:
        start_x, goal_x = goal_x, start_x
    return np.array([start_x, start_y]), np.array([goal_x, goal_y])


@dataclass
class World:
    """Exact dynamics of one task: ``step(pos (B, 2), planning action (B, 2)) -> pos``, the start/goal
    sampler, the success distance and the planning-action box (per env-action component)."""

    name: str
    step: Callable[[Tensor, Tensor], Tensor]
    pair: Callable[[int], tuple[np.ndarray, np.ndarray]]
    success: float
    bound: float


def _wall_world() -> World:
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401  (registers the ids)
    from worldmodels.envs.wall import SUCCESS_DISTANCE, wall_step

    env = gym.make("worldmodels/Wall-v0").unwrapped

    def pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
        start, goal = env.sample_start_goal(seed)
        return start[:2], goal[:2]

    return World("wall", wall_step, pair, SUCCESS_DISTANCE, 1.0)


def _dotwall_world() -> World:
    # z-scored planning actions, unclamped (the box is 20 std wide, never reached)
    return World("dotwall", lambda p, a: dotwall_step(p, a * DW_ACTION_STD), dotwall_pair, DW_SUCCESS, 10.0)


WORLDS: dict[str, Callable[[], World]] = {"wall": _wall_world, "dotwall": _dotwall_world}


@functools.cache
def _world(name: str) -> World:
    """One :class:`World` per process, shared by the pairs it plans."""
    return WORLDS[name]()


@dataclass
class Row:
    name: str
    change: str
    planner: str = "cem"
    planner_kwargs: dict[str, Any] = field(
        default_factory=lambda: {"samples": 100, "topk": 10, "iterations": 5}
    )
    execute: int = 2
    check: str = "step"


def rows() -> list[Row]:
    dinowm = {"samples": 300, "topk": 30, "iterations": 10}
    return [
        Row("readme", "README protocol: CEM 100 samples x 5 iterations, top-k 10, execute 2 model steps"),
        Row("dinowm", "DINO-WM's Wall MPC+CEM: 300 samples x 10 iterations, top-k 30, execute all 5",
            planner_kwargs=dinowm, execute=5),
        Row("dinowm_chunk", "as dinowm, success tested only at the end of each executed chunk (DINO-WM)",
            planner_kwargs=dinowm, execute=5, check="chunk"),
        Row("dinowm_i30", "as dinowm with 30 iterations (DINO-WM's CEM default)",
            planner_kwargs={**dinowm, "iterations": 30}, execute=5),
        Row("readme_best_unclamped", "README protocol, CEM `--return-best --refit-unclamped`",
            planner_kwargs={"samples": 100, "topk": 10, "iterations": 5, "return_best": True,
                            "refit_unclamped": True}),
        Row("dinowm_best_unclamped", "as dinowm, CEM `--return-best --refit-unclamped`",
            planner_kwargs={**dinowm, "return_best": True, "refit_unclamped": True}, execute=5),
        Row("icem_sub5", "reference: README MPC+iCEM, noise coloured along env time (substeps 5)",
            planner="icem", planner_kwargs={"samples": 100, "topk": 10, "iterations": 5, "substeps": 5}),
    ]  # fmt: skip


def run_pair(world_name: str, row: Row, seed: int, budget: int) -> tuple[int | None, float, int]:
    """MPC from pair ``seed`` for ``budget`` env steps; returns (first env step within the success distance
    or None, planning seconds, plans)."""
    torch.set_num_threads(1)
    world = _world(world_name)
    start, goal_np = world.pair(seed)
    goal = torch.as_tensor(goal_np, dtype=torch.float64)
    pos = torch.as_tensor(start, dtype=torch.float64)[None]
    state = {"pos": pos, "t": 0, "hit": None}

    def rollout(p0: Tensor, actions: Tensor) -> Tensor:
        b = actions.shape[0]
        p = p0.expand(b, 2)
        for a in actions.double().reshape(b, -1, 2).unbind(1):
            p = world.step(p, a.clamp(-world.bound, world.bound))
        return p

    def make_cost_fn(p0: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda actions: (rollout(p0, actions) - goal).norm(dim=-1).float()

    def step(actions: Tensor) -> bool:
        for a in actions.double().reshape(-1, 2):
            state["pos"] = world.step(state["pos"], a[None].clamp(-world.bound, world.bound))
            state["t"] += 1
            if row.check == "step" and float((state["pos"][0] - goal).norm()) < world.success:
                state["hit"] = state["t"]
                return True
        if row.check == "chunk" and float((state["pos"][0] - goal).norm()) < world.success:
            state["hit"] = state["t"]
            return True
        return False

    planner = build_planner(row.planner, **row.planner_kwargs)
    mpc = MPC(planner, horizon=5, execute=row.execute, max_steps=budget // FRAMESKIP)
    box = torch.full((2 * FRAMESKIP,), world.bound)
    result = mpc.run(
        lambda: state["pos"], make_cost_fn, step, low=-box, high=box,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    return state["hit"], sum(result.plan_times), len(result.plan_times)


def run_row(world: str, row: Row, pairs: int, workers: int, budget: int) -> dict[str, Any]:
    """Every pair of one row in one world: the summary fields plus each pair's first successful env step."""
    t0 = time.perf_counter()
    seeds = list(range(pairs))
    with ProcessPoolExecutor(workers) as pool:
        out = list(pool.map(run_pair, [world] * pairs, [row] * pairs, seeds, [budget] * pairs))
    hits = [h for h, _, _ in out]
    success = {}
    for b in (SHORT_BUDGET, budget):
        n = sum(1 for h in hits if h is not None and h <= b)
        success[str(b)] = {"rate": n / pairs, "ci95": list(wilson_interval(n, pairs))}
    return {
        "world": world, "name": row.name, "change": row.change, "planner": row.planner,
        "planner_kwargs": row.planner_kwargs, "execute": row.execute, "check": row.check, "pairs": pairs,
        "budget": budget, "success": success,
        "plan_time_s": sum(t for _, t, _ in out) / max(1, sum(n for _, _, n in out)),
        "wall_s": time.perf_counter() - t0,
        "first_success_step": hits, "failed_pairs": [s for s, h in zip(seeds, hits) if h is None],
    }  # fmt: skip


#: the per-pair fields of a row, written under ``--runs`` only
PER_PAIR = ("first_success_step", "failed_pairs")


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| world | row | change | success, 50 env steps | budget | success within the budget | s per plan |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = []
        for b in (SHORT_BUDGET, r["budget"]):
            s = r["success"][str(b)]
            cells.append(f"{s['rate']:.2f} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]")
        lines.append(
            f"| {r['world']} | {r['name']} | {r['change']} | {cells[0]} | {r['budget']} | {cells[1]} "
            f"| {r['plan_time_s']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=200, help="start/goal pairs per world and row (default: 200)")
    p.add_argument("--budget", type=int, default=250, help="env steps per episode (default: 250)")
    p.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    p.add_argument("--only", default=None, help="comma-separated row names (default: every row)")
    p.add_argument("--worlds", default="wall,dotwall", help="comma-separated worlds (default: wall,dotwall)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("experiments/dotwall/results.jsonl"),
        help="summary, one line per row (default: experiments/dotwall/results.jsonl)",
    )
    p.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/experiments/dotwall"),
        help="full per-row records (default: runs/experiments/dotwall)",
    )
    args = p.parse_args(argv)
    if args.pairs < 1:
        p.error(f"--pairs {args.pairs}: must be >= 1")
    if args.budget < SHORT_BUDGET or args.budget % FRAMESKIP:
        p.error(f"--budget {args.budget}: must be a multiple of {FRAMESKIP} and >= {SHORT_BUDGET}")
    names = [r.name for r in rows()]
    wanted = args.only.split(",") if args.only else names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        p.error(f"--only: unknown rows {unknown}; known: {names}")
    worlds = args.worlds.split(",")
    if bad := [w for w in worlds if w not in WORLDS]:
        p.error(f"--worlds: unknown worlds {bad}; known: {list(WORLDS)}")

    def key(r: dict[str, Any]) -> tuple[int, int]:
        return names.index(r["name"]), list(WORLDS).index(r["world"])

    results: list[dict[str, Any]] = []
    if args.out.exists():  # keep the other rows of an earlier run with the same pairs and budget
        earlier = [json.loads(line) for line in args.out.read_text().splitlines()]
        results = [
            r for r in earlier
            if r.get("pairs") == args.pairs and r.get("budget") == args.budget and r["name"] in names
            and not (r["name"] in wanted and r["world"] in worlds)
        ]  # fmt: skip
    todo = [(w, r) for r in rows() if r.name in wanted for w in worlds]
    for i, (world, row) in enumerate(todo):
        print(f"[{i + 1}/{len(todo)}] {world} / {row.name}: {row.change}", file=sys.stderr, flush=True)
        res = run_row(world, row, args.pairs, args.workers, args.budget)
        short, full = res["success"][str(SHORT_BUDGET)]["rate"], res["success"][str(args.budget)]["rate"]
        print(f"  success within {SHORT_BUDGET} / {args.budget} env steps: {short:.2f} / {full:.2f} "
              f"({res['wall_s']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
        atomic_write_text(
            args.runs / f"{world}_{row.name}_pairs{args.pairs}_budget{args.budget}.json",
            json.dumps(res, indent=1),
        )
        summary = {k: v for k, v in res.items() if k not in PER_PAIR}
        results = sorted([*results, summary], key=key)
        atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
