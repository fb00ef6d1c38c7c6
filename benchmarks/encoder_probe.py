"""Encoder probe: per env and encoder, how well the token space carries the state (worldmodels.encoders.probe).

For every ``--env NAME=DATASET`` (a dataset collected with our collectors, which store the ``state`` key) and
every ``--encoders`` kind, the encoder is pre-trained on the dataset's frames (``--steps``, the same budget
for every kind; skipped when ``RUNS/NAME/KIND`` already holds one, so a re-run resumes) and probed on
``--frames`` random frames (ridge fitted on 70% of the episodes, scored on the other 30%; rank correlation
over ``--pairs`` random pairs of held-out frames). ``--encoder-dir NAME:KIND=DIR`` probes an existing
encoder instead of training one.

Columns: ``spearman`` (latent goal distance vs visible-state distance), ``R^2`` (held-out linear probe,
mean over the visible-state dimensions) and the encoder's training time. Results: a markdown table on
stdout and ``benchmarks/results/encoder_probe.json`` (``--out``).

    python benchmarks/encoder_probe.py --env wall=data/wall --env reacher=data/reacher --steps 300

``--figure PNG`` also writes, per env, a row of frames and each encoder's reconstruction of them (how legible
the decoded imagination of the plan videos can be).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import imageio.v3 as imageio
import numpy as np
import torch

from worldmodels.data.store import EpisodeStore
from worldmodels.encoders import build_encoder
from worldmodels.encoders.cache import prepare_frames
from worldmodels.encoders.cli import pretrain_conv_ae, pretrain_state_ae
from worldmodels.encoders.probe import probe_encoder, sample_frames
from worldmodels.io import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
KINDS = ("conv_ae", "state_ae")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise SystemExit(f"{flag} {v!r}: expected NAME=VALUE")
        k, val = v.split("=", 1)
        out[k] = val
    return out


def _encoder(kind: str, store: EpisodeStore, out: Path, steps: int, batch_size: int, seed: int) -> tuple:
    """Load ``out`` or train it; returns (encoder, {"seconds", "steps", "batch_size"} or None if unknown)."""
    meta_path = out / "train.json"
    if (out / "config.json").exists():
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        return build_encoder(kind, path=out), meta
    t0 = time.perf_counter()
    train = pretrain_state_ae if kind == "state_ae" else pretrain_conv_ae
    enc = train(store, steps=steps, batch_size=batch_size, seed=seed)
    meta = {"seconds": time.perf_counter() - t0, "steps": steps, "batch_size": batch_size}
    enc.save_pretrained(out)
    atomic_write_text(meta_path, json.dumps(meta))
    return enc, meta


def _figure(path: Path, panels: list[tuple[str, np.ndarray, dict]]) -> None:
    """Per env: 4 held-out frames, then each encoder's reconstruction of them, side by side."""
    rows = []
    for _name, pixels, encs in panels:
        x = prepare_frames(pixels, None).float() / 255.0
        cols = [x]
        with torch.no_grad():
            for enc in encs.values():
                cols.append(enc.decode_tokens(enc.eval()(x[None])[0]).clamp(0, 1))
        rows.append(torch.cat([torch.cat(list(c), -1) for c in cols], -1))  # (3, H, 4 W * kinds)
    grid = (torch.cat(rows, -2).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, grid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", action="append", required=True, help="NAME=DATASET (repeatable)")
    p.add_argument("--encoders", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--encoder-dir", action="append", default=[], help="NAME:KIND=DIR: probe this encoder")
    p.add_argument("--runs", type=Path, default=Path("runs/probe"), help="where trained encoders go")
    p.add_argument("--steps", type=int, default=300, help="encoder training steps")
    p.add_argument("--batch-size", type=int, default=64, help="encoder training batch")
    p.add_argument("--code-scales", type=float, nargs="*", default=[],
                   help="state_ae: also probe the trained encoder with these code scales (no retraining)")  # fmt: skip
    p.add_argument("--frames", type=int, default=1500)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--figure", type=Path, default=None, help="PNG: frames | reconstructions per encoder")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "encoder_probe.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    envs, given = _pairs(args.env, "--env"), _pairs(args.encoder_dir, "--encoder-dir")
    rows, panels = [], []
    for name, data in envs.items():
        store = EpisodeStore.open(data)
        encs = {}
        for kind in args.encoders:
            if f"{name}:{kind}" in given:
                enc, meta = build_encoder(kind, path=given[f"{name}:{kind}"]), None
            else:
                enc, meta = _encoder(
                    kind, store, args.runs / name / kind, args.steps, args.batch_size, args.seed
                )
            encs[kind] = enc
            t0 = time.perf_counter()
            res = probe_encoder(enc, store, frames=args.frames, pairs=args.pairs, seed=args.seed)
            rows.append({"name": name, "kind": kind, "dataset": str(data), "episodes": len(store),
                         "training": meta, "probe_seconds": time.perf_counter() - t0, **res})  # fmt: skip
            print(f"{name} {kind}: spearman {res['spearman']:.3f} R^2 {res['r2']:.3f}", flush=True)
            for scale in args.code_scales if kind == "state_ae" else ():
                res = probe_encoder(enc.with_code_scale(scale), store, frames=args.frames, pairs=args.pairs,
                                    seed=args.seed)  # fmt: skip
                rows.append({"name": name, "kind": f"state_ae, code x{scale:g}", "dataset": str(data),
                             "episodes": len(store), "training": meta, **res})  # fmt: skip
                print(
                    f"{name} state_ae x{scale:g}: spearman {res['spearman']:.3f} R^2 {res['r2']:.3f}",
                    flush=True,
                )
        if args.figure is not None:
            pixels, _, test = sample_frames(store, 64, seed=args.seed + 1)
            panels.append((name, pixels[test][:4], encs))
    lines = ["| env | encoder | episodes | spearman (latent vs state distance) | linear probe R^2 (held out) | encoder training |",
             "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        m = r["training"]
        t = f"{m['seconds']:.0f} s, {m['steps']} steps x {m['batch_size']}" if m else "given"
        lines.append(
            f"| {r['name']} | {r['kind']} | {r['episodes']} | {r['spearman']:.3f} | {r['r2']:.3f} | {t} |"
        )
    print("\n".join(lines))
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
            "torch": torch.__version__, "frames": args.frames, "pairs": args.pairs, "steps": args.steps,
            "batch_size": args.batch_size}  # fmt: skip
    atomic_write_text(args.out, json.dumps({"info": info, "rows": rows}, indent=1))
    if args.figure is not None:
        _figure(args.figure, panels)


if __name__ == "__main__":
    main()
