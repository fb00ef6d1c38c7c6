"""Latent SynthER: the same transition generator over the features of a pixel dataset (Wall).

    synth latent --data runs/wall --features proprio --out runs/latent_wall      # (x, y) proprio
    synth latent --data runs/wall --features pooled --encoder runs/wall/encoder --out ...  # pooled conv_ae

Transitions are ``(z, a, r, z', terminal)`` with ``z`` the proprio vector of a frame, or the mean over
patches of a saved encoder's tokens (``pooled``): :func:`latent_transitions`. A :class:`~synth.model.SynthER`
is trained on them (``worldmodels fit`` with :class:`~synth.training.SynthERModule`) and generates as many
synthetic transitions as there are real ones.

The check (:func:`world_model_check`): a one-step latent dynamics model ``z' = z + f(z, a)`` (an MLP, the
simplest latent world model over these features) is trained with the same budget and seed on (a) the real
training episodes and (b) the same plus the synthetic transitions, and both are scored by their
one-step MSE on held-out real episodes. Synthetic data passes when (b) is no worse than (a) (ratio
``<= 1 + tolerance``). This is a state-space stand-in for the project's pixel-token
:class:`~worldmodels.models.latent_world_model.LatentWorldModel`, which needs frames that a generator over
pooled features does not produce.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import nn

from worldmodels.data.store import EpisodeStore


def latent_transitions(
    store: EpisodeStore, episodes: np.ndarray | None = None, features: str = "proprio",
    encoder_path: str | None = None, batch: int = 64,
) -> dict[str, np.ndarray]:  # fmt: skip
    """D4RL-keyed float32 transitions of ``episodes`` (default all) with ``observations`` the features.

    Args:
        store: a pixel dataset with ``proprio`` (and ``pixels`` for ``pooled``).
        episodes: episode indices.
        features: ``proprio`` or ``pooled`` (mean over the encoder's patch tokens).
        encoder_path: a saved ``conv_ae`` encoder for ``pooled``.
        batch: frames per encoder call.
    """
    if features not in ("proprio", "pooled"):
        raise ValueError(f"features={features!r}; allowed values: ['proprio', 'pooled']")
    need = "proprio" if features == "proprio" else "pixels"
    if need not in store.keys:
        raise ValueError(
            f"{store.root}: key {need!r} is missing for features={features!r}; keys {store.keys}"
        )
    encoder = None
    if features == "pooled":
        if not encoder_path:
            raise ValueError("features='pooled' needs encoder_path (a saved conv_ae encoder)")
        from worldmodels.encoders import build_encoder

        encoder = build_encoder("conv_ae", path=encoder_path).eval()
    episodes = np.arange(len(store)) if episodes is None else episodes
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "rewards",
                                                        "next_observations", "terminals")}  # fmt: skip
    for e in episodes:
        ep = store.episode(int(e))
        if encoder is None:
            z = np.asarray(ep["proprio"], dtype=np.float32)
        else:
            px = torch.as_tensor(np.asarray(ep["pixels"]))
            px = rearrange(px, "t h w c -> 1 t c h w")
            with torch.no_grad():
                z = torch.cat(
                    [encoder(px[:, i : i + batch]).mean(2)[0] for i in range(0, px.shape[1], batch)]
                )
            z = z.numpy().astype(np.float32)
        cols["observations"].append(z[:-1])
        cols["next_observations"].append(z[1:])
        cols["actions"].append(np.asarray(ep["action"], dtype=np.float32))
        cols["rewards"].append(np.asarray(ep["reward"], dtype=np.float32))
        cols["terminals"].append(np.asarray(ep["terminated"], dtype=np.float32))
    return {k: np.concatenate(v) for k, v in cols.items()}


def _dynamics_mse(train: dict, test: dict, steps: int, seed: int, hidden: int = 128) -> float:
    """Train ``z' = z + f(z, a)`` on ``train`` (inputs and targets z-scored with ``train``'s statistics)
    and return the one-step MSE on ``test`` in raw units."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    z, a, nz = (torch.as_tensor(train[k]) for k in ("observations", "actions", "next_observations"))
    zm, zs = z.mean(0), z.std(0) + 1e-6
    am, as_ = a.mean(0), a.std(0) + 1e-6
    d = nz - z
    dm, ds = d.mean(0), d.std(0) + 1e-6
    net = nn.Sequential(nn.Linear(z.shape[1] + a.shape[1], hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                        nn.SiLU(), nn.Linear(hidden, z.shape[1]))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.cat([(z - zm) / zs, (a - am) / as_], 1), (d - dm) / ds
    for _ in range(steps):
        idx = torch.randint(0, len(x), (256,), generator=g)
        loss = (net(x[idx]) - y[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    tz, ta, tn = (torch.as_tensor(test[k]) for k in ("observations", "actions", "next_observations"))
    with torch.no_grad():
        pred = tz + net(torch.cat([(tz - zm) / zs, (ta - am) / as_], 1)) * ds + dm
    return float((pred - tn).pow(2).mean())


def world_model_check(real: dict, synthetic: dict, test: dict, steps: int, seeds: list[int]) -> dict:
    """Held-out one-step MSE of the latent dynamics model trained on real vs real + synthetic."""
    both = {k: np.concatenate([real[k], synthetic[k]]) for k in real}
    rows = [{"seed": s, "real": _dynamics_mse(real, test, steps, s), "real+synthetic": _dynamics_mse(both, test, steps, s)}
            for s in seeds]  # fmt: skip
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("real", "real+synthetic")}
    return {"per_seed": rows, **mean, "ratio": mean["real+synthetic"] / mean["real"]}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="synth latent", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="a pixel dataset (EpisodeStore with proprio/pixels)")
    p.add_argument("--features", default="proprio", choices=["proprio", "pooled"])
    p.add_argument("--encoder", default=None, help="a saved conv_ae encoder (features=pooled)")
    p.add_argument("--out", required=True)
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out real episodes")
    p.add_argument("--fit-steps", type=int, default=2000, help="SynthER training steps")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--sampler", default="steps=16,solver=heun")
    p.add_argument("--wm-steps", type=int, default=2000, help="latent dynamics model training steps")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--tolerance", type=float, default=0.05)
    args = p.parse_args(argv)
    from synth.data import load_transitions
    from synth.generate import GenerateConfig, generate
    from worldmodels.training.cli import lightning_main

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = EpisodeStore.open(args.data)
    perm = np.random.default_rng(0).permutation(len(store))
    n_test = max(1, round(args.test_fraction * len(store)))
    test = latent_transitions(store, np.sort(perm[:n_test]), args.features, args.encoder)
    real = latent_transitions(store, np.sort(perm[n_test:]), args.features, args.encoder)
    with open(out / "real.npz", "wb") as f:
        np.savez(f, **real)
    model = out / "fit" / "model"
    if not (model / "config.json").exists():
        lightning_main(["fit", "--model", "synth.training.SynthERModule", "--data", "synth.training.TransitionsDataModule",
                        "--data.root", str(out / "real.npz"), "--model.width", str(args.width),
                        "--model.blocks", str(args.blocks), "--trainer.max_steps", str(args.fit_steps),
                        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.logger", "false",
                        "--trainer.gradient_clip_val", "1.0", "--trainer.enable_progress_bar", "false",
                        "--trainer.check_val_every_n_epoch", "null", "--trainer.val_check_interval", str(args.fit_steps),
                        "--trainer.default_root_dir", str(out / "fit")])  # fmt: skip
    n = len(real["actions"])
    generate(
        GenerateConfig(
            model=str(model), num=n, out=str(out / "samples"), sampler=args.sampler, progress=False
        )
    )
    synthetic = load_transitions(out / "samples")
    synthetic = {k: synthetic[k] for k in real}
    report = world_model_check(real, synthetic, test, args.wm_steps, args.seeds)
    report |= {"features": args.features, "real_transitions": n, "test_transitions": len(test["actions"]),
               "fit_steps": args.fit_steps, "wm_steps": args.wm_steps, "width": args.width, "blocks": args.blocks,
               "no_worse": report["ratio"] <= 1 + args.tolerance, "tolerance": args.tolerance}  # fmt: skip
    (out / "check.json").write_text(json.dumps(report, indent=1))
    print("| training data | held-out one-step MSE (mean) | per seed |\n|---|---:|---|")
    for key in ("real", "real+synthetic"):
        print(f"| {key} | {report[key]:.3g} | {', '.join(f'{r[key]:.3g}' for r in report['per_seed'])} |")
    print(f"ratio {report['ratio']:.3f}; no worse (<= 1 + {args.tolerance}): {report['no_worse']}")
    return 0
