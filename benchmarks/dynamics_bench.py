"""Offline model-based RL speed: ensemble dynamics training and rollouts against OfflineRL-Kit's design, and
SAC-N update time at N = 10 vs N = 2, all measured in one run on this machine.

    python benchmarks/dynamics_bench.py                       # 1 torch thread, writes benchmarks/results/dynamics_bench.json
    python benchmarks/dynamics_bench.py --repeats 50 --out /tmp/dynamics_bench.json

Measures (median of ``--repeats`` timed calls after warm-up, 7 x 4 x 200 SiLU ensemble, HalfCheetah sizes:
obs 17, action 6):

* ensemble train ms per 256-sample minibatch (per member): forward, Gaussian NLL + log-variance bound
  penalty + per-layer L2, backward, Adam step. Ours: :class:`EnsembleDynamics`. Reference: a
  re-implementation, for timing only, of OfflineRL-Kit's design as its code is laid out (``einsum`` ensemble
  layers, a Swish module, numpy training arrays indexed per batch and converted to tensors, a Python loop
  over layers for the decay loss);
* rollout transitions/s: ``--rollout-batch`` start states, 5 steps of a 3 x 256 SAC actor through the model
  (sample an elite per row, Gaussian sample, termination, MOPO aleatoric penalty). Ours: ``step`` on tensors,
  only the elites computed. Reference: OfflineRL-Kit's design (numpy in and out of every step, numpy
  standardisation, all 7 members computed, numpy sampling and penalty);
* SAC-N update ms (batch 256, 3 x 256 critics and actor): N = 2, N = 10, N = 10 with EDAC's diversity term.

The issue's figures for OfflineRL-Kit on a 2-core CPU (17.4 ms per minibatch, 17.0k transitions/s) are
quoted for orientation; the ratios come from this run. Prints a markdown table, writes the same numbers as
JSON (atomically) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worldmodels.benchmarking import interleave
from worldmodels.io import atomic_write_text
from worldmodels.models.ensemble_dynamics import EnsembleDynamics
from worldmodels.rl.mbrl import SACN, MBRLConfig
from worldmodels.rl.networks import TanhGaussianActor

OBS, ACT, E, ELITES, HIDDEN = 17, 6, 7, 5, (200, 200, 200, 200)
DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)


# ----------------------------------------------------------------- OfflineRL-Kit's design (timing only)
class KitEnsembleLinear(nn.Module):
    def __init__(self, n, i, o, decay):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, i, o) / np.sqrt(i))
        self.bias = nn.Parameter(torch.zeros(n, 1, o))
        self.decay = decay

    def forward(self, x):
        x = (
            torch.einsum("ij,bjk->bik", x, self.weight)
            if x.dim() == 2
            else torch.einsum("bij,bjk->bik", x, self.weight)
        )
        return x + self.bias

    def decay_loss(self):
        return self.decay * (0.5 * (self.weight**2).sum())


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def soft_clamp(x, lo, hi):
    x = hi - F.softplus(hi - x)
    return lo + F.softplus(x - lo)


class KitEnsemble(nn.Module):
    def __init__(self):
        super().__init__()
        dims = [OBS + ACT, *HIDDEN]
        self.backbones = nn.ModuleList(
            KitEnsembleLinear(E, a, b, d) for a, b, d in zip(dims[:-1], dims[1:], DECAYS)
        )
        self.output_layer = KitEnsembleLinear(E, dims[-1], 2 * (OBS + 1), DECAYS[-1])
        self.activation = Swish()
        self.max_logvar = nn.Parameter(torch.ones(OBS + 1) * 0.5)
        self.min_logvar = nn.Parameter(torch.ones(OBS + 1) * -10)
        self.elites = np.arange(ELITES)

    def forward(self, obs_action: np.ndarray):
        x = torch.as_tensor(obs_action, dtype=torch.float32)
        for layer in self.backbones:
            x = self.activation(layer(x))
        mean, logvar = torch.chunk(self.output_layer(x), 2, dim=-1)
        return mean, soft_clamp(logvar, self.min_logvar, self.max_logvar)

    def get_decay_loss(self):
        loss = 0
        for layer in self.backbones:
            loss += layer.decay_loss()
        return loss + self.output_layer.decay_loss()


def kit_train_step(model, opt, inputs, targets, idx):
    x, y = inputs[idx], torch.as_tensor(targets[idx])  # numpy (E, B, ...) indexing, then tensors
    mean, logvar = model(x)
    inv_var = torch.exp(-logvar)
    loss = (torch.pow(mean - y, 2) * inv_var).mean(dim=(1, 2)).sum() + logvar.mean(dim=(1, 2)).sum()
    loss = loss + model.get_decay_loss() + 0.01 * model.max_logvar.sum() - 0.01 * model.min_logvar.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()


@torch.no_grad()
def kit_step(model, mu, sigma, obs: np.ndarray, action: np.ndarray, rng: np.random.Generator):
    obs_act = (np.concatenate([obs, action], axis=-1) - mu) / sigma
    mean, logvar = model(obs_act)
    mean, logvar = mean.cpu().numpy(), logvar.cpu().numpy()
    mean[..., :-1] += obs
    std = np.sqrt(np.exp(logvar))
    samples = (mean + rng.normal(size=mean.shape) * std).astype(np.float32)
    idx = rng.choice(model.elites, size=len(obs))
    s = samples[idx, np.arange(len(obs))]
    next_obs, reward = s[:, :-1], s[:, -1:]
    terminal = np.zeros((len(obs), 1), dtype=bool)
    penalty = np.amax(np.linalg.norm(std, axis=2), axis=0)
    return next_obs, reward - penalty[:, None], terminal


# ----------------------------------------------------------------------------------------- timing
def interleaved_ms(fns, repeats: int, warmup: int = 3) -> list[float]:
    """Median ms of each function, calls alternating between them (:func:`worldmodels.benchmarking.interleave`)."""
    times = interleave(dict(enumerate(fns)), repeats, warmup)
    return [1000 * statistics.median(ts) for ts in times.values()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--rollout-batch", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/dynamics_bench.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 20_000
    obs, act = rng.normal(size=(n, OBS)).astype(np.float32), rng.uniform(-1, 1, (n, ACT)).astype(np.float32)
    nxt, rew = (
        obs + 0.1 * rng.normal(size=obs.shape).astype(np.float32),
        rng.normal(size=n).astype(np.float32),
    )

    # ---- training
    ours = EnsembleDynamics(OBS, ACT, E, ELITES, HIDDEN)
    t = {k: torch.as_tensor(v) for k, v in (("o", obs), ("a", act), ("n", nxt), ("r", rew))}
    ours.set_statistics(t["o"], t["a"], t["n"], t["r"])
    opt = torch.optim.Adam(ours.parameters(), lr=1e-3)

    def our_train():
        idx = torch.randint(n, (E, 256))
        loss = (
            ours.nll(t["o"][idx], t["a"][idx], t["n"][idx], t["r"][idx]) + 0.01 * ours.logvar_bound_penalty()
        )
        loss = loss + ours.weight_decay_penalty(DECAYS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    kit = KitEnsemble()
    kit_opt = torch.optim.Adam(kit.parameters(), lr=1e-3)
    inputs = np.concatenate([obs, act], 1)
    mu, sigma = inputs.mean(0), inputs.std(0)
    inputs_n = (inputs - mu) / sigma
    targets = np.concatenate([nxt - obs, rew[:, None]], 1)

    def kit_train():
        kit_train_step(kit, kit_opt, inputs_n, targets, rng.integers(0, n, (E, 256)))

    ms_ours, ms_kit = interleaved_ms([our_train, kit_train], args.repeats)

    # ---- rollouts: 5 steps from rollout_batch start states, policy included
    actor = TanhGaussianActor(OBS, ACT, (256, 256, 256))
    starts = t["o"][: args.rollout_batch]
    g = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def our_rollout():
        s = starts
        for _ in range(5):
            a, _ = actor.sample(s, g)
            out = ours.step(s, a, generator=g)
            s = out.next_state[~out.terminated]

    @torch.no_grad()
    def kit_rollout():
        s = starts.numpy()
        for _ in range(5):
            a = actor.sample(torch.as_tensor(s), g)[0].numpy()
            s, _, term = kit_step(kit, mu, sigma, s, a, rng)
            s = s[~term[:, 0]]

    reps = max(3, args.repeats // 5)
    ms_roll_ours, ms_roll_kit = interleaved_ms([our_rollout, kit_rollout], reps, 1)
    tps_ours, tps_kit = (5 * args.rollout_batch / (ms / 1000) for ms in (ms_roll_ours, ms_roll_kit))

    # ---- SAC-N updates
    batch = {"obs": t["o"][:256], "action": t["a"][:256], "reward": t["r"][:256], "next_obs": t["n"][:256],
             "terminated": torch.zeros(256)}  # fmt: skip
    variants = {"N=2": {"algo": "mbpo"}, "N=10": {"algo": "ravl", "eta": 0.0}, "N=10+EDAC": {"algo": "ravl"}}
    agents = [SACN(OBS, ACT, [-1] * ACT, [1] * ACT, MBRLConfig(**kw)) for kw in variants.values()]
    sac = dict(zip(variants, interleaved_ms([lambda a=a: a.update(batch, g) for a in agents], args.repeats)))

    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": args.threads,
                    "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count(),
                    "torch": torch.__version__},
        "ensemble_train_ms_per_minibatch": {"ours": ms_ours, "offlinerl_kit_design": ms_kit, "speedup": ms_kit / ms_ours},
        "rollout_transitions_per_s": {"ours": tps_ours, "offlinerl_kit_design": tps_kit, "speedup": tps_ours / tps_kit,
                                      "rollout_batch": args.rollout_batch},
        "sac_n_update_ms": sac | {"ratio_N10_vs_N2": sac["N=10"] / sac["N=2"],
                                  "ratio_N10_EDAC_vs_N2": sac["N=10+EDAC"] / sac["N=2"]},
        "issue_reference": {"offlinerl_kit_ms_per_minibatch": 17.4, "offlinerl_kit_transitions_per_s": 17_000},
    }  # fmt: skip
    rows = [
        ("ensemble train, ms / 256 minibatch", f"{ms_ours:.2f}", f"{ms_kit:.2f}", f"{ms_kit / ms_ours:.2f}x"),
        ("rollout, transitions/s", f"{tps_ours:,.0f}", f"{tps_kit:,.0f}", f"{tps_ours / tps_kit:.2f}x"),
    ]
    print("| measure (7 x 4 x 200 ensemble) | ours | OfflineRL-Kit design | speed-up |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print("\n| SAC-N update (batch 256, 3 x 256) | ms | vs N=2 |\n|---|---|---|")
    for k, v in sac.items():
        print(f"| {k} | {v:.2f} | {v / sac['N=2']:.2f}x |")
    atomic_write_text(Path(args.out), json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
