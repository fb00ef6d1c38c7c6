"""Edge of reach (Sims et al. 2024): MBPO vs MOPO vs RAVL with the same model, the same data and the same
update budget; mean Q on dataset states vs model-rollout states and the normalised return over training.

    python experiments/edge_of_reach/edge_of_reach.py --data /work/data/d4rl/halfcheetah-medium \
        --model true-dynamics --out runs/edge_of_reach/halfcheetah-true --updates 4000

Each algorithm runs through :func:`worldmodels.rl.mbrl.train_mbrl` with ``divergence="record"`` (the run
records the first update at which Q on rollout states exceeds ``r_max / (1 - gamma)`` and trains on) in
``<out>/<algo>``; rerunning the command resumes. Prints a markdown table, writes ``<out>/results.json`` and
``<out>/edge_of_reach.png`` (Q on dataset and rollout states, log scale, and the normalised score).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from worldmodels.io import atomic_write_text
from worldmodels.rl.mbrl import DivergenceError, MBRLConfig, train_mbrl

ALGOS = ("mbpo", "mopo", "ravl")


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    results = {}
    for algo in args.algos:
        cfg = MBRLConfig(algo=algo, data=args.data, model=args.model, total_updates=args.updates, seed=args.seed,
                         hidden=tuple(args.hidden), rollout_batch_size=args.rollout_batch_size,
                         rollout_every=args.rollout_every, eval_every=args.eval_every,
                         eval_episodes=args.eval_episodes, log_every=args.log_every,
                         checkpoint_every=args.eval_every, divergence="record")  # fmt: skip
        stopped = None
        try:
            train_mbrl(cfg, out / algo, progress=not args.no_progress)
        except DivergenceError as err:  # NaN: the run cannot go on; record it
            stopped = str(err)
        log = [json.loads(line) for line in (out / algo / "log.jsonl").read_text().splitlines()]
        evals = (
            json.loads((out / algo / "evals.json").read_text())
            if (out / algo / "evals.json").exists()
            else []
        )
        div = out / algo / "diverged.json"
        results[algo] = {"config": cfg.to_dict(), "log": log, "evals": evals, "stopped": stopped,
                         "diverged": json.loads(div.read_text()) if div.exists() else None}  # fmt: skip
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    return results


def table(results: dict) -> str:
    lines = ["| algo | critics | penalty | updates | Q dataset (last) | Q rollout (last) | max Q rollout | "
             "first Q > r_max/(1-gamma) | score (last eval) | best score |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for algo, r in results.items():
        log, evals, cfg = r["log"], r["evals"], r["config"]
        last = log[-1] if log else {}
        qmax = max((row.get("q_rollout", float("nan")) for row in log), default=float("nan"))
        div = r["diverged"]["update"] if r["diverged"] else "never"
        if r["stopped"]:
            div = f"{div}; NaN stop"
        scores = [e.get("normalized_score", float("nan")) for e in evals]
        lines.append(f"| {algo} | {cfg['num_critics']} | {cfg['penalty']} ({cfg['penalty_coef']}) | {last.get('update', 0)} | "
                     f"{last.get('q_dataset', float('nan')):.1f} | {last.get('q_rollout', float('nan')):.1f} | {qmax:.1f} | "
                     f"{div} | {scores[-1] if scores else float('nan'):.1f} | {max(scores, default=float('nan')):.1f} |")  # fmt: skip
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for algo, r in results.items():
        u = [row["update"] for row in r["log"]]
        axes[0].plot(u, [row.get("q_dataset", np.nan) for row in r["log"]], label=algo)
        axes[1].plot(u, [row.get("q_rollout", np.nan) for row in r["log"]], label=algo)
        axes[2].plot([e["update"] for e in r["evals"]], [e.get("normalized_score", np.nan) for e in r["evals"]],
                     marker="o", label=algo)  # fmt: skip
    bound = next(iter(results.values()))["log"][-1]["q_bound"]
    for ax, title in zip(axes[:2], ("mean Q on dataset states", "mean Q on model-rollout states")):
        ax.axhline(bound, color="k", ls="--", lw=0.8, label="r_max / (1 - gamma)")
        ax.set_yscale("symlog")
        ax.set_title(title)
        ax.set_xlabel("updates")
    axes[2].set_title("D4RL normalised score")
    axes[2].set_xlabel("updates")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="true-dynamics")
    p.add_argument("--out", required=True)
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--updates", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--rollout-batch-size", type=int, default=5000)
    p.add_argument("--rollout-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=2)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = run(args)
    print(table(results))
    plot(results, Path(args.out) / "edge_of_reach.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
