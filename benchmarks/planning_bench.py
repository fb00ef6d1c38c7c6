"""Planning speed and memory at DINO-WM's GPU-profile shapes, ours against the naive approach.

Shapes: DINOv2 ViT-S/14 at 196 px (14 x 14 = 196 patches x 384), 3 history frames, a predictor of DINO-WM's
size (depth 6, 16 heads x 64, MLP 2048, token 384 + 10 + 10, ~20M parameters), horizon 5, frameskip 5
(action dim 10), 300 samples. Weights are random (``weights="random"``): this measures speed and memory,
not quality.

* ``ours``: the start observation is encoded once per MPC step; each candidate chunk is rolled out with
  the KV cache (history computed once at batch 1, one new frame per imagined step); chunks of
  ``--chunk-size`` candidates bound memory.
* ``naive`` (what DINO-WM's planner does): every candidate re-encodes the start observation through the
  encoder, and every imagined step recomputes the whole sequence (``LatentWorldModel.rollout_naive``).

Both run the same CEM iteration (same samples, same generator), so their ratio is the speed-up per
iteration. Work per iteration is linear in the samples, so on a slow CPU ``--samples`` can be lowered and
the time per sample scaled to 300 (the table shows both; ``--naive-samples`` separately, the naive path is
much slower). Peak RSS is read after each of ``--replans`` MPC re-plans (10 by default): it must stay flat.
With ``--device cuda`` the model, the planner and its generator run on the GPU (timings synchronise the
device) and the peak GPU memory allocated during each re-plan is reported beside the RSS. ``--amp
none,bf16`` times our path in float32 and under bf16 autocast side by side (rows per precision; the
naive comparison and the re-plan memory check use the first).

    python benchmarks/planning_bench.py                       # full shapes, 300 samples (GPU-sized work)
    python benchmarks/planning_bench.py --samples 20 --naive-samples 4 --chunk-size 10   # a 2-core CPU
    python benchmarks/planning_bench.py --device cuda --chunk-size 300 --amp none,bf16 --out /tmp/planning_bench_gpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path

import psutil
import torch

from planners import build_planner
from planners.objectives import GoalDistance, amp_dtype, float32_state, make_cost_fn
from worldmodels.devices import resolve_device
from worldmodels.io import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "planning_bench.json"


def build_model(img_size: int, hist: int, horizon: int, frameskip: int, proprio_dim: int, small: bool):
    """A randomly initialised LatentWorldModel with DINO-WM's shapes (or tiny ones with ``small``)."""
    from worldmodels.models.latent_world_model import LatentWorldModel

    if small:
        from worldmodels.encoders.conv_ae import ConvAEEncoder

        enc = ConvAEEncoder(embed_dim=16, width=8, num_down=3)
        enc_cfg = {"name": "conv_ae", "config": enc.config}
        sizes = {"width": 32, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 32}
    else:
        from worldmodels.encoders.dinov2 import DinoV2Encoder

        enc = DinoV2Encoder(weights="random", img_size=img_size)
        enc_cfg = {"name": "dinov2", "config": enc.config}
        sizes = {"width": enc.embed_dim + 20, "depth": 6, "heads": 16, "head_dim": 64, "mlp_dim": 2048}
    n = enc.num_patches(img_size, img_size)
    action_dim = 2 * frameskip
    predictor = {"num_patches": n, "visual_dim": enc.embed_dim, "proprio_dim": proprio_dim,
                 "action_dim": action_dim, "max_frames": hist + horizon, "emb_dim": 10, **sizes}  # fmt: skip
    stats = {"proprio_mean": torch.zeros(proprio_dim), "proprio_std": torch.ones(proprio_dim),
             "action_mean": torch.zeros(action_dim), "action_std": torch.ones(action_dim)}  # fmt: skip
    model = LatentWorldModel(enc, enc_cfg, predictor, stats, frameskip, hist, img_size)
    return model.eval()


def naive_cost_fn(model, obs, objective, chunk_size: int, amp: str | None = None):
    """DINO-WM's way: re-encode the start observation for every candidate, recompute the whole history at
    every imagined step (under ``torch.autocast`` with ``amp``, like ours)."""

    def cost_fn(actions: torch.Tensor) -> torch.Tensor:
        out = []
        ctx = torch.autocast(actions.device.type, dtype=amp_dtype(amp)) if amp else contextlib.nullcontext()
        with torch.inference_mode():
            for a in actions.split(chunk_size):
                b = a.shape[0]
                per_sample = {k: v.expand(b, *v.shape[1:]) for k, v in obs.items()}
                with ctx:
                    pred = model.rollout_naive(model.encode(per_sample), a)
                out.append(objective(float32_state(pred), a))
        return torch.cat(out).clone()

    return cost_fn


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far (GiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class RSSPeak:
    """Context manager sampling this process's RSS every ``interval`` s in a thread; ``.peak`` in GiB."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak = interval, 0.0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss / 2**30)
            self._stop.wait(self.interval)

    def __enter__(self) -> RSSPeak:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss / 2**30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=300, help="candidates per iteration (DINO-WM: 300)")
    p.add_argument(
        "--naive-samples", type=int, default=None, help="candidates for the naive path (default: --samples)"
    )
    p.add_argument("--topk", type=int, default=None, help="CEM elites (default: samples / 10)")
    p.add_argument("--iters", type=int, default=1, help="planner iterations timed per MPC step")
    p.add_argument("--dinowm-iters", type=int, default=30, help="iterations to extrapolate to (DINO-WM: 30)")
    p.add_argument("--gd-restarts", type=int, default=4, help="gd: restarts optimised in parallel")
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--hist", type=int, default=3, help="history frames (DINO-WM: 3)")
    p.add_argument("--frameskip", type=int, default=5)
    p.add_argument("--img-size", type=int, default=196, help="DINO-WM: 196 px -> 14 x 14 = 196 patches")
    p.add_argument("--chunk-size", type=int, default=32, help="candidates per model call (default: 32)")
    p.add_argument("--replans", type=int, default=10, help="MPC re-plans for the RSS check")
    p.add_argument("--planners", default="cem,icem,mppi,gd")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--small", action="store_true", help="tiny model and 64 px (smoke test of this script)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, auto")
    p.add_argument("--amp", default="none", help="comma list of none, bf16, fp16: rollout precisions to time")
    p.add_argument("--out", default=str(RESULTS), help=f"JSON output (default: {RESULTS})")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    cuda = device.type == "cuda"
    amps = [a.strip() for a in args.amp.split(",") if a.strip()]
    bad = [a for a in amps if a not in ("none", "bf16", "fp16")]
    if bad or not amps:
        p.error(f"--amp {args.amp!r}: allowed values are none, bf16, fp16 (comma-separated)")
    first_amp = None if amps[0] == "none" else amps[0]
    img = 64 if args.small else args.img_size
    model = build_model(img, args.hist, args.horizon, args.frameskip, 4, args.small).to(device)
    n_params = sum(p.numel() for p in model.predictor.parameters())
    gen = torch.Generator().manual_seed(0)
    obs = {"pixels": torch.randint(0, 256, (1, args.hist, 3, img, img), dtype=torch.uint8, generator=gen),
           "proprio": torch.randn(1, args.hist, 4, generator=gen)}  # fmt: skip
    goal_obs = {"pixels": torch.randint(0, 256, (1, 1, 3, img, img), dtype=torch.uint8, generator=gen),
                "proprio": torch.randn(1, 1, 4, generator=gen)}  # fmt: skip
    obs = {k: v.to(device) for k, v in obs.items()}
    goal_obs = {k: v.to(device) for k, v in goal_obs.items()}

    def new_gen() -> torch.Generator:
        return torch.Generator(device=device).manual_seed(0)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    low, high = model.action_bounds()
    with torch.no_grad():
        objective = GoalDistance(model.encode(goal_obs), alpha=1.0)
    topk = args.topk or max(1, args.samples // 10)
    kw = {"horizon": args.horizon, "action_dim": model.action_dim, "low": low, "high": high}
    rows: list[dict] = []
    rss_start = psutil.Process().memory_info().rss / 2**30

    def ours_step(planner, differentiable: bool, amp: str | None = first_amp) -> tuple[float, float]:
        """One MPC step (encode + plan): seconds and peak RSS (GiB) during it."""
        sync()
        t0 = time.perf_counter()
        with RSSPeak() as sampler:
            with torch.no_grad():
                state = model.encode(obs)
            cost_fn = make_cost_fn(
                model, state, objective, chunk_size=args.chunk_size, differentiable=differentiable, amp=amp
            )
            planner.plan(cost_fn, generator=new_gen(), **kw)
            sync()
        return time.perf_counter() - t0, sampler.peak

    for amp_name in amps:
        amp = None if amp_name == "none" else amp_name
        for name in args.planners.split(","):
            if name == "gd":
                planner = build_planner("gd", steps=args.iters, restarts=args.gd_restarts)
                samples = args.gd_restarts
            else:
                extra = {"topk": topk} if name in ("cem", "icem") else {}
                planner = build_planner(name, samples=args.samples, iterations=args.iters, **extra)
                samples = args.samples
            if cuda:  # one untimed step first: CUDA kernels are loaded on first use
                ours_step(planner, planner.differentiable, amp)
            sec, peak_step = ours_step(planner, planner.differentiable, amp)
            rows.append({"planner": name, "path": "ours", "amp": amp_name, "samples": samples, "iters": args.iters,
                         "s_per_iter": sec / args.iters, "s_per_iter_per_sample": sec / args.iters / samples,
                         "peak_rss_gib": round(peak_step, 3)})  # fmt: skip
            print(
                f"{name:5s} ours {amp_name:4s}: {sec / args.iters:8.3f} s / iteration ({samples} samples)",
                flush=True,
            )

    # the naive path, CEM, same iteration
    n_naive = args.naive_samples or args.samples
    naive = build_planner("cem", samples=n_naive, topk=max(1, min(topk, n_naive)), iterations=args.iters)
    ours = build_planner("cem", samples=n_naive, topk=max(1, min(topk, n_naive)), iterations=args.iters)
    t_ours, _ = ours_step(ours, False)
    cost_fn = naive_cost_fn(model, obs, objective, args.chunk_size, first_amp)
    if cuda:
        naive.plan(cost_fn, generator=new_gen(), **kw)
    sync()
    t0 = time.perf_counter()
    with RSSPeak() as naive_rss:
        naive.plan(cost_fn, generator=new_gen(), **kw)
        sync()
    t_naive = time.perf_counter() - t0
    print(f"cem   naive: {t_naive / args.iters:8.2f} s / iteration ({n_naive} samples), ours {t_ours / args.iters:.2f} s: "
          f"x{t_naive / t_ours:.1f}", flush=True)  # fmt: skip

    # memory over MPC re-plans (CEM, the full sample count): peak RSS after each re-plan must stay flat
    cem = build_planner("cem", samples=args.samples, topk=topk, iterations=1)
    rss_after, rss_peaks, gpu_peaks = [], [], []
    init = None
    for _ in range(args.replans):
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with RSSPeak() as sampler, torch.no_grad():
            state = model.encode(obs)
            cost_fn = make_cost_fn(model, state, objective, chunk_size=args.chunk_size, amp=first_amp)
            res = cem.plan(cost_fn, init=init, generator=new_gen(), **kw)
            sync()
        rss_peaks.append(round(sampler.peak, 3))
        if cuda:
            gpu_peaks.append(round(torch.cuda.max_memory_allocated(device) / 2**30, 3))
        init = torch.cat([res.actions[1:], ((low + high) / 2)[None]])
        rss_after.append(round(psutil.Process().memory_info().rss / 2**30, 3))
    peak = peak_rss_gib()

    cem_row = next((r for r in rows if r["planner"] == "cem"), None)
    summary = {
        "shapes": {
            "img_size": img,
            "patches": model.predictor.N,
            "visual_dim": model.predictor.D,
            "hist": args.hist,
            "horizon": args.horizon,
            "frameskip": args.frameskip,
            "action_dim": model.action_dim,
            "predictor_params_M": round(n_params / 1e6, 2),
            "chunk_size": args.chunk_size,
            "samples": args.samples,
            "naive_samples": n_naive,
            "small": args.small,
            "amp_of_naive_and_memory_rows": amps[0],
        },
        "rows": rows,
        "naive_vs_ours_cem": {
            "samples": n_naive,
            "iters": args.iters,
            "ours_s": t_ours,
            "naive_s": t_naive,
            "naive_peak_rss_gib": round(naive_rss.peak, 3),
            "speedup": t_naive / t_ours,
        },
        "mpc_step_s_at_dinowm": (
            {
                "cem_ours": cem_row["s_per_iter_per_sample"] * 300 * args.dinowm_iters,
                "cem_naive": t_naive / args.iters / n_naive * 300 * args.dinowm_iters,
                "iters": args.dinowm_iters,
            }
            if cem_row
            else None
        ),
        "rss_gib_after_each_replan": rss_after,
        "gpu_peak_gib_during_each_replan": gpu_peaks or None,
        "peak_rss_gib_during_each_replan": rss_peaks,
        "rss_growth_gib": rss_after[-1] - rss_after[0],
        "rss_start_gib": round(rss_start, 3),
        "peak_rss_gib": round(peak, 3),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if cuda else None,
        },
    }
    print("\n| planner | path | precision | samples | s / iteration | s / iteration scaled to 300 samples |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        scaled = r["s_per_iter_per_sample"] * (300 if r["planner"] != "gd" else r["samples"])
        prec = "float32" if r["amp"] == "none" else f"{r['amp']} autocast"
        print(f"| {r['planner']} | ours | {prec} | {r['samples']} | {r['s_per_iter']:.3f} | {scaled:.2f} |")
    s = summary["naive_vs_ours_cem"]
    prec = "float32" if amps[0] == "none" else f"{amps[0]} autocast"
    print(
        f"| cem | naive | {prec} | {n_naive} | {t_naive / args.iters:.3f} | {t_naive / args.iters / n_naive * 300:.2f} |"
    )
    if len(amps) > 1:
        by = {(r["planner"], r["amp"]): r["s_per_iter"] for r in rows}
        for a in amps[1:]:
            ratios = ", ".join(f"{n} x{by[(n, amps[0])] / by[(n, a)]:.1f}" for n, _ in by if _ == a)
            print(f"\n{amps[0]} / {a} time per iteration (ours): {ratios}")
    print(f"\nnaive / ours (CEM, {n_naive} samples): x{s['speedup']:.1f}")
    if summary["mpc_step_s_at_dinowm"]:
        m = summary["mpc_step_s_at_dinowm"]
        print(
            f"MPC step at 300 samples x {m['iters']} iterations: ours {m['cem_ours']:.0f} s, naive {m['cem_naive']:.0f} s"
        )
    print(f"peak RSS during each of {args.replans} re-plans (GiB): {rss_peaks}")
    print(f"RSS after each re-plan (GiB): {rss_after}; growth {summary['rss_growth_gib']:+.3f}; "
          f"peak {peak:.2f} GiB")  # fmt: skip
    if cuda:
        print(f"peak GPU memory allocated during each re-plan (GiB): {gpu_peaks}")
    out = Path(args.out)
    atomic_write_text(out, json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
