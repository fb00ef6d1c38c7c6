"""``synth evaluate``: how faithful are synthetic transitions to the real simulator and the real data?

Dynamics fidelity. For the MuJoCo locomotion envs (HalfCheetah, Hopper, Walker2d ``-v5``) the observation is
``qpos[1:] ++ qvel``: everything but the root's x position, which no dynamics or reward term depends on (the
forward reward uses the x *difference*). So each synthetic ``s`` is restored exactly as
``qpos = [0, s[:nq - 1]]``, ``qvel = s[nq - 1:]``, the synthetic action ``a`` is stepped, and the
simulator's ``s'``, ``r`` and ``terminated`` are compared with the synthetic ones:

* ``dynamics_mse``: mean over samples and dimensions of ``(s'_syn - s'_sim)^2`` (raw units), and
  ``dynamics_nmse``: the same with each dimension divided by the real ``s'`` variance (1 = as bad as
  predicting the mean);
* ``reward_mse`` (and ``reward_nmse`` over the real reward variance);
* ``terminal_accuracy``: fraction of samples whose terminal flag matches the simulator's.

Marginals against the real data: per column, the difference of means in real standard deviations
(``mean_gap``), the ratio of standard deviations (``std_ratio``) and the 1-Wasserstein distance between
the two empirical distributions in real standard deviations (``w1``); summarised by their mean over columns.
A figure overlays the real and synthetic histogram of every column (``marginals.png``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synth.model import COLUMNS, column_names, flatten_transitions

#: envs whose observation is qpos[1:] ++ qvel (exclude_current_positions_from_observation)
RESTORABLE = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")


def simulate(data: dict[str, np.ndarray], env_id: str) -> dict[str, np.ndarray]:
    """The simulator's ``next_observations``, ``rewards``, ``terminals`` for each ``(s, a)`` of ``data``."""
    import gymnasium as gym

    if env_id not in RESTORABLE:
        raise ValueError(f"env_id={env_id!r}: restoring states from observations needs one of {RESTORABLE}")
    env = gym.make(env_id)
    env.reset(seed=0)
    sim = env.unwrapped
    nq = sim.model.nq
    obs, act = np.asarray(data["observations"], np.float64), np.asarray(data["actions"], np.float64)
    if obs.shape[1] != nq - 1 + sim.model.nv:
        raise ValueError(f"observations have {obs.shape[1]} columns; {env_id} has nq - 1 + nv = "
                         f"{nq - 1 + sim.model.nv}")  # fmt: skip
    nxt, rew, term = np.zeros_like(obs), np.zeros(len(obs)), np.zeros(len(obs))
    for i in range(len(obs)):
        sim.set_state(np.concatenate([[0.0], obs[i, : nq - 1]]), obs[i, nq - 1 :])
        o, r, t, _, _ = sim.step(act[i])
        nxt[i], rew[i], term[i] = o, r, float(t)
    env.close()
    return {"next_observations": nxt, "rewards": rew, "terminals": term}


def dynamics_fidelity(
    data: dict[str, np.ndarray], env_id: str, real: dict[str, np.ndarray]
) -> dict[str, float]:
    """Compare ``data``'s ``s'``, ``r``, terminal with the simulator's (see the module docstring)."""
    sim = simulate(data, env_id)
    ds = np.asarray(data["next_observations"], np.float64) - sim["next_observations"]
    dr = np.asarray(data["rewards"], np.float64) - sim["rewards"]
    var_s = np.asarray(real["next_observations"], np.float64).var(0) + 1e-12
    var_r = float(np.asarray(real["rewards"], np.float64).var()) + 1e-12
    return {
        "dynamics_mse": float((ds**2).mean()), "dynamics_nmse": float((ds**2 / var_s).mean()),
        "reward_mse": float((dr**2).mean()), "reward_nmse": float((dr**2).mean() / var_r),
        "terminal_accuracy": float((np.asarray(data["terminals"]) == sim["terminals"]).mean()),
        "sim_terminal_rate": float(sim["terminals"].mean()),
    }  # fmt: skip


def marginal_stats(data: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-column ``mean_gap``, ``std_ratio``, ``w1`` (see the module docstring) and their means."""
    x, y = flatten_transitions(data, "synthetic"), flatten_transitions(real, "real")
    std = y.std(0)
    scale = np.where(std > 0, std, 1.0)
    q = np.linspace(0.0, 1.0, 201)[1:-1]
    w1 = np.abs(np.quantile(x, q, axis=0) - np.quantile(y, q, axis=0)).mean(0) / scale
    gap = np.abs(x.mean(0) - y.mean(0)) / scale
    ratio = np.where(std > 0, x.std(0) / scale, 1.0)
    names = column_names(real["observations"].shape[1], real["actions"].shape[1])
    return {
        "mean_gap": float(gap.mean()), "w1": float(w1.mean()), "std_ratio": float(ratio.mean()),
        "columns": {n: {"mean_gap": float(g), "std_ratio": float(r), "w1": float(w)}
                    for n, g, r, w in zip(names, gap, ratio, w1)},
    }  # fmt: skip


def plot_marginals(data: dict[str, np.ndarray], real: dict[str, np.ndarray], path: str | Path) -> Path:
    """Real vs synthetic histogram of every column, one panel each, written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = flatten_transitions(data, "synthetic"), flatten_transitions(real, "real")
    names = column_names(real["observations"].shape[1], real["actions"].shape[1])
    cols = 8
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.6 * rows))
    for j, ax in enumerate(np.ravel(axes)):
        if j >= len(names):
            ax.axis("off")
            continue
        lo, hi = np.quantile(y[:, j], [0.005, 0.995])
        bins = np.linspace(lo, hi + 1e-9, 40)
        ax.hist(y[:, j], bins=bins, density=True, alpha=0.5, label="real")
        ax.hist(x[:, j], bins=bins, density=True, alpha=0.5, label="synthetic")
        ax.set_title(names[j], fontsize=7)
        ax.tick_params(labelsize=5)
    np.ravel(axes)[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def evaluate(
    samples: dict[str, np.ndarray], real: dict[str, np.ndarray], env_id: str | None
) -> dict[str, Any]:
    """Dynamics fidelity (when ``env_id`` is restorable) and marginal statistics of ``samples``."""
    out: dict[str, Any] = {"samples": len(samples["actions"]), "real": len(real["actions"])}
    if env_id in RESTORABLE:
        out["real_data_check"] = dynamics_fidelity({k: v[:200] for k, v in real.items()}, env_id, real)
        out |= dynamics_fidelity(samples, env_id, real)
    out["marginals"] = marginal_stats(samples, real)
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="synth evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a saved SynthER directory")
    p.add_argument("--data", required=True, help="the real dataset (store directory, .npz or .hdf5)")
    p.add_argument("--samples", default=None, help="a synth generate output to evaluate instead of sampling")
    p.add_argument("--num", type=int, default=2000, help="transitions to sample and step in the simulator")
    p.add_argument(
        "--sampler", default=None, help="sampler fields, e.g. 'steps=16,solver=heun', or 'reference'"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env-id", default=None, help="the simulator (default: the model's env_id)")
    p.add_argument("--out", default=None, help="write fidelity.json and marginals.png here")
    args = p.parse_args(argv)
    from synth.data import load_transitions
    from synth.model import SynthER, parse_sampler

    if args.num < 1:
        raise ValueError(f"--num {args.num} must be >= 1")
    model = SynthER.from_pretrained(args.model)
    real = load_transitions(args.data)
    if real["observations"].shape[1] != model.obs_dim or real["actions"].shape[1] != model.action_dim:
        raise ValueError(f"{args.data}: obs/action sizes {real['observations'].shape[1]}/"
                         f"{real['actions'].shape[1]} do not match the model's {model.obs_dim}/{model.action_dim}")  # fmt: skip
    if args.samples:
        samples = {k: v[: args.num] for k, v in load_transitions(args.samples).items() if k in COLUMNS}
    else:
        sampler = parse_sampler(args.sampler, model.sampler)
        samples = model.sample(args.num, generator=torch.Generator().manual_seed(args.seed), sampler=sampler)
    env_id = args.env_id or model.config.get("env_id")
    report = evaluate(samples, real, env_id)
    if env_id not in RESTORABLE:
        print(f"synth evaluate: env {env_id!r} cannot be restored from observations; marginals only")
    summary = {k: v for k, v in report.items() if k != "marginals"}
    summary["marginals"] = {k: report["marginals"][k] for k in ("mean_gap", "std_ratio", "w1")}
    print(json.dumps(summary, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from worldmodels.io import atomic_write_text

        atomic_write_text(out / "fidelity.json", json.dumps(report, indent=1))
        plot_marginals(samples, real, out / "marginals.png")
    return 0
