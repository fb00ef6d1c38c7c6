"""Scores of RAVL vs MOPO on D4RL-style medium datasets with learned ensemble dynamics, at one update budget
per run, beside the published numbers.

    python experiments/offline_rl_scores/scores.py --runs runs/offline_rl_scores --updates 4000 \
        --dataset halfcheetah-medium=/work/data/d4rl/halfcheetah-medium=runs/dynamics/halfcheetah-medium/model

Each ``--dataset NAME=DATA=MODEL`` (the model trained by ``worldmodels fit -c configs/dynamics/NAME.yaml``)
is run with every ``--algos`` and ``--seeds`` through :func:`worldmodels.rl.mbrl.train_mbrl` in
``<runs>/<NAME>/<algo>-seed<k>`` (rerunning resumes). A run stopped by the divergence guard keeps its last
evaluation and is marked. Prints a markdown table and writes ``<runs>/results.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from worldmodels.io import atomic_write_text
from worldmodels.rl.mbrl import DivergenceError, MBRLConfig, train_mbrl

#: OfflineRL-Kit's D4RL results (4 seeds, 3M updates) for orientation
PUBLISHED = {"MOPO": {"halfcheetah": 72.4, "hopper": 62.8, "walker2d": 84.1},
             "EDAC": {"halfcheetah": 66.4, "hopper": 101.8, "walker2d": 93.3}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", action="append", required=True, help="NAME=DATA_DIR=MODEL_DIR")
    p.add_argument("--runs", required=True)
    p.add_argument("--algos", nargs="+", default=["ravl", "mopo"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--updates", type=int, default=4000)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--rollout-batch-size", type=int, default=5000)
    p.add_argument("--rollout-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    runs = Path(args.runs)
    results: dict = (
        json.loads((runs / "results.json").read_text()) if (runs / "results.json").exists() else {}
    )
    for spec in args.dataset:
        name, data, model = spec.split("=")
        for algo in args.algos:
            for seed in args.seeds:
                cfg = MBRLConfig(algo=algo, data=data, model=model, total_updates=args.updates, seed=seed,
                                 hidden=tuple(args.hidden), rollout_batch_size=args.rollout_batch_size,
                                 rollout_every=args.rollout_every, eval_every=args.eval_every,
                                 eval_episodes=args.eval_episodes, checkpoint_every=args.eval_every)  # fmt: skip
                run_dir = runs / name / f"{algo}-seed{seed}"
                stopped = None
                try:
                    train_mbrl(cfg, run_dir, progress=not args.no_progress)
                except DivergenceError as err:
                    stopped = str(err)
                evals = (
                    json.loads((run_dir / "evals.json").read_text())
                    if (run_dir / "evals.json").exists()
                    else []
                )
                results.setdefault(name, {}).setdefault(algo, {})[str(seed)] = {
                    "final_score": evals[-1]["normalized_score"] if evals else None,
                    "evals": evals, "stopped": stopped, "config": cfg.to_dict()}  # fmt: skip
                atomic_write_text(runs / "results.json", json.dumps(results, indent=1))
    print(
        "| dataset | algo | seeds | score (last eval, mean ± std) | updates | published MOPO | published EDAC |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, by_algo in results.items():
        env = name.split("-")[0]
        for algo, by_seed in by_algo.items():
            s = [r["final_score"] for r in by_seed.values() if r["final_score"] is not None]
            stops = sum(r["stopped"] is not None for r in by_seed.values())
            note = f" ({stops} stopped by the guard)" if stops else ""
            print(f"| {name} | {algo} | {len(by_seed)} | {np.mean(s):.1f} ± {np.std(s):.1f}{note} | {args.updates} | "
                  f"{PUBLISHED['MOPO'].get(env, '-')} | {PUBLISHED['EDAC'].get(env, '-')} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
