"""Small profiles: block-causal attention as one masked fused call (the path before per-frame attention) vs
one unmasked call per query frame (now), CEM plans interleaved, on a Wall-demo-sized model.

The model is the demo's predictor size (width 128, depth 3, 4 heads x 32, MLP 256, 64 patches of 16
dims, residual), random weights; CEM 100 samples x 5 iterations, horizon 5, chunks of 32, with a history of
1 frame (the demo's: a single new frame per step, so both arms run the same code and the ratio shows the
noise) and of 3 frames. Markdown lines on stdout, JSON to ``--out``.

    python benchmarks/attention_ab.py --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import worldmodels.models.latent_predictor as lp
from planners.cem import CEM
from planners.objectives import GoalDistance, make_cost_fn
from worldmodels.encoders.conv_ae import ConvAEEncoder
from worldmodels.io import atomic_write_text
from worldmodels.models.latent_world_model import LatentState, LatentWorldModel

RESULTS = Path(__file__).resolve().parent / "results" / "attention_ab.json"


def demo_sized_model(hist: int) -> LatentWorldModel:
    torch.manual_seed(0)
    enc = ConvAEEncoder(embed_dim=16, width=8, num_down=3)
    pred = {"num_patches": 64, "visual_dim": 16, "proprio_dim": 2, "action_dim": 10, "max_frames": hist + 5,
            "width": 128, "depth": 3, "heads": 4, "head_dim": 32, "mlp_dim": 256, "residual": True}  # fmt: skip
    stats = {"proprio_mean": torch.zeros(2), "proprio_std": torch.ones(2), "action_mean": torch.zeros(10),
             "action_std": torch.ones(10)}  # fmt: skip
    return LatentWorldModel(enc, {"name": "conv_ae", "config": enc.config}, pred, stats, 5, hist, 64).eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    per_frame = lp._per_frame_pays
    rows = []
    for hist in (1, 3):
        m = demo_sized_model(hist)
        g = torch.Generator().manual_seed(0)
        state = LatentState(torch.randn(1, hist, 64, 16, generator=g), torch.randn(1, hist, 2, generator=g),
                            torch.randn(1, hist - 1, 10, generator=g))  # fmt: skip
        goal = GoalDistance(
            LatentState(torch.randn(1, 1, 64, 16, generator=g), torch.randn(1, 1, 2, generator=g))
        )
        low, high = m.action_bounds()

        def plan(m=m, state=state, goal=goal, low=low, high=high):
            cost = make_cost_fn(m, state, goal, chunk_size=32)
            return CEM(samples=100, topk=10, iterations=5).plan(
                cost, horizon=5, action_dim=10, low=low, high=high, generator=torch.Generator().manual_seed(1)
            )

        times: dict[str, list[float]] = {"masked": [], "per_frame": []}
        plans = {}
        try:
            for _ in range(args.rounds):
                for name in ("masked", "per_frame"):
                    lp._per_frame_pays = (
                        per_frame if name == "per_frame" else (lambda frame_len, dropout_p: False)
                    )
                    t0 = time.perf_counter()
                    plans[name] = plan().actions
                    times[name].append(time.perf_counter() - t0)
        finally:
            lp._per_frame_pays = per_frame
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"hist": hist, "median_s": med, "times_s": times, "speedup": med["masked"] / med["per_frame"],
                     "plans_equal": bool(torch.allclose(plans["masked"], plans["per_frame"], atol=1e-5))})  # fmt: skip
        print(
            f"| history {hist} | masked {med['masked']:.3f} s | per-frame {med['per_frame']:.3f} s | "
            f"x{rows[-1]['speedup']:.2f} | plans equal: {rows[-1]['plans_equal']} |",
            flush=True,
        )
    atomic_write_text(
        Path(args.out), json.dumps({"rows": rows, "loadavg": os.getloadavg(), "config": vars(args)}, indent=1)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
