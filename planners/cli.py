"""The ``planners`` command.

planners eval --model runs/demo/fit/model --env worldmodels/Wall-v0 --planner cem --mpc --pairs 50 --seed 0 --out runs/eval
"""

from __future__ import annotations

import argparse
import json
import sys

from planners import PLANNERS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planners", description="Plan with world models.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="zero-shot goal reaching (DINO-WM protocol): success rate, videos, plot")
    e.add_argument(
        "--model", required=True, help="saved world model directory (config.json + model.safetensors)"
    )
    e.add_argument("--env", required=True, help="env id, e.g. worldmodels/Wall-v0")
    e.add_argument("--planner", default="cem", choices=PLANNERS)
    e.add_argument("--mpc", action="store_true", help="re-plan after --execute model steps (else open loop)")
    e.add_argument("--pairs", type=int, default=50)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default=None, help="directory for results.json, videos, plot.png")
    e.add_argument("--horizon", type=int, default=5)
    e.add_argument("--execute", type=int, default=1, help="MPC: model steps executed per plan")
    e.add_argument("--samples", type=int, default=300)
    e.add_argument("--topk", type=int, default=30)
    e.add_argument(
        "--iters", type=int, default=10, help="planner iterations (DINO-WM: 10 Wall/PointMaze, 30 else)"
    )
    e.add_argument("--gd-steps", type=int, default=100)
    e.add_argument("--gd-lr", type=float, default=0.1)
    e.add_argument(
        "--alpha", type=float, default=1.0, help="weight of the proprio term (DINO-WM: 0 PointMaze)"
    )
    e.add_argument("--objective", default="last", choices=("last", "all"))
    e.add_argument("--chunk-size", type=int, default=None)
    e.add_argument("--videos", type=int, default=None, help="pairs that get a video (default all)")
    return p


def planner_kwargs(name: str, args: argparse.Namespace) -> dict:
    if name == "cem":
        return {"samples": args.samples, "topk": args.topk, "iterations": args.iters}
    if name == "icem":
        return {"samples": args.samples, "topk": args.topk, "iterations": args.iters}
    if name == "mppi":
        return {"samples": args.samples, "iterations": args.iters}
    return {"steps": args.gd_steps, "lr": args.gd_lr}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    import torch

    from planners.evaluate import evaluate
    from worldmodels.models.latent_world_model import LatentWorldModel

    torch.set_flush_denormal(True)
    model = LatentWorldModel.from_pretrained(args.model)
    res = evaluate(
        model, args.env, args.planner, pairs=args.pairs, seed=args.seed, mpc=args.mpc, horizon=args.horizon,
        execute=args.execute, alpha=args.alpha, objective_mode=args.objective, chunk_size=args.chunk_size,
        planner_kwargs=planner_kwargs(args.planner, args), out=args.out, videos=args.videos,
    )  # fmt: skip
    lo, hi = res.ci95
    name = f"{'MPC+' if args.mpc else ''}{args.planner.upper()}"
    print(f"{name} on {args.env}: success {res.success_rate:.2f} (95% CI [{lo:.2f}, {hi:.2f}]) over {args.pairs} pairs; "
          f"planning time {res.plan_time_per_step_s:.2f} s per plan")  # fmt: skip
    if args.out:
        print(json.dumps({"results": f"{args.out}/results.json", "plot": f"{args.out}/plot.png"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
