"""Two CPU A/Bs at DINO-WM's predictor shapes, each interleaved in one process (medians of ``--rounds``):

* ``dropout``: one AdamW training step of the predictor (3 frames x 196 patches, width 404, 16 heads x 64,
  MLP 2048, dropout 0.1; ``--depth`` blocks, ``--batch``) with PyTorch's dropout (a Bernoulli draw per
  element, also inside SDPA's attention dropout) against ours (:mod:`worldmodels.models.dropout`: 16 random
  bits per element, attention probabilities materialised and dropped with it). Both arms run the same
  weights on the same batch.
* ``attention``: the KV-cached rollout's attention for one new frame per candidate (``--samples`` x 196
  queries per head) against a history shared by every candidate (2 frames, 392 keys) and the candidate's
  own frames (196-980 keys): (a) one fused SDPA call over the history broadcast into each candidate's
  cache (what :meth:`LatentWorldModel.rollout` does), (b) the shared part as one flash call over all
  candidates' queries plus the own part, merged by log-sum-exp, (c) the shared part as one GEMM per head
  with a materialised softmax. Outputs are checked equal (1e-5) before timing.

Markdown table on stdout, JSON to ``--out``.

    python benchmarks/cpu_kernels_ab.py --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import worldmodels.models.latent_predictor as lp
from worldmodels.benchmarking import interleave
from worldmodels.devices import cpu_flags
from worldmodels.io import atomic_write_text
from worldmodels.models.dropout import Dropout

RESULTS = Path(__file__).resolve().parent / "results" / "cpu_kernels_ab.json"


def _torch_sdpa(q, k, v, mask, p):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)


def dropout_ab(args) -> dict:
    torch.manual_seed(0)
    n, width = args.patches, args.width
    m = lp.LatentPredictor(n, args.visual_dim, 10, 10, max_frames=3, width=width, depth=args.depth,
                           heads=args.heads, head_dim=64, mlp_dim=args.mlp, dropout=0.1).train()  # fmt: skip
    opt = torch.optim.AdamW(m.parameters())
    b = args.batch
    vis, pr, act = torch.randn(b, 3, n, args.visual_dim), torch.randn(b, 3, 10), torch.randn(b, 3, 10)
    ours_sdpa = lp._sdpa

    def arm(torch_dropout: bool):
        def run():
            lp._sdpa = _torch_sdpa if torch_dropout else ours_sdpa
            for blk in m.blocks:
                blk.mlp[2] = nn.Dropout(0.1) if torch_dropout else Dropout(0.1)
                blk.mlp[4] = nn.Dropout(0.1) if torch_dropout else Dropout(0.1)
            m.train()
            v, p = m(vis, pr, act)
            loss = v.square().mean() + p.square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return run

    try:
        t = interleave({"torch": arm(True), "ours": arm(False)}, args.rounds, warmup=1)
    finally:
        lp._sdpa = ours_sdpa
    med = {k: statistics.median(v) for k, v in t.items()}
    return {"median_s": med, "times_s": t, "speedup": med["torch"] / med["ours"]}


def _attention_row(b: int, h: int, n: int, own: int, rounds: int, g: torch.Generator) -> dict:
    """One row of the attention A/B: ``b`` candidates x ``n`` queries per head against 2 shared frames and
    ``own`` own keys."""
    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    d, shared = 64, 2 * n
    q = torch.randn(b, h, n, d, generator=g)
    ks, vs = torch.randn(1, h, shared, d, generator=g), torch.randn(1, h, shared, d, generator=g)
    ko, vo = torch.randn(b, h, own, d, generator=g), torch.randn(b, h, own, d, generator=g)
    kf, vf = torch.cat([ks.expand(b, -1, -1, -1), ko], 2), torch.cat([vs.expand(b, -1, -1, -1), vo], 2)

    def merge(o1, l1, o2, l2):
        o1, l1 = o1.reshape(h, b, n, d).transpose(0, 1), l1.reshape(h, b, n).transpose(0, 1)
        lse = torch.logaddexp(l1, l2)
        return o1 * (l1 - lse).exp().unsqueeze(-1) + o2 * (l2 - lse).exp().unsqueeze(-1)

    def fused():
        return F.scaled_dot_product_attention(q, kf, vf)

    def shared_flash():
        o1, l1 = op(q.transpose(0, 1).reshape(1, h, b * n, d), ks, vs)[:2]
        o2, l2 = op(q, ko, vo)[:2]
        return merge(o1, l1, o2, l2)

    def shared_gemm():
        s = torch.bmm(q.transpose(0, 1).reshape(h, b * n, d) * d**-0.5, ks[0].transpose(1, 2))
        l1 = torch.logsumexp(s, -1)
        o1 = torch.bmm((s - l1.unsqueeze(-1)).exp_(), vs[0])
        o2, l2 = op(q, ko, vo)[:2]
        return merge(o1, l1, o2, l2)

    ref = fused()
    for fn in (shared_flash, shared_gemm):
        err = (fn() - ref).abs().max().item()
        if err > 1e-5:
            raise AssertionError(f"{fn.__name__} differs from the fused call by {err}")
    t = interleave({"fused": fused, "shared_flash": shared_flash, "shared_gemm": shared_gemm}, rounds, 1)
    flops = 4 * b * h * n * (shared + own) * d
    med = {k: statistics.median(v) for k, v in t.items()}
    return {"shared_keys": shared, "own_keys": own, "median_s": med,
            "gflops": {k: flops / v / 1e9 for k, v in med.items()}}  # fmt: skip


def attention_ab(args) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [
        _attention_row(args.samples, args.heads, args.patches, f * args.patches, args.rounds, g)
        for f in (1, 3, 5)
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tasks", default="dropout,attention", help="comma list of dropout, attention")
    p.add_argument("--depth", type=int, default=2, help="dropout A/B: predictor blocks (DINO-WM: 6)")
    p.add_argument("--batch", type=int, default=2, help="dropout A/B: training batch")
    p.add_argument("--samples", type=int, default=8, help="attention A/B: candidates")
    p.add_argument("--patches", type=int, default=196)
    p.add_argument("--visual-dim", type=int, default=384)
    p.add_argument("--width", type=int, default=404)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--mlp", type=int, default=2048)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in ("dropout", "attention")]
    if bad:
        p.error(f"--tasks: unknown {bad}; allowed: dropout, attention")
    torch.set_num_threads(args.threads)
    res: dict = {"machine": platform.processor() or platform.machine(), "cpu_flags": sorted(cpu_flags()),
                 "threads": args.threads, "torch": torch.__version__, "args": vars(args),
                 "load_average": os.getloadavg()}  # fmt: skip
    print(f"threads {args.threads}, load average {res['load_average'][0]:.1f}, {args.rounds} rounds\n")
    if "dropout" in tasks:
        r = res["dropout"] = dropout_ab(args)
        print("| training step, dropout 0.1 | PyTorch dropout | ours | speed-up |\n|---|---:|---:|---:|")
        print(f"| depth {args.depth}, batch {args.batch} | {r['median_s']['torch']:.3f} s | "
              f"{r['median_s']['ours']:.3f} s | x{r['speedup']:.2f} |\n")  # fmt: skip
    if "attention" in tasks:
        rows = res["attention"] = attention_ab(args)
        print(f"| attention, {args.samples} candidates x {args.patches} queries | fused (broadcast history) | "
              "shared history, flash + merge | shared history, GEMM + merge |\n|---|---:|---:|---:|")  # fmt: skip
        for r in rows:
            m, gf = r["median_s"], r["gflops"]
            print(f"| {r['shared_keys']} shared + {r['own_keys']} own keys | "
                  + " | ".join(f"{1e3 * m[k]:.1f} ms ({gf[k]:.1f} GFLOP/s)"
                               for k in ("fused", "shared_flash", "shared_gemm")) + " |")  # fmt: skip
    atomic_write_text(Path(args.out), json.dumps(res, indent=2))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
