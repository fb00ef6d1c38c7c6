"""SAC and D4RL-collection speed: gradient updates/s with 2 and 10 critics, env steps/s while collecting.

    python benchmarks/sac_bench.py                          # batch 256, 256x256 networks, 1 torch thread
    python benchmarks/sac_bench.py --updates 50 --steps 2000 --out /tmp/sac_bench.json

Measures, in one process, side by side (ratios are what to compare; the machine may be shared):
    * SAC updates/s: one update = a critic step on ``N`` vectorised critics (target from ``N`` target critics
      and a fresh policy sample) + an actor/temperature step + a Polyak target update, batch ``--batch``,
      hidden ``--hidden``, HalfCheetah shapes (obs 17, action 6), for ``N`` = 2 and 10; also the naive
      alternative for ``N`` = 10: ten separate ``nn.Sequential`` critics called in a Python loop;
    * env steps/s during collection (:func:`worldmodels.data.collect.rollout_episode` into memory, as
      ``build-d4rl`` does before its store append): HalfCheetah-v5, Hopper-v5 and Walker2d-v5 with the
      stochastic SAC actor (batch-1 forward per step) and with uniform random actions.

Prints a markdown table and writes the same numbers as JSON (atomically) to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from typing import Any

import numpy as np
import torch

from worldmodels.io import atomic_write_text
from worldmodels.rl.sac import SAC, ReplayBuffer, SACConfig


def update_rate(num_critics: int, batch: int, hidden: tuple[int, ...], updates: int) -> float:
    """SAC updates/s (critic + actor + target) with ``num_critics`` vectorised critics."""
    cfg = SACConfig(num_critics=num_critics, batch_size=batch, hidden=hidden)
    agent = SAC(17, 6, [-1.0] * 6, [1.0] * 6, cfg)
    rb = ReplayBuffer(20_000, 17, 6)
    rng = np.random.default_rng(0)
    n = 20_000
    rb.add(obs=rng.normal(size=(n, 17)), action=rng.uniform(-1, 1, (n, 6)), reward=rng.normal(size=n),
           next_obs=rng.normal(size=(n, 17)), terminated=np.zeros(n))  # fmt: skip
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        b = rb.sample(batch, g)
        agent.update_critic(b, g)
        agent.update_actor(b, g)
        agent.update_target()

    for _ in range(5):
        step()
    t = time.perf_counter()
    for _ in range(updates):
        step()
    return updates / (time.perf_counter() - t)


def loop_critics_rate(num_critics: int, batch: int, hidden: tuple[int, ...], updates: int) -> float:
    """Critic-loss forward+backward+Adam/s with ``num_critics`` separate MLPs in a Python loop (the naive
    ensemble), for comparison with one vectorised critic step."""
    from torch import nn

    def mlp() -> nn.Module:
        dims = [23, *hidden, 1]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    critics = nn.ModuleList(mlp() for _ in range(num_critics))
    opt = torch.optim.Adam(critics.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 23), torch.randn(batch)

    def step() -> None:
        loss = sum(((c(x).squeeze(-1) - y) ** 2).mean() for c in critics)
        opt.zero_grad()
        loss.backward()
        opt.step()

    from worldmodels.rl.networks import VectorizedCritic

    vec = VectorizedCritic(17, 6, num_critics, hidden)
    vopt = torch.optim.Adam(vec.parameters(), lr=1e-3)

    def vstep() -> None:
        loss = ((vec(x[:, :17], x[:, 17:]) - y) ** 2).mean(1).sum()
        vopt.zero_grad()
        loss.backward()
        vopt.step()

    rates = []
    for f in (step, vstep):
        for _ in range(3):
            f()
        t = time.perf_counter()
        for _ in range(updates):
            f()
        rates.append(updates / (time.perf_counter() - t))
    return rates[0], rates[1]


def collection_rate(env_id: str, steps: int, policy_kind: str) -> float:
    """Env steps/s of :func:`rollout_episode` with the stochastic SAC actor or uniform random actions."""
    import gymnasium as gym

    from worldmodels.data.collect import rollout_episode
    from worldmodels.data.d4rl import UniformPolicy
    from worldmodels.rl.networks import TanhGaussianActor

    env = gym.make(env_id)
    if policy_kind == "random":
        policy = UniformPolicy(env.action_space)
    else:
        actor = TanhGaussianActor(env.observation_space.shape[0], env.action_space.shape[0])
        policy = actor.as_env_policy(env, stochastic=True)
    done, seed = 0, 0
    t = time.perf_counter()
    while done < steps:
        done += len(
            rollout_episode(env, policy, seed, max_steps=steps - done, record_log_prob=True)["action"]
        )
        seed += 1
    return done / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--updates", type=int, default=200, help="timed updates per setting")
    p.add_argument("--steps", type=int, default=5000, help="timed env steps per collection setting")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", default="benchmarks/results/sac_bench.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    hidden = tuple(args.hidden)
    res: dict[str, Any] = {"batch": args.batch, "hidden": list(hidden), "threads": args.threads,
                           "machine": platform.processor() or platform.machine(), "updates_per_s": {}}  # fmt: skip
    for n in (2, 10):
        res["updates_per_s"][str(n)] = update_rate(n, args.batch, hidden, args.updates)
    loop, vec = loop_critics_rate(10, args.batch, hidden, args.updates)
    res["critic_steps_per_s_10"] = {"python_loop": loop, "vectorized": vec}
    res["collection_steps_per_s"] = {
        f"{env_id} {kind}": collection_rate(env_id, args.steps, kind)
        for env_id in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
        for kind in ("sac-actor", "random")
    }
    u = res["updates_per_s"]
    lines = [
        f"SAC, batch {args.batch}, hidden {list(hidden)}, {args.threads} torch thread(s)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| SAC updates/s, 2 critics | {u['2']:.1f} |",
        f"| SAC updates/s, 10 critics | {u['10']:.1f} |",
        f"| cost of 10 critics vs 2 (time per update) | {u['2'] / u['10']:.2f}x |",
        f"| 10-critic step/s: Python loop of MLPs | {loop:.1f} |",
        f"| 10-critic step/s: VectorizedCritic | {vec:.1f} ({vec / loop:.2f}x) |",
    ]
    lines += [f"| collection env steps/s, {k} | {v:.0f} |" for k, v in res["collection_steps_per_s"].items()]
    print("\n".join(lines))
    atomic_write_text(args.out, json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
