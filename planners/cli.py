"""The ``planners`` command.

planners eval --model runs/demo/fit/model --env worldmodels/Wall-v0 --planner cem --mpc --pairs 50 \\
    --seed 0 --out runs/eval [--horizon 5 --samples 300 --topk 30 --iters 30 --chunk-size 32]

Prints the success rate with its 95 % Wilson interval and the planning time per planner call, and writes
``results.json``, one mp4 per pair and ``plot.png`` under ``--out`` (see :mod:`planners.evaluate`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from planners import PLANNERS
from planners.evaluate import EvalOptions, evaluate

#: the flags' defaults are the Python API's
DEFAULTS = EvalOptions()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planners", description="Plan with world models.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval", help="zero-shot goal reaching (DINO-WM protocol): success rate, videos, plot")
    e.add_argument(
        "--model",
        required=True,
        help="saved world model directory (config.json + model.safetensors), or 'oracle' for the env's exact "
        "dynamics (Wall-v0, PointMaze; the planner's ceiling)",
    )
    e.add_argument("--env", required=True, help="env id, e.g. worldmodels/Wall-v0")
    e.add_argument("--planner", default="cem", choices=PLANNERS)
    e.add_argument("--mpc", action="store_true", help="re-plan every --execute model steps (else open loop)")
    e.add_argument(
        "--pairs", type=int, default=DEFAULTS.pairs, help="start/goal pairs (default: %(default)s)"
    )
    e.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="pair i uses sample_start_goal(seed + i) (default: %(default)s)")  # fmt: skip
    e.add_argument("--out", default=DEFAULTS.out, help="directory for results.json, videos and plot.png")
    e.add_argument("--horizon", type=int, default=DEFAULTS.horizon,
                   help="planning horizon in model steps (default: %(default)s)")  # fmt: skip
    e.add_argument("--execute", type=int, default=DEFAULTS.execute,
                   help="MPC: model steps executed per plan (default: %(default)s)")  # fmt: skip
    e.add_argument("--samples", type=int, default=None, help="cem/icem/mppi: samples per iteration (300)")
    e.add_argument("--topk", type=int, default=None, help="cem/icem: elites (30)")
    e.add_argument(
        "--iters", type=int, default=None, help="iterations; gd: optimisation steps (planner default)"
    )
    e.add_argument("--var-scale", type=float, default=None, help="cem/icem: initial std (1)")
    e.add_argument("--temperature", type=float, default=None, help="mppi: temperature")
    e.add_argument(
        "--beta",
        type=float,
        default=None,
        help="cem/icem/mppi: colour of the sampling noise along time (cem 0 = white, icem 2, mppi 1)",
    )
    e.add_argument(
        "--substeps",
        type=int,
        default=None,
        help="cem/icem/mppi: colour the noise along env time, this many env actions per planning action (the "
        "model's frameskip; default 1: along planning steps)",
    )
    e.add_argument(
        "--return-best",
        action="store_true",
        help="cem: return the cheapest sequence seen in any iteration (DINO-WM returns the final mean)",
    )
    e.add_argument(
        "--refit-unclamped",
        action="store_true",
        help="cem: refit the Gaussian to the elites before they are clamped into the action box",
    )
    e.add_argument("--gd-steps", type=int, default=None, help="gd: optimisation steps (same as --iters)")
    e.add_argument("--gd-lr", type=float, default=None, help="gd: learning rate")
    e.add_argument("--alpha", type=float, default=DEFAULTS.alpha,
                   help="proprio weight (DINO-WM: 1 Wall/PushT, 0 PointMaze; default: %(default)s)")  # fmt: skip
    e.add_argument("--objective", default=DEFAULTS.objective_mode, choices=("last", "all"),
                   help="goal distance on the last / all frames (default: %(default)s)")  # fmt: skip
    e.add_argument("--chunk-size", type=_chunk_size, default=DEFAULTS.chunk_size,
                   help="candidates per model call (bounds memory), or auto: from the model's rollout memory "
                        "per candidate and the free memory (default: %(default)s)")  # fmt: skip
    e.add_argument("--budget", type=int, default=DEFAULTS.budget,
                   help="env steps per episode (default: the env's planning_budget)")  # fmt: skip
    e.add_argument(
        "--videos", type=int, default=DEFAULTS.videos, help="pairs that get a video (default: all)"
    )
    e.add_argument("--device", default="cpu",
                   help="torch device for the model: cpu (default: small models plan fastest there), cuda, auto")  # fmt: skip
    e.add_argument("--amp", choices=("bf16", "fp16"), default=DEFAULTS.amp,
                   help="roll the model out under torch.autocast of this dtype where the hardware runs it natively "
                        "(CUDA tensor cores, CPUs with AVX512-BF16/AMX); elsewhere float32, said in one line "
                        "(default: float32)")  # fmt: skip
    e.add_argument("--force", action="store_true",
                   help="with --amp: fail instead of falling back to float32 where the dtype is not native")  # fmt: skip
    e.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch CPU threads (1 is much faster on a busy machine)",
    )
    e.add_argument("--workers", type=int, default=DEFAULTS.workers,
                   help="evaluate pairs in this many processes (1 thread each; default: %(default)s)")  # fmt: skip
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _chunk_size(text: str) -> int | str:
    """``--chunk-size``: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer or 'auto'") from None


def planner_kwargs(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Constructor arguments of planner ``name`` from the command line (unset flags: planner defaults).
    Raises ``ValueError`` for a CEM-only flag given with another planner."""
    if name != "cem":
        flags = {"--return-best": args.return_best, "--refit-unclamped": args.refit_unclamped}
        only_cem = [flag for flag, given in flags.items() if given]
        if only_cem:
            raise ValueError(f"{', '.join(only_cem)}: only for --planner cem, not {name}")
    if name == "gd":
        given = {"steps": args.gd_steps if args.gd_steps is not None else args.iters, "lr": args.gd_lr}
    else:
        given = {"samples": args.samples, "iterations": args.iters}
        if name in ("cem", "icem"):
            given |= {"topk": args.topk, "var_scale": args.var_scale}
        if name == "cem":
            given |= {"return_best": args.return_best or None}  # unset: the planner's default
            given |= {"refit_unclamped": args.refit_unclamped or None}
        if name == "mppi":
            given["temperature"] = args.temperature
        given["substeps"] = args.substeps
        given["noise_beta" if name == "mppi" else "beta"] = args.beta
    return {k: v for k, v in given.items() if v is not None}


def eval_options(args: argparse.Namespace) -> EvalOptions:
    """The :class:`~planners.evaluate.EvalOptions` of ``planners eval``'s flags (``ValueError`` for a bad
    value or a flag of another planner)."""
    return EvalOptions(
        pairs=args.pairs, seed=args.seed, mpc=args.mpc, out=args.out, horizon=args.horizon, execute=args.execute,
        planner_kwargs=planner_kwargs(args.planner, args), chunk_size=args.chunk_size, alpha=args.alpha,
        objective_mode=args.objective, budget=args.budget, videos=args.videos, progress=not args.no_progress,
        workers=args.workers, amp=args.amp,
    )  # fmt: skip


def load_model(path: str, env_id: str, device: str) -> Any:
    """Any saved world model directory (:func:`worldmodels.load_pretrained` picks the class from its
    ``config.json``), or ``oracle``: the env's exact dynamics (:mod:`worldmodels.models.oracle`)."""
    from worldmodels import load_pretrained
    from worldmodels.api import WorldModel
    from worldmodels.models.oracle import oracle_model

    if path == "oracle":
        return oracle_model(env_id)
    model = load_pretrained(path, map_location=device)
    if not isinstance(model, WorldModel):
        raise ValueError(
            f"{path}: a {type(model).__name__} is not a world model (it lacks encode/rollout/action_bounds/"
            "to_env_actions)"
        )
    return model


def eval_main(args: argparse.Namespace) -> int:
    import torch

    from worldmodels.devices import choose_precision, resolve_device

    torch.set_flush_denormal(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.force and args.amp is None:
        raise ValueError("--force: only with --amp bf16 or --amp fp16")
    device = resolve_device(args.device)
    args.amp = choose_precision(args.amp, device, force=args.force)
    options = eval_options(args)  # user errors: one line from main (worldmodels.errors)
    model = load_model(args.model, args.env, str(device))
    res = evaluate(model, args.env, args.planner, options)
    lo, hi = res.ci95
    name = f"{'MPC+' if args.mpc else ''}{args.planner.upper()}"
    print(
        f"{name} on {args.env}: success rate {res.success_rate:.2f} (95% CI [{lo:.2f}, {hi:.2f}]) over "
        f"{args.pairs} pairs; planning time {res.plan_time_per_step_s:.3f} s per plan"
    )
    if args.out:
        print(f"results: {args.out}/results.json, plot: {args.out}/plot.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``planners`` script; ``argv`` excludes the program name. A user error prints one
    line, ``planners <verb>: error: ...`` (``--debug`` or ``WORLDMODELS_DEBUG=1``: the traceback)."""
    from worldmodels.errors import run_command

    return run_command("planners", sys.argv[1:] if argv is None else argv, _dispatch, depth=1)


def _dispatch(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "eval":
        return eval_main(args)
    raise ValueError(f"unknown command {args.cmd!r}; allowed: eval")


if __name__ == "__main__":
    sys.exit(main())
