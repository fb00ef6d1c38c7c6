"""``torch.compile`` on the latent predictor's training step at DINO-WM's shapes: compile time and speed.

Compiles :class:`~worldmodels.models.latent_predictor.LatentPredictor` (width 404, depth 6, 16 heads, MLP
2048, 3 frames x 196 patches, dropout 0.1) with an eager fallback when compiling raises, times compile plus
the first forward + backward, then the eager and compiled steps interleaved (medians). Markdown line on
stdout, JSON to ``--out``.

    python benchmarks/compile_check.py --batch 2 --threads 1     # ~10 minutes on a loaded 2-core CPU
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
import torch.nn.functional as F

from worldmodels.io import atomic_write_text
from worldmodels.models.latent_predictor import LatentPredictor

RESULTS = Path(__file__).resolve().parent / "results" / "compile_check.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--patches", type=int, default=196)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = LatentPredictor(num_patches=args.patches, visual_dim=384, proprio_dim=4, action_dim=10, max_frames=4,
                        width=404, depth=6, heads=16, head_dim=64, mlp_dim=2048, emb_dim=10, dropout=0.1).train()  # fmt: skip
    b, n = args.batch, args.patches
    vis, prop, act = torch.randn(b, 4, n, 384), torch.randn(b, 4, 4), torch.randn(b, 4, 10)

    def step(fn) -> None:
        pv, pp = fn(vis[:, :-1], prop[:, :-1], act[:, :-1])
        (F.mse_loss(pv, vis[:, 1:]) + F.mse_loss(pp, prop[:, 1:])).backward()

    t0 = time.perf_counter()
    try:
        compiled = torch.compile(m)
        step(compiled)
        compile_s, error = time.perf_counter() - t0, None
    except Exception as err:  # the fallback: eager, with the reason recorded
        compiled, compile_s, error = m, None, f"{type(err).__name__}: {err}"
        print(f"torch.compile failed ({error}); timing eager twice", flush=True)
    step(m)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.reps):
        for name, fn in (("eager", m), ("compiled", compiled)):
            t0 = time.perf_counter()
            step(fn)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {"compile_and_first_step_s": compile_s, "error": error, "median_s": med, "times_s": times,
           "speedup": med["eager"] / med["compiled"], "loadavg": os.getloadavg(), "config": vars(args)}  # fmt: skip
    c = "failed" if compile_s is None else f"{compile_s:.0f} s"
    print(
        f"| compile + first step {c} | eager {med['eager']:.2f} s | compiled {med['compiled']:.2f} s | "
        f"x{res['speedup']:.2f} | load {res['loadavg'][0]:.2f} |"
    )
    atomic_write_text(Path(args.out), json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
