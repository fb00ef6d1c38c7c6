"""How well can MPC+CEM do on Wall at all? CEM variants planned with the exact Wall dynamics.

Every row plans the same start/goal pairs of ``worldmodels/Wall-v0`` with the oracle model
(:class:`worldmodels.models.oracle.WallOracleModel`: the env's own collision dynamics), so the success rate
is the planner's and the protocol's ceiling, not a world model's. The first row is the README protocol (MPC+CEM,
100 samples x 5 iterations, top-k 10, horizon 5, execute 2, budget 50 env steps); every other row changes
one thing: DINO-WM's CEM shapes, longer budgets, DINO-WM's MPC (execute the whole plan), horizon and
objective, initial std, coloured noise, actions held over the frameskip, three env variants that move
the task towards DINO-WM's DotWall (a faster agent, no sliding along walls, DINO-WM's margins for the
start/goal sampler), and CEM's two options that depart from DINO-WM (``return_best``: the cheapest sequence
seen instead of the final mean; ``refit_unclamped``: refit to the elites before clamping), alone, together
and with noise coloured along env time. The last row is the reference: MPC+iCEM with noise coloured along
env time.

    python experiments/wall_cem_ceiling/wall_cem_ceiling.py          # all rows, about 30 min on 2 cores
    python experiments/wall_cem_ceiling/wall_cem_ceiling.py --only base,step_5
    python experiments/wall_cem_ceiling/wall_cem_ceiling.py --seed 1000 --only base,best_unclamped   # other pairs

Each row's pairs are saved under ``--runs`` (git-ignored ``runs/``: every pair's result, videos off) as
they finish, so an interrupted run resumes where it stopped; each finished row's summary (success rate,
95 % interval, seconds per plan, failed pairs) is merged into ``--out``, one line per row
(JSON lines; ``experiments/wall_cem_ceiling/results_seed{0,1000,2000}.jsonl`` are committed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from einops import reduce, repeat
from torch import Tensor

from planners import build_planner
from planners.base import PlanResult
from planners.evaluate import EvalOptions, evaluate
from worldmodels.api import CostFn
from worldmodels.io import atomic_write_text
from worldmodels.models.oracle import WallOracleModel

ENV = "worldmodels/Wall-v0"
BASE_CEM = {"samples": 100, "topk": 10, "iterations": 5}


class HeldCEM:
    """CEM over one env action per planning step, held for the ``substeps`` env steps of the frameskip
    (action repeat): a ``(horizon, 2)`` search instead of ``(horizon, 2 * substeps)``."""

    differentiable: ClassVar[bool] = False

    def __init__(self, substeps: int, **cem_kwargs: Any):
        self.substeps, self.cem = substeps, build_planner("cem", **cem_kwargs)

    def plan(
        self, cost_fn: CostFn, *, horizon: int, action_dim: int, low: Tensor, high: Tensor,
        init: Tensor | None = None, generator: torch.Generator,
    ) -> PlanResult:  # fmt: skip
        k = self.substeps
        held_low, held_high = low.reshape(k, -1)[0], high.reshape(k, -1)[0]

        def expand(a: Tensor) -> Tensor:
            return repeat(a, "... t a -> ... t (k a)", k=k)

        held_init = None if init is None else reduce(init, "t (k a) -> t a", "mean", k=k)
        result = self.cem.plan(
            lambda a: cost_fn(expand(a)), horizon=horizon, action_dim=action_dim // k, low=held_low,
            high=held_high, init=held_init, generator=generator,
        )  # fmt: skip
        return PlanResult(expand(result.actions), result.cost, result.info)


@dataclass
class Variant:
    name: str
    change: str
    planner: str = "cem"
    planner_kwargs: dict[str, Any] = field(default_factory=lambda: dict(BASE_CEM))
    eval_kwargs: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    held: bool = False


def variants() -> list[Variant]:
    dinowm = {"samples": 300, "topk": 30}
    return [
        Variant("base", "README protocol: 100 samples x 5 iterations, top-k 10, horizon 5, execute 2, budget 50"),
        Variant("dinowm_300x10", "DINO-WM's Wall CEM: 300 samples, top-k 30, 10 iterations",
                planner_kwargs={**dinowm, "iterations": 10}),
        Variant("dinowm_300x30", "DINO-WM's default CEM: 300 samples, top-k 30, 30 iterations",
                planner_kwargs={**dinowm, "iterations": 30}),
        Variant("iters_30", "30 iterations", planner_kwargs={**BASE_CEM, "iterations": 30}),
        Variant("budget_100", "budget 100 env steps", eval_kwargs={"budget": 100}),
        Variant("execute_5_b100", "DINO-WM's MPC: execute all 5 model steps, budget 100",
                eval_kwargs={"execute": 5, "budget": 100}),
        Variant("execute_5_b250", "DINO-WM's MPC: execute all 5 model steps, budget 250",
                eval_kwargs={"execute": 5, "budget": 250}),
        Variant("execute_1", "re-plan after every model step", eval_kwargs={"execute": 1}),
        Variant("horizon_8", "horizon 8", eval_kwargs={"horizon": 8}),
        Variant("horizon_10", "horizon 10", eval_kwargs={"horizon": 10}),
        Variant("horizon_8_all", "horizon 8, distance on all frames",
                eval_kwargs={"horizon": 8, "objective_mode": "all"}),
        Variant("horizon_10_all", "horizon 10, distance on all frames",
                eval_kwargs={"horizon": 10, "objective_mode": "all"}),
        Variant("horizon_8_all_base2", "horizon 8, all frames weighted as DINO-WM's (base 2: discount 0.5)",
                eval_kwargs={"horizon": 8, "objective_mode": "all", "discount": 0.5}),
        Variant("horizon_10_all_base2", "horizon 10, all frames weighted as DINO-WM's (base 2: discount 0.5)",
                eval_kwargs={"horizon": 10, "objective_mode": "all", "discount": 0.5}),
        Variant("horizon_10_all_i15", "horizon 10, all frames, 15 iterations",
                planner_kwargs={**BASE_CEM, "iterations": 15},
                eval_kwargs={"horizon": 10, "objective_mode": "all"}),
        Variant("var_scale_2", "initial std 2", planner_kwargs={**BASE_CEM, "var_scale": 2.0}),
        Variant("var_scale_3", "initial std 3", planner_kwargs={**BASE_CEM, "var_scale": 3.0}),
        Variant("coloured", "noise coloured along env time (beta 2, substeps 5)",
                planner_kwargs={**BASE_CEM, "beta": 2.0, "substeps": 5}),
        Variant("held", "one action per model step, held for its 5 env steps", held=True),
        Variant("step_3.75", "env: agent 1.5x faster (3.75 units per axis per step)",
                env_kwargs={"max_step": 3.75}),
        Variant("step_5", "env: agent 2x faster (5 units per axis per step)", env_kwargs={"max_step": 5.0}),
        Variant("no_slide", "env: stops at a wall contact (DotWall) instead of sliding along it",
                env_kwargs={"slide": False}),
        Variant("dinowm_margins", "env: start/goal 3.35 units from border and wall (DotWall's padding)",
                env_kwargs={"pair_margin": 3.35}),
        Variant("best", "return the cheapest sequence seen, not the final mean (`--return-best`)",
                planner_kwargs={**BASE_CEM, "return_best": True}),
        Variant("unclamped", "refit to the elites before clamping (`--refit-unclamped`)",
                planner_kwargs={**BASE_CEM, "refit_unclamped": True}),
        Variant("best_unclamped", "both: `--return-best --refit-unclamped`",
                planner_kwargs={**BASE_CEM, "return_best": True, "refit_unclamped": True}),
        Variant("dinowm_300x10_best_unclamped", "both, at DINO-WM's Wall CEM shapes (300 samples, top-k 30, 10 iterations)",
                planner_kwargs={**dinowm, "iterations": 10, "return_best": True, "refit_unclamped": True}),
        Variant("coloured_best", "`--return-best`, noise coloured along env time (beta 2, substeps 5)",
                planner_kwargs={**BASE_CEM, "return_best": True, "beta": 2.0, "substeps": 5}),
        Variant("coloured_best_unclamped", "`--return-best --refit-unclamped`, noise coloured along env time",
                planner_kwargs={**BASE_CEM, "return_best": True, "refit_unclamped": True, "beta": 2.0,
                                "substeps": 5}),
        Variant("icem_sub5", "reference: MPC+iCEM, noise coloured along env time (substeps 5)",
                planner="icem", planner_kwargs={**BASE_CEM, "substeps": 5}),
    ]  # fmt: skip


def run_variant(v: Variant, pairs: int, workers: int, runs: Path, seed: int = 0) -> dict[str, Any]:
    env = v.env_kwargs
    model = WallOracleModel(**{k: v for k, v in env.items() if k in ("max_step", "slide")})  # same dynamics
    planner: Any = HeldCEM(model.frameskip, **v.planner_kwargs) if v.held else v.planner
    options = EvalOptions(
        pairs=pairs, seed=seed, mpc=True, out=runs / v.name, videos=0, progress=False, workers=workers,
        planner_kwargs={} if v.held else v.planner_kwargs, env_kwargs=env,
        **{"horizon": 5, "execute": 2, **v.eval_kwargs},
    )  # fmt: skip
    t0 = time.perf_counter()
    result = evaluate(model, ENV, planner, options)
    return {
        "name": v.name, "change": v.change, "pairs": pairs, "seed": seed, "planner": v.planner, "planner_kwargs": v.planner_kwargs,
        "held": v.held, "eval_kwargs": v.eval_kwargs, "env_kwargs": env, "success_rate": result.success_rate,
        "ci95": list(result.ci95), "plan_time_per_step_s": result.plan_time_per_step_s,
        "failed_pairs": [p.index for p in result.pairs if not p.success], "wall_s": time.perf_counter() - t0,
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | change from the README protocol | success | 95% CI | s per plan | failed pairs |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        failed = ", ".join(map(str, r["failed_pairs"]))
        lines.append(
            f"| {r['name']} | {r['change']} | {r['success_rate']:.2f} | [{lo:.2f}, {hi:.2f}] "
            f"| {r['plan_time_per_step_s']:.2f} | {failed} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=50, help="start/goal pairs per row (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="pair i is sample_start_goal(seed + i) (default: 0)")
    p.add_argument("--workers", type=int, default=2, help="processes per row (default: 2)")
    p.add_argument("--only", default=None, help="comma-separated row names (default: every row)")
    p.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="per-pair results (default: runs/experiments/wall_cem_ceiling_seedN)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="summary (default: experiments/wall_cem_ceiling/results_seedN.jsonl)",
    )
    args = p.parse_args(argv)
    args.runs = args.runs or Path(f"runs/experiments/wall_cem_ceiling_seed{args.seed}")
    args.out = args.out or Path(f"experiments/wall_cem_ceiling/results_seed{args.seed}.jsonl")
    todo = variants()
    if args.only:
        names = {v.name for v in todo}
        wanted = args.only.split(",")
        unknown = [n for n in wanted if n not in names]
        if unknown:
            p.error(f"--only: unknown rows {unknown}; known: {sorted(names)}")
        todo = [v for v in todo if v.name in wanted]
    torch.set_num_threads(1)
    order = [v.name for v in variants()]
    rows: list[dict[str, Any]] = []
    if args.only and args.out.exists():  # keep the other rows of an earlier run with the same pairs
        earlier = [json.loads(line) for line in args.out.read_text().splitlines()]
        rows = [
            r for r in earlier
            if r["pairs"] == args.pairs and r["seed"] == args.seed and r["name"] in order
            and r["name"] not in args.only.split(",")
        ]  # fmt: skip
    for i, v in enumerate(todo):
        print(f"[{i + 1}/{len(todo)}] {v.name}: {v.change}", file=sys.stderr, flush=True)
        row = run_variant(v, args.pairs, args.workers, args.runs, args.seed)
        print(f"  success {row['success_rate']:.2f}", file=sys.stderr, flush=True)
        rows = sorted([*rows, row], key=lambda r: order.index(r["name"]))
        atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in rows))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
