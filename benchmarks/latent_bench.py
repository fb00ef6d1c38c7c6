"""Latent world model training speed and memory: DINO-WM predictor throughput and the Wall CPU profile.

Measured in one run:

* ``matmul peak``: this CPU's fp32 matmul GFLOP/s (a large square ``torch.mm``, best of ``--matmul-reps``).
* ``predictor``: training samples/s (forward + backward + AdamW step) of the block-causal predictor at
  DINO-WM's shapes (196 patches x 3 frames, DINOv2 ViT-S token 384 + proprio 4 + action 10 (frameskip 5 x
  2), width 404 = 384 + 10 + 10, depth 6, 16 heads x 64, MLP 2048, batch 8), in fp32 and in bf16 autocast.
  FLOPs per step are counted with ``torch.utils.flop_counter.FlopCounterMode``; achieved GFLOP/s over the
  fp32 matmul peak is the fraction of peak.
* ``epoch``: one training epoch of :class:`LatentWorldModelModule` (Wall CPU profile: 64 px ``conv_ae``,
  predictor width 128 x depth 3, num_hist 1, num_pred 5, frameskip 5, batch 32) on a small freshly
  collected Wall dataset, with the feature cache (built first, timed separately) and without it (frames
  encoded in every batch). The cache's size on disk is reported.
* ``peak RSS``: of ``worldmodels fit -c configs/latent/wall.yaml`` (the Wall CPU profile, pointed at the
  small dataset, ``--fit-steps`` steps), polled with psutil over the process and its children.

The encoder is a freshly initialised ``ConvAEEncoder`` with ``worldmodels pretrain-encoder``'s defaults:
this measures speed and memory, not quality. Results: a markdown table on stdout and
``benchmarks/results/latent_bench.json`` (``--out``).

    python benchmarks/latent_bench.py                                     # full shapes
    python benchmarks/latent_bench.py --batch 2 --steps 2 --wall-episodes 20 --fit-steps 10  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import lightning as L
import psutil
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from worldmodels.data.collect import collect
from worldmodels.data.datamodules import FrameWindowDataModule
from worldmodels.data.store import EpisodeStore
from worldmodels.encoders import build_encoder
from worldmodels.encoders.cache import build_feature_cache, cache_key
from worldmodels.encoders.conv_ae import ConvAEEncoder
from worldmodels.io import atomic_write_text
from worldmodels.models.latent_predictor import LatentPredictor
from worldmodels.training.latent_module import LatentWorldModelModule

REPO = Path(__file__).resolve().parents[1]
WALL_CONFIG = REPO / "configs" / "latent" / "wall.yaml"
#: the Wall CPU profile's model and data options (configs/latent/wall.yaml)
WALL_MODEL = {"width": 128, "depth": 3, "heads": 4, "head_dim": 32, "mlp_dim": 256, "lr": 5e-4}
WALL_DATA = {"num_hist": 1, "num_pred": 5, "frameskip": 5, "batch_size": 32}


def matmul_peak(size: int, reps: int) -> float:
    """Best fp32 GFLOP/s of a ``(size, size) @ (size, size)`` matmul over ``reps`` timed runs."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def predictor_throughput(args: argparse.Namespace, bf16: bool) -> dict[str, float]:
    """Training samples/s and GFLOP/s of the DINO-WM-shaped predictor (one AdamW step per batch)."""
    torch.manual_seed(0)
    frames = args.frames
    pred = LatentPredictor(num_patches=args.patches, visual_dim=384, proprio_dim=4, action_dim=10,
                           max_frames=frames + 1, width=404, depth=args.depth, heads=16, head_dim=64,
                           mlp_dim=2048, emb_dim=10, dropout=0.1)  # fmt: skip
    opt = torch.optim.AdamW(pred.parameters(), lr=5e-4)
    g = torch.Generator().manual_seed(0)
    b = args.batch
    z = torch.randn(b, frames + 1, args.patches, 384, generator=g)
    p = torch.randn(b, frames + 1, 4, generator=g)
    a = torch.randn(b, frames + 1, 10, generator=g)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pz, pp = pred(z[:, :-1], p[:, :-1], a[:, :-1])
        loss = F.mse_loss(pz.float(), z[:, 1:]) + F.mse_loss(pp.float(), p[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    flops = FlopCounterMode(display=False)
    with flops:
        step()  # also the warm-up
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    sec = sorted(times)[len(times) // 2]
    return {"samples_per_s": b / sec, "step_s": sec, "gflop_per_step": flops.get_total_flops() / 1e9,
            "gflop_per_s": flops.get_total_flops() / sec / 1e9,
            "params_m": sum(q.numel() for q in pred.parameters()) / 1e6}  # fmt: skip


class _EpochTimer(L.Callback):
    """Wall time of each training epoch (data loading included, validation excluded)."""

    def __init__(self):
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self._t0)


def epoch_time(data: Path, encoder: Path, use_cache: bool, root: Path) -> tuple[float, int]:
    """Seconds for one training epoch of the Wall CPU profile, and its number of batches."""
    L.seed_everything(0, verbose=False)
    module = LatentWorldModelModule(encoder="conv_ae", encoder_path=str(encoder), use_feature_cache=use_cache,
                                    **WALL_MODEL)  # fmt: skip
    dm = FrameWindowDataModule(root=str(data), **WALL_DATA)
    timer = _EpochTimer()
    trainer = L.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        callbacks=[timer], default_root_dir=str(root))  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return timer.times[0], trainer.num_training_batches


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fit_peak_rss(data: Path, encoder: Path, steps: int, root: Path) -> tuple[float, float]:
    """Peak RSS (GiB, process + children, polled every 20 ms) and wall seconds of a Wall CPU-profile fit."""
    cmd = [sys.executable, "-m", "worldmodels.cli", "fit", "-c", str(WALL_CONFIG), "--data.root", str(data),
           "--model.encoder_path", str(encoder), "--trainer.max_steps", str(steps), "--trainer.max_time", "null",
           "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
           "--trainer.logger", "false"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ps, peak = psutil.Process(proc.pid), [0]

    def poll() -> None:
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            except psutil.Error:
                continue
            peak[0] = max(peak[0], rss)
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"the Wall fit failed (exit {proc.returncode}):\n{out[-3000:]}")
    return peak[0] / 2**30, time.perf_counter() - t0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8, help="predictor batch (default 8)")
    p.add_argument("--patches", type=int, default=196, help="patches per frame (DINOv2 at 196 px: 196)")
    p.add_argument("--frames", type=int, default=3, help="input frames (DINO-WM num_hist: 3)")
    p.add_argument("--depth", type=int, default=6, help="predictor depth (DINO-WM: 6)")
    p.add_argument("--steps", type=int, default=5, help="timed predictor steps per precision (median)")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--matmul-reps", type=int, default=5)
    p.add_argument("--wall-episodes", type=int, default=60, help="episodes of the small Wall dataset")
    p.add_argument("--fit-steps", type=int, default=50, help="training steps of the peak-RSS fit")
    p.add_argument("--skip-bf16", action="store_true", help="skip the bf16 autocast run")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "latent_bench.json")
    args = p.parse_args(argv)
    for name in ("batch", "patches", "frames", "depth", "steps", "matmul_size", "matmul_reps", "wall_episodes",
                 "fit_steps"):  # fmt: skip
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res: dict = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }  # fmt: skip
    peak = matmul_peak(args.matmul_size, args.matmul_reps)
    res["matmul_peak_gflop_s"] = peak
    for name, bf16 in (("fp32", False), ("bf16", True)):
        if bf16 and args.skip_bf16:
            continue
        r = predictor_throughput(args, bf16)
        r["fraction_of_fp32_peak"] = r["gflop_per_s"] / peak
        res[f"predictor_{name}"] = r

    with tempfile.TemporaryDirectory(prefix="latent_bench_") as tmp:
        tmp = Path(tmp)
        data, enc_dir = tmp / "wall", tmp / "encoder"
        collect(
            "worldmodels/Wall-v0",
            policy="noisy-expert",
            episodes=args.wall_episodes,
            out=data,
            progress=False,
        )
        ConvAEEncoder().save_pretrained(enc_dir)  # `worldmodels pretrain-encoder` defaults, untrained
        store = EpisodeStore.open(data)
        encoder = build_encoder("conv_ae", path=str(enc_dir))
        t0 = time.perf_counter()
        key = build_feature_cache(store, encoder, 64, progress=False)
        cache_s = time.perf_counter() - t0
        assert key == cache_key(encoder, 64)
        cached_s, batches = epoch_time(data, enc_dir, True, tmp / "fit_cached")
        uncached_s, _ = epoch_time(data, enc_dir, False, tmp / "fit_uncached")
        res["wall_epoch"] = {"episodes": args.wall_episodes, "frames": int(store.episode_lengths.sum() + len(store)),
                             "batches": batches, "cached_s": cached_s, "uncached_s": uncached_s,
                             "cache_build_s": cache_s, "cache_bytes": dir_bytes(data / "derived" / key),
                             "pixels_bytes": dir_bytes(data) - dir_bytes(data / "derived")}  # fmt: skip
        rss, fit_s = fit_peak_rss(data, enc_dir, args.fit_steps, tmp / "fit_rss")
        res["wall_fit"] = {"steps": args.fit_steps, "peak_rss_gib": rss, "wall_s": fit_s}

    atomic_write_text(args.out, json.dumps(res, indent=1))
    print(table(res))
    print(f"\nwrote {args.out}")
    return 0


def table(res: dict) -> str:
    c = res["config"]
    rows = [("fp32 matmul peak", f"{res['matmul_peak_gflop_s']:.1f} GFLOP/s ({c['matmul_size']}^2)")]
    for name in ("fp32", "bf16"):
        r = res.get(f"predictor_{name}")
        if r is not None:
            rows.append((f"predictor train {name} (batch {c['batch']}, {c['patches']} x {c['frames']} tokens, "
                         f"depth {c['depth']})",
                         f"{r['samples_per_s']:.2f} samples/s, {r['gflop_per_s']:.1f} GFLOP/s = "
                         f"{100 * r['fraction_of_fp32_peak']:.0f}% of fp32 peak"))  # fmt: skip
    w = res["wall_epoch"]
    rows += [
        (f"Wall epoch, feature cache ({w['episodes']} episodes, {w['batches']} batches)", f"{w['cached_s']:.2f} s"),
        ("Wall epoch, no cache (encode every batch)", f"{w['uncached_s']:.2f} s"),
        ("feature cache build (once)", f"{w['cache_build_s']:.2f} s"),
        (f"feature cache on disk ({w['frames']} frames)",
         f"{w['cache_bytes'] / 2**20:.2f} MiB ({w['cache_bytes'] / w['frames'] / 1024:.1f} KiB/frame)"),
        (f"peak RSS, Wall CPU-profile fit ({res['wall_fit']['steps']} steps)",
         f"{res['wall_fit']['peak_rss_gib']:.2f} GiB"),
    ]  # fmt: skip
    lines = ["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
