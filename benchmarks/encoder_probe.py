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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from worldmodels.data.store import EpisodeStore
from worldmodels.encoders import build_encoder
from worldmodels.encoders.cli import pretrain_conv_ae, pretrain_state_ae
from worldmodels.encoders.probe import probe_encoder
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


def _encoder(kind: str, store: EpisodeStore, out: Path, steps: int, seed: int) -> tuple:
    """Load ``out`` or train it; returns (encoder, training seconds or None when loaded)."""
    if (out / "config.json").exists():
        meta = out / "train_seconds.txt"
        return build_encoder(kind, path=out), float(meta.read_text()) if meta.exists() else None
    t0 = time.perf_counter()
    train = pretrain_state_ae if kind == "state_ae" else pretrain_conv_ae
    enc = train(store, steps=steps, seed=seed)
    seconds = time.perf_counter() - t0
    enc.save_pretrained(out)
    atomic_write_text(out / "train_seconds.txt", f"{seconds:.1f}")
    return enc, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", action="append", required=True, help="NAME=DATASET (repeatable)")
    p.add_argument("--encoders", nargs="+", default=list(KINDS), choices=KINDS)
    p.add_argument("--encoder-dir", action="append", default=[], help="NAME:KIND=DIR: probe this encoder")
    p.add_argument("--runs", type=Path, default=Path("runs/probe"), help="where trained encoders go")
    p.add_argument("--steps", type=int, default=300, help="encoder training steps (batch 64)")
    p.add_argument("--frames", type=int, default=1500)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "encoder_probe.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    envs, given = _pairs(args.env, "--env"), _pairs(args.encoder_dir, "--encoder-dir")
    rows = []
    for name, data in envs.items():
        store = EpisodeStore.open(data)
        for kind in args.encoders:
            if f"{name}:{kind}" in given:
                enc, seconds = build_encoder(kind, path=given[f"{name}:{kind}"]), None
            else:
                enc, seconds = _encoder(kind, store, args.runs / name / kind, args.steps, args.seed)
            t0 = time.perf_counter()
            res = probe_encoder(enc, store, frames=args.frames, pairs=args.pairs, seed=args.seed)
            rows.append({"name": name, "kind": kind, "dataset": str(data), "episodes": len(store),
                         "train_steps": args.steps if seconds is not None else None,
                         "train_seconds": seconds, "probe_seconds": time.perf_counter() - t0, **res})  # fmt: skip
            print(f"{name} {kind}: spearman {res['spearman']:.3f} R^2 {res['r2']:.3f}", flush=True)
    lines = ["| env | encoder | episodes | spearman (latent vs state distance) | linear probe R^2 (held out) | encoder training |",
             "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        t = (
            f"{r['train_seconds']:.0f} s, {r['train_steps']} steps"
            if r["train_seconds"] is not None
            else "given"
        )
        lines.append(
            f"| {r['name']} | {r['kind']} | {r['episodes']} | {r['spearman']:.3f} | {r['r2']:.3f} | {t} |"
        )
    print("\n".join(lines))
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
            "torch": torch.__version__, "frames": args.frames, "pairs": args.pairs, "steps": args.steps}  # fmt: skip
    atomic_write_text(args.out, json.dumps({"info": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
