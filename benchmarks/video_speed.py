"""Imagination throughput of the video world model beside DIAMOND's inner model, on this CPU.

Imagined frames per second of an autoregressive rollout (``horizon`` frames from a context, batch 1 / 8 / 32,
NFE 1 / 3 network evaluations per frame with the Euler sampler), fp32 and bf16 (``torch.autocast``; only
where the CPU has native bf16, ``avx512_bf16`` or ``amx_bf16``, else the reason is printed), for:

* ``ours (configs/video/wall.yaml)``: the CPU profile (UNet 64 x 3 levels, 1 block per level, space-to-depth
  4), the full ``VideoWorldModel.rollout`` (sampler, proprio head, planning features);
* ``ours at DIAMOND's sizes``: ``configs/video/wall_gpu.yaml``'s UNet (64 x 4 levels, 2 blocks, full
  resolution), also the full rollout;
* ``DIAMOND inner model``: DIAMOND's own ``InnerModel`` (64 x 4 levels, depth 2, cond 256, Atari's 18 discrete
  actions), imported at run time from a checkout of its code (``--diamond-src``, e.g. the ``src`` folder of
  github.com/eloialonso/diamond; nothing of it is in this repository) and driven by the same EDM Euler sampler
  (:mod:`worldmodels.models.edm`), so only the networks differ.

Every model gets the same 64 x 64 frames and ``num_hist = 4`` context frames (DIAMOND's). Times are CPU
seconds of this process (``time.process_time``) with one torch thread, the best of ``--repeats``, models
interleaved: on a shared machine wall-clock is dominated by other processes, and CPU time is what one
dedicated core would take. Peak memory: the peak resident set of a child process that builds the model and
runs the batch-32 NFE-3 fp32 rollout, above its resident set just before that rollout.

    python benchmarks/video_speed.py --diamond-src runs/diamond/src
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

from worldmodels.io import atomic_write_text
from worldmodels.models.edm import EDM, SamplerConfig
from worldmodels.models.video_diffusion import VideoWorldModel

SIZE, NUM_HIST, HORIZON = 64, 4, 2
OURS = {"channels": [64, 64, 64], "layers_per_block": 1, "cond_dim": 128, "norm_groups": 16, "patch": 4}
OURS_DIAMOND_SIZE = {"channels": [64, 64, 64, 64], "layers_per_block": 2, "cond_dim": 256, "norm_groups": 32}
MODELS = ("ours (configs/video/wall.yaml)", "ours at DIAMOND's sizes", "DIAMOND inner model")


def native_bf16() -> tuple[bool, str]:
    """Whether this CPU has native bf16 arithmetic (``avx512_bf16`` / ``amx_bf16``), and what was found."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False, "no /proc/cpuinfo to read the CPU flags from"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    if found:
        return True, f"CPU flags {', '.join(found)}"
    return False, "the CPU has neither avx512_bf16 nor amx_bf16: bf16 would be emulated, slower than fp32"


def load_diamond(src: Path):
    """DIAMOND's ``InnerModel`` / ``InnerModelConfig`` from its source folder, without running its package
    ``__init__`` files (they import its training stack)."""
    if not (src / "models" / "diffusion" / "inner_model.py").is_file():
        raise FileNotFoundError(f"{src}: no models/diffusion/inner_model.py (pass DIAMOND's src folder)")
    for name, path in (("_diamond", src / "models"), ("_diamond.diffusion", src / "models" / "diffusion")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    inner = importlib.import_module("_diamond.diffusion.inner_model")
    return inner.InnerModel, inner.InnerModelConfig


def build(name: str, diamond_src: Path):
    """``rollout(batch, nfe) -> frames`` closure for model ``name`` (random weights: speed only)."""
    torch.manual_seed(0)
    if name.startswith("ours"):
        model = VideoWorldModel(SIZE, NUM_HIST, action_dim=4, proprio_dim=2, frameskip=2,
                                denoiser=OURS if "wall.yaml" in name else OURS_DIAMOND_SIZE,
                                sampler={"steps": 3, "sigma_max": 5.0}).eval()  # fmt: skip

        def run(b: int, nfe: int, gen: torch.Generator):
            obs = {"pixels": torch.randint(0, 256, (1, NUM_HIST, 3, SIZE, SIZE), dtype=torch.uint8),
                   "proprio": torch.randn(1, NUM_HIST, 2)}  # fmt: skip
            state = model.encode(obs)
            sampler = SamplerConfig(steps=nfe, sigma_max=5.0)
            return model.rollout(
                state, torch.randn(b, HORIZON, 4, generator=gen), generator=gen, sampler=sampler
            )

        return model, run
    inner_cls, cfg_cls = load_diamond(diamond_src)
    net = inner_cls(cfg_cls(img_channels=3, num_steps_conditioning=NUM_HIST, cond_channels=256, depths=[2, 2, 2, 2],
                            channels=[64, 64, 64, 64], attn_depths=[0, 0, 0, 0], num_actions=18)).eval()  # fmt: skip
    edm = EDM(sigma_data=0.5)

    def run(b: int, nfe: int, gen: torch.Generator):
        ctx = torch.rand(b, NUM_HIST * 3, SIZE, SIZE, generator=gen) * 2 - 1
        acts = torch.randint(0, 18, (b, NUM_HIST), generator=gen)
        cfg = SamplerConfig(steps=nfe, sigma_max=5.0)
        frames = []
        for _ in range(HORIZON):  # DIAMOND's autoregressive loop: sample, shift the context
            nxt = edm.sample(
                net, (b, 3, SIZE, SIZE), cfg, gen, obs=ctx, act=acts
            )  # net(x, c_noise, obs, act)
            ctx = torch.cat([ctx[:, 3:], nxt.clamp(-1, 1)], 1)
            frames.append(nxt)
        return torch.stack(frames, 1)

    return net, run


def time_rollout(run, b: int, nfe: int, dtype: str, repeats: int) -> float:
    """Best CPU seconds of one rollout of ``HORIZON`` frames at batch ``b``."""
    best = float("inf")
    ctx = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if dtype == "bf16"
        else torch.autocast("cpu", enabled=False)
    )
    with torch.inference_mode(), ctx:
        run(b, nfe, torch.Generator().manual_seed(0))  # warm-up
        for r in range(repeats):
            t0 = time.process_time()
            run(b, nfe, torch.Generator().manual_seed(r))
            best = min(best, time.process_time() - t0)
    return best


def _status_kib(key: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_memory_child(name: str, diamond_src: str) -> None:
    """(In a child process) print the peak RSS in MiB of one batch-32 rollout above the RSS just before it
    (the peak is reset through ``/proc/self/clear_refs`` after building the model)."""
    torch.set_num_threads(1)
    _, run = build(name, Path(diamond_src))
    with torch.inference_mode():
        run(1, 1, torch.Generator().manual_seed(0))  # allocator warm-up
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
        run(32, 3, torch.Generator().manual_seed(0))
    print((_status_kib("VmHWM") - before) / 1024)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--diamond-src", type=Path, default=Path("runs/diamond/src"), help="DIAMOND's src folder")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--nfe", type=int, nargs="+", default=[1, 3])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/video_speed.json"))
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--memory-only", action="store_true", help="re-measure memory, keep the timings in --out")
    args = p.parse_args(argv)
    if args.memory_child:
        peak_memory_child(args.memory_child, str(args.diamond_src))
        return 0
    torch.set_num_threads(1)
    bf16, why = native_bf16()
    dtypes = ["fp32", "bf16"] if bf16 else ["fp32"]
    print(f"bf16: {'measured' if bf16 else 'skipped'} ({why})")
    runs = {name: build(name, args.diamond_src) for name in MODELS}
    params = {name: sum(q.numel() for q in m.parameters()) for name, (m, _) in runs.items()}
    rows = json.loads(args.out.read_text())["rows"] if args.memory_only else []
    for dtype in [] if args.memory_only else dtypes:
        for nfe in args.nfe:
            for b in args.batches:
                row = {"dtype": dtype, "nfe": nfe, "batch": b}
                for name, (_, run) in runs.items():  # interleaved, same conditions
                    row[name] = b * HORIZON / time_rollout(run, b, nfe, dtype, args.repeats)
                row["ratio ours / DIAMOND"] = row[MODELS[0]] / row[MODELS[2]]
                row["ratio ours at DIAMOND's sizes / DIAMOND"] = row[MODELS[1]] / row[MODELS[2]]
                rows.append(row)
                print(row, flush=True)
    memory = {}
    if not args.no_memory:
        for name in MODELS:
            cmd = [sys.executable, __file__, "--memory-child", name, "--diamond-src", str(args.diamond_src)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            memory[name] = float(out[-1])
    lines = ["| dtype | NFE | batch | " + " | ".join(f"{n} frames/s" for n in MODELS) + " | ours / DIAMOND | "
             "ours at DIAMOND's sizes / DIAMOND |", "|---|---:|---:|" + "---:|" * (len(MODELS) + 2)]  # fmt: skip
    for r in rows:
        cells = [r["dtype"], str(r["nfe"]), str(r["batch"])] + [f"{r[n]:.1f}" for n in MODELS]
        cells += [
            f"{r['ratio ours / DIAMOND']:.2f}x",
            f"{r['ratio ours at DIAMOND' + chr(39) + 's sizes / DIAMOND']:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| model | parameters | peak memory, batch 32 NFE 3 fp32 rollout (MiB) |")
    lines.append("|---|---:|---:|")
    for name in MODELS:
        mem = f"{memory[name]:.0f}" if name in memory else "not measured"
        lines.append(f"| {name} | {params[name] / 1e6:.2f}M | {mem} |")
    table = "\n".join(lines)
    print(f"\n64 x 64 frames, {NUM_HIST} context frames, {HORIZON} imagined frames per rollout; CPU seconds of one "
          f"thread (best of {args.repeats}); bf16: {why}\n")  # fmt: skip
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "params": params, "peak_memory_mib": memory, "bf16": why, "num_hist": NUM_HIST,
              "horizon": HORIZON, "size": SIZE, "timing": "process_time, 1 thread, best of repeats"}  # fmt: skip
    atomic_write_text(args.out, json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
