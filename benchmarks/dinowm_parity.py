"""Ours beside DINO-WM's published architecture, in one run: predictor training step and CEM planning.

DINO-WM's side is re-implemented here *for timing only* from the paper and its public config (never part of
the package): a ViT predictor over ``num_hist x N`` tokens of width ``D + 10 + 10`` (encoder patch feature
concatenated with 10-dim proprio and action embeddings; no input projection, no output head), a learned
positional table over ``num_hist x N`` tokens, pre-norm blocks whose attention computes the full score matrix
``q k^T`` and fills the block-causal frame mask with ``-inf`` before the softmax, a final LayerNorm. Its
planner rolls out by recomputing the last ``num_hist`` frames at every imagined step (no KV cache) and
scores the last predicted frame (MSE of the visual tokens + proprio embedding) for all samples at once.

Ours is the package's :class:`~worldmodels.models.latent_world_model.LatentWorldModel` with
``max_frames = hist + horizon`` (the KV cache holds the whole rollout) planned by :class:`planners.CEM`
through :func:`planners.objectives.make_cost_fn`. Both sides get the encoder features of the start history
(the encoder is not timed: DINO-WM re-encodes the start observation for every sample, which only widens
the gap).

Measured in one process, sides interleaved (A B A B, ``--reps`` rounds, medians):

* the fp32 matmul peak (a square ``torch.mm``, best of several) with 1 thread and with 2 threads;
* ``train``: one AdamW step of each predictor on a batch of ``hist + 1`` frames (teacher forcing, dropout
  0.1), fp32;
* ``cem``: one CEM plan (``--samples`` x ``--iters``, horizon ``--horizon``), fp32 (``--amp bf16``: both sides
  under autocast where the CPU runs bf16 natively; % of peak stays relative to the fp32 peak).

FLOPs are counted analytically (2 per multiply-add of every matmul, attention scores included; a training
step is 3x its forward) for what each side actually computes; achieved GFLOP/s over the peak at the
benchmark's thread count is the fraction of peak. Output: a markdown table on stdout and JSON (``--out``),
with the CPU model, its vector/matrix flags and the load average.

    python benchmarks/dinowm_parity.py --scale small                 # seconds (CI-sized shapes)
    python benchmarks/dinowm_parity.py --scale full --threads 2      # DINO-WM's shapes (minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldmodels.devices import LOW_PRECISION, choose_precision, cpu_flags
from worldmodels.io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "dinowm_parity.json"


@dataclass
class Shapes:
    """Model and problem sizes (``full``: DINO-WM's; ``small``: the same structure, CI-sized)."""

    patches: int = 196
    visual_dim: int = 384
    proprio_dim: int = 4
    action_dim: int = 10  # frameskip 5 x 2
    emb_dim: int = 10
    depth: int = 6
    heads: int = 16
    head_dim: int = 64
    mlp_dim: int = 2048
    hist: int = 3
    batch: int = 8
    samples: int = 32
    topk: int = 3
    iters: int = 2
    horizon: int = 5

    @property
    def width(self) -> int:
        return self.visual_dim + 2 * self.emb_dim


SCALES = {
    "full": Shapes(),
    "small": Shapes(
        patches=16, visual_dim=64, depth=2, heads=4, head_dim=16, mlp_dim=256, batch=4, samples=16, topk=3
    ),
}


# ---------------------------------------------------------------------------------------------- FLOPs
def block_flops(tokens: int, keys: int, s: Shapes) -> float:
    """Forward FLOPs of one transformer block for ``tokens`` queries attending ``keys`` keys."""
    inner, w = s.heads * s.head_dim, s.width
    linear = 2 * tokens * w * (3 * inner) + 2 * tokens * inner * w + 2 * 2 * tokens * w * s.mlp_dim
    return linear + 2 * 2 * tokens * keys * inner


def dinowm_forward_flops(batch: int, frames: int, s: Shapes) -> float:
    """DINO-WM's predictor over ``frames`` frames: every block sees all tokens (the mask is applied after
    the full score matrix is computed); the proprio/action embeddings."""
    length = frames * s.patches
    emb = 2 * frames * (s.proprio_dim + s.action_dim) * s.emb_dim
    return batch * (s.depth * block_flops(length, length, s) + emb)


def ours_forward_flops(batch: int, new: int, past: int, s: Shapes) -> float:
    """Our predictor on ``new`` frames after ``past`` cached frames: input projection, blocks (each new
    frame's queries attend the keys up to the end of their own frame, one unmasked call per frame), visual
    and proprio heads."""
    tokens, w = new * s.patches, s.width
    blocks = sum(block_flops(s.patches, (past + i + 1) * s.patches, s) for i in range(new))
    io = 2 * tokens * w * w + 2 * tokens * w * (s.visual_dim + s.proprio_dim)
    emb = 2 * new * (s.proprio_dim + s.action_dim) * s.emb_dim
    return batch * (s.depth * blocks + io + emb)


def dinowm_rollout_flops(samples: int, s: Shapes) -> float:
    """One DINO-WM rollout of ``samples`` candidates: ``horizon`` predicts of the last ``hist`` frames."""
    frames = [min(s.hist + h, s.hist) for h in range(s.horizon)]
    return sum(dinowm_forward_flops(samples, f, s) for f in frames)


def ours_rollout_flops(samples: int, s: Shapes) -> float:
    """One of our rollouts: the history but its last frame once at batch 1, then one new frame per step
    against the growing cache."""
    hist = ours_forward_flops(1, s.hist - 1, 0, s) if s.hist > 1 else 0.0
    return hist + sum(ours_forward_flops(samples, 1, s.hist - 1 + h, s) for h in range(s.horizon))


# ---------------------------------------------------------------------------------------------- DINO-WM
class _DinoWMAttention(nn.Module):
    """Pre-norm multi-head attention: full score matrix, ``-inf`` where the frame mask forbids, softmax."""

    def __init__(self, s: Shapes, dropout: float):
        super().__init__()
        inner = s.heads * s.head_dim
        self.heads, self.scale = s.heads, s.head_dim**-0.5
        self.norm = nn.LayerNorm(s.width)
        self.to_qkv = nn.Linear(s.width, 3 * inner, bias=False)
        self.drop = nn.Dropout(dropout)
        self.to_out = nn.Sequential(nn.Linear(inner, s.width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        q, k, v = (
            rearrange(t, "b l (h d) -> b h l d", h=self.heads) for t in self.to_qkv(self.norm(x)).chunk(3, -1)
        )
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = torch.matmul(self.drop(scores.softmax(-1)), v)
        return self.to_out(rearrange(out, "b h l d -> b l (h d)"))


class DinoWMPredictor(nn.Module):
    """DINO-WM's ViT predictor and its proprio / action embeddings (benchmark-only re-implementation)."""

    def __init__(self, s: Shapes, dropout: float = 0.1):
        super().__init__()
        self.s = s
        self.proprio_enc = nn.Linear(s.proprio_dim, s.emb_dim)
        self.action_enc = nn.Linear(s.action_dim, s.emb_dim)
        self.pos = nn.Parameter(torch.randn(1, s.hist * s.patches, s.width) * 0.02)
        self.attn = nn.ModuleList(_DinoWMAttention(s, dropout) for _ in range(s.depth))
        self.ff = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(s.width),
                nn.Linear(s.width, s.mlp_dim),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(s.mlp_dim, s.width),
                nn.Dropout(dropout),
            )
            for _ in range(s.depth)
        )
        self.norm = nn.LayerNorm(s.width)
        frame = torch.arange(s.hist).repeat_interleave(s.patches)
        self.register_buffer("allowed", frame[None, :] <= frame[:, None])

    def tokens(self, visual, proprio, action) -> torch.Tensor:
        """``(B, T, N, D)``, ``(B, T, P)``, ``(B, T, A)`` -> ``(B, T, N, D + 20)``."""
        n = visual.shape[2]
        p = self.proprio_enc(proprio)[:, :, None].expand(-1, -1, n, -1)
        a = self.action_enc(action)[:, :, None].expand(-1, -1, n, -1)
        return torch.cat([visual, p, a], -1)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """``z (B, T, N, W)`` -> the next frame of each, ``(B, T, N, W)``."""
        t = z.shape[1]
        length = t * self.s.patches
        x = rearrange(z, "b t n w -> b (t n) w") + self.pos[:, :length]
        allowed = self.allowed[:length, :length]
        for attn, ff in zip(self.attn, self.ff, strict=True):
            x = x + attn(x, allowed)
            x = x + ff(x)
        return rearrange(self.norm(x), "b (t n) w -> b t n w", t=t)

    def rollout(self, visual, proprio, past_actions, actions) -> torch.Tensor:
        """Imagine ``H`` frames from the history, recomputing the last ``hist`` frames at every step.
        ``past_actions (B, T-1, A)`` are the history's; ``actions (B, H, A)``. Returns ``(B, H, N, W)``."""
        b = actions.shape[0]
        visual, proprio, past_actions = (x.expand(b, *x.shape[1:]) for x in (visual, proprio, past_actions))
        z = self.tokens(visual, proprio, torch.cat([past_actions, actions[:, :1]], 1))
        d, out = self.s.visual_dim, []
        for h in range(actions.shape[1]):
            new = self.predict(z[:, -self.s.hist :])[:, -1:]
            out.append(new)
            if h + 1 < actions.shape[1]:  # attach the next action to the predicted frame
                act = self.action_enc(actions[:, h + 1 : h + 2])[:, :, None].expand(-1, -1, new.shape[2], -1)
                new = torch.cat([new[..., : d + self.s.emb_dim], act], -1)
                z = torch.cat([z, new], 1)
        return torch.cat(out, 1)


def dinowm_cem(model: DinoWMPredictor, hist, goal, s: Shapes, gen: torch.Generator) -> torch.Tensor:
    """DINO-WM's CEM: Gaussian over action sequences, sample 0 = mean, all samples in one batch, top-k refit."""
    visual, proprio, past = hist
    goal = goal[:, -1]  # (1, N, W)
    mu, sigma = torch.zeros(s.horizon, s.action_dim), torch.ones(s.horizon, s.action_dim)
    d = s.visual_dim
    for _ in range(s.iters):
        act = mu + sigma * torch.randn(s.samples, s.horizon, s.action_dim, generator=gen)
        act[0] = mu
        with torch.no_grad():
            last = model.rollout(visual, proprio, past, act)[:, -1]
            cost = (last[..., :d] - goal[..., :d]).pow(2).mean((1, 2))
            cost = cost + (last[..., d : d + s.emb_dim] - goal[..., d : d + s.emb_dim]).pow(2).mean((1, 2))
        elite = act[torch.topk(cost, s.topk, largest=False).indices]
        mu, sigma = elite.mean(0), elite.std(0)
    return mu


# ---------------------------------------------------------------------------------------------- ours
def our_model(s: Shapes, dropout: float = 0.1):
    """Our LatentWorldModel at these shapes (random weights; the encoder is a tiny placeholder, features are
    given)."""
    from worldmodels.encoders.conv_ae import ConvAEEncoder
    from worldmodels.models.latent_world_model import LatentWorldModel

    side = math.isqrt(s.patches)
    if side * side != s.patches:
        raise ValueError(f"Shapes.patches={s.patches}: our model needs a square patch grid")
    enc = ConvAEEncoder(embed_dim=8, width=8, num_down=3)  # 8 px per patch: img_size = 8 * side
    predictor = {"num_patches": s.patches, "visual_dim": s.visual_dim, "proprio_dim": s.proprio_dim,
                 "action_dim": s.action_dim, "max_frames": s.hist + s.horizon, "width": s.width, "depth": s.depth,
                 "heads": s.heads, "head_dim": s.head_dim, "mlp_dim": s.mlp_dim, "emb_dim": s.emb_dim,
                 "dropout": dropout}  # fmt: skip
    stats = {"proprio_mean": torch.zeros(s.proprio_dim), "proprio_std": torch.ones(s.proprio_dim),
             "action_mean": torch.zeros(s.action_dim), "action_std": torch.ones(s.action_dim)}  # fmt: skip
    return LatentWorldModel(enc, {"name": "conv_ae", "config": enc.config}, predictor, stats, frameskip=5,
                            num_hist=s.hist, img_size=8 * side)  # fmt: skip


# ---------------------------------------------------------------------------------------------- timing
def matmul_peak(threads: int, size: int, reps: int = 5) -> float:
    """Best fp32 GFLOP/s of a square ``torch.mm`` with ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 2 * size**3 / best / 1e9


def make_tasks(s: Shapes):
    """The four timed callables (``(side, task) -> fn``) and their FLOPs."""
    from planners.cem import CEM
    from planners.objectives import GoalDistance, make_cost_fn
    from worldmodels.models.latent_world_model import LatentState

    g = torch.Generator().manual_seed(0)
    t = s.hist + 1
    vis = torch.randn(s.batch, t, s.patches, s.visual_dim, generator=g)
    prop = torch.randn(s.batch, t, s.proprio_dim, generator=g)
    act = torch.randn(s.batch, t, s.action_dim, generator=g)
    h_vis = torch.randn(1, s.hist, s.patches, s.visual_dim, generator=g)
    h_prop = torch.randn(1, s.hist, s.proprio_dim, generator=g)
    h_past = torch.randn(1, s.hist - 1, s.action_dim, generator=g)
    goal_vis = torch.randn(1, 1, s.patches, s.visual_dim, generator=g)
    goal_prop = torch.randn(1, 1, s.proprio_dim, generator=g)

    torch.manual_seed(0)
    dw = DinoWMPredictor(s)
    dw_opt = torch.optim.AdamW(dw.parameters(), lr=5e-4)
    ours = our_model(s)
    ours_opt = torch.optim.AdamW(ours.predictor.parameters(), lr=5e-4)
    d = s.visual_dim

    def dw_train() -> None:
        dw.train()
        z = dw.tokens(vis, prop, act)
        pred = dw.predict(z[:, :-1])
        tgt = z[:, 1:].detach()
        loss = F.mse_loss(pred[..., :d], tgt[..., :d]) + F.mse_loss(
            pred[..., d : d + s.emb_dim], tgt[..., d : d + s.emb_dim]
        )
        dw_opt.zero_grad(set_to_none=True)
        loss.backward()
        dw_opt.step()

    def ours_train() -> None:
        ours.predictor.train()
        pv, pp = ours.predictor(vis[:, :-1], prop[:, :-1], act[:, :-1])
        loss = F.mse_loss(pv, vis[:, 1:]) + F.mse_loss(pp, prop[:, 1:])
        ours_opt.zero_grad(set_to_none=True)
        loss.backward()
        ours_opt.step()

    def dw_plan() -> None:
        dw.eval()
        with torch.no_grad():
            goal = dw.tokens(goal_vis, goal_prop, torch.zeros(1, 1, s.action_dim))
        dinowm_cem(dw, (h_vis, h_prop, h_past), goal, s, torch.Generator().manual_seed(1))

    def ours_plan() -> None:
        ours.eval()
        state = LatentState(h_vis, h_prop, h_past)
        objective = GoalDistance(LatentState(goal_vis, goal_prop), alpha=1.0)
        cost_fn = make_cost_fn(ours, state, objective, chunk_size=s.samples)
        low, high = ours.action_bounds()
        CEM(samples=s.samples, topk=s.topk, iterations=s.iters).plan(
            cost_fn, horizon=s.horizon, action_dim=s.action_dim, low=low, high=high,
            generator=torch.Generator().manual_seed(1),
        )  # fmt: skip

    # CEM: s.iters rollouts of s.samples, plus our final cost of the mean (1 sample)
    flops = {
        ("dinowm", "train"): 3 * dinowm_forward_flops(s.batch, s.hist, s),
        ("ours", "train"): 3 * ours_forward_flops(s.batch, s.hist, 0, s),
        ("dinowm", "cem"): s.iters * dinowm_rollout_flops(s.samples, s),
        ("ours", "cem"): s.iters * ours_rollout_flops(s.samples, s) + ours_rollout_flops(1, s),
    }
    fns = {("dinowm", "train"): dw_train, ("ours", "train"): ours_train, ("dinowm", "cem"): dw_plan,
           ("ours", "cem"): ours_plan}  # fmt: skip
    params = {
        "dinowm": sum(p.numel() for p in dw.parameters()),
        "ours": sum(p.numel() for p in ours.predictor.parameters()),
    }
    return fns, flops, params


def _under(ctx, fn) -> None:
    with ctx:
        fn()


def machine_info() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    keep = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "amx_tile")
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in keep if f in cpu_flags()],
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=sorted(SCALES), default="small", help="shapes (default: small)")
    p.add_argument("--samples", type=int, default=None, help="CEM samples (full: 32)")
    p.add_argument("--iters", type=int, default=None, help="CEM iterations (default 2)")
    p.add_argument("--batch", type=int, default=None, help="training batch (full: 8)")
    p.add_argument("--reps", type=int, default=3, help="interleaved rounds (A B A B ...); medians reported")
    p.add_argument("--tasks", default="train,cem", help="comma list of train, cem")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the timed work (default 1)")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed runs of each task and side first (default 1)"
    )
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="both sides under torch.autocast of this dtype where the CPU runs it natively "
                        "(worldmodels.devices.choose_precision; otherwise float32, said in one line)")  # fmt: skip
    p.add_argument("--out", default=str(RESULTS), help=f"JSON output (default: {RESULTS})")
    args = p.parse_args(argv)
    s = Shapes(**asdict(SCALES[args.scale]))
    for key in ("samples", "iters", "batch"):
        if getattr(args, key) is not None:
            if getattr(args, key) < 1:
                p.error(f"--{key} {getattr(args, key)} must be >= 1")
            setattr(s, key, getattr(args, key))
    s.topk = min(s.topk, s.samples)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or set(tasks) - {"train", "cem"}:
        p.error(f"--tasks {args.tasks!r}: allowed train, cem")
    if args.reps < 1 or args.threads < 1 or args.warmup < 0:
        p.error("--reps and --threads must be >= 1")
    torch.set_flush_denormal(True)
    load = os.getloadavg()
    peaks = {n: matmul_peak(n, args.matmul_size) for n in (1, 2)}
    torch.set_num_threads(args.threads)
    peak = peaks.get(args.threads) or matmul_peak(args.threads, args.matmul_size)
    print(
        f"fp32 matmul peak: {peaks[1]:.1f} GFLOP/s (1 thread), {peaks[2]:.1f} GFLOP/s (2 threads)", flush=True
    )
    fns, flops, params = make_tasks(s)
    amp = choose_precision(args.amp, "cpu")
    autocast = torch.autocast("cpu", dtype=LOW_PRECISION[amp], enabled=amp is not None) if amp else None
    if autocast is not None:
        fns = {k: (lambda fn=fn: _under(autocast, fn)) for k, fn in fns.items()}
    for _ in range(args.warmup):  # allocator, kernels
        for task in tasks:
            for side in ("dinowm", "ours"):
                fns[(side, task)]()
    times: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
    for r in range(args.reps):
        for task in tasks:
            for side in ("dinowm", "ours"):
                t0 = time.perf_counter()
                fns[(side, task)]()
                times[(side, task)].append(time.perf_counter() - t0)
                print(f"round {r + 1}: {task:5s} {side:6s} {times[(side, task)][-1]:8.3f} s", flush=True)
    load_end = os.getloadavg()
    rows = []
    for task in tasks:
        med = {side: statistics.median(times[(side, task)]) for side in ("dinowm", "ours")}
        for side in ("dinowm", "ours"):
            gflop = flops[(side, task)] / 1e9
            rows.append({"task": task, "side": side, "median_s": med[side], "times_s": times[(side, task)],
                         "gflop": gflop, "gflop_s": gflop / med[side], "pct_of_peak": 100 * gflop / med[side] / peak,
                         "speedup_vs_dinowm": med["dinowm"] / med[side]})  # fmt: skip
    res = {"scale": args.scale, "amp": amp, "shapes": asdict(s), "params": params, "threads": args.threads, "reps": args.reps,
           "matmul_peak_gflop_s": {"1_thread": peaks[1], "2_threads": peaks[2], "used": peak},
           "loadavg_start": load, "loadavg_end": load_end, "machine": machine_info(), "rows": rows}  # fmt: skip
    m = res["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags'])}; torch {m['torch']}, {args.threads} "
          f"thread(s); load average {load[0]:.2f} -> {load_end[0]:.2f}; {args.scale} shapes, {args.reps} rounds")  # fmt: skip
    print(f"fp32 matmul peak {peak:.1f} GFLOP/s at {args.threads} thread(s)\n")
    print("| task | DINO-WM (re-implemented) | ours | ours vs DINO-WM | DINO-WM % of peak | ours % of peak |")
    print("|---|---:|---:|---:|---:|---:|")
    prec = f"{amp} autocast" if amp else "fp32"
    names = {"train": f"predictor training step, batch {s.batch}, {prec}",
             "cem": f"CEM plan, {s.samples} x {s.iters}, horizon {s.horizon}, {prec}"}  # fmt: skip
    for task in tasks:
        dw, us = (
            next(r for r in rows if r["task"] == task and r["side"] == side) for side in ("dinowm", "ours")
        )
        print(f"| {names[task]} | {dw['median_s']:.3f} s | {us['median_s']:.3f} s | x{us['speedup_vs_dinowm']:.2f} | "
              f"{dw['pct_of_peak']:.0f}% | {us['pct_of_peak']:.0f}% |")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(res, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
