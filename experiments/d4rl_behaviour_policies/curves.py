"""Learning curves of the SAC runs behind the D4RL-style datasets, and the tiers' table.

    python experiments/d4rl_behaviour_policies/curves.py --root data/d4rl \
        --out docs/figures/d4rl_sac_curves.png

Reads ``<root>/sac/<env>-seed<S>/evals.json`` (deterministic evaluation return vs env steps) of every SAC
run and the ``d4rl.json`` card of every built tier under ``<root>``; plots one panel per env (evaluation
return, medium and expert snapshots marked, D4RL's medium/expert policy returns as dashed lines) and prints
a markdown table of the tiers beside D4RL's published numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: returns of D4RL's medium / expert behaviour policies (D4RL's OPE policy table), for orientation
D4RL_POLICY_RETURNS = {
    "halfcheetah": (3985.0, 12330.0),
    "hopper": (2260.0, 3624.0),
    "walker2d": (2760.0, 4005.0),
}

#: transitions of D4RL's -v2 datasets (medium-replay: the replay buffer up to the medium policy)
D4RL_SIZES = {
    "random": {"halfcheetah": 1_000_000, "hopper": 1_000_000, "walker2d": 1_000_000},
    "medium": {"halfcheetah": 1_000_000, "hopper": 1_000_000, "walker2d": 1_000_000},
    "medium-replay": {"halfcheetah": 202_000, "hopper": 402_000, "walker2d": 302_000},
    "medium-expert": {"halfcheetah": 2_000_000, "hopper": 2_000_000, "walker2d": 2_000_000},
    "expert": {"halfcheetah": 1_000_000, "hopper": 1_000_000, "walker2d": 1_000_000},
}


def plot(root: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldmodels.io import atomic_path

    runs = sorted((root / "sac").glob("*-seed*/evals.json"))
    fig, axes = plt.subplots(1, max(1, len(runs)), figsize=(5 * max(1, len(runs)), 3.6), squeeze=False)
    for ax, path in zip(axes[0], runs):
        env = path.parent.name.split("-seed")[0]
        evals = json.loads(path.read_text())
        steps = np.asarray([e["step"] for e in evals])
        mean = np.asarray([e["return_mean"] for e in evals])
        std = np.asarray([e["return_std"] for e in evals])
        ax.plot(steps, mean, label="SAC (mean action, 10 episodes)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        cards = [json.loads(c.read_text()) for c in root.glob(f"{env}-*/d4rl.json")]
        sac = next((c["sac"] for c in cards if c.get("sac")), None)
        if sac is not None:
            ax.axvline(
                sac["medium_step"], color="tab:orange", ls=":", label=f"medium ({sac['medium_return']:.0f})"
            )
            ax.axvline(
                sac["final_step"], color="tab:green", ls=":", label=f"expert ({sac['expert_return']:.0f})"
            )
        for value, name in zip(D4RL_POLICY_RETURNS[env], ("D4RL medium", "D4RL expert")):
            ax.axhline(value, color="grey", ls="--", lw=0.8)
            ax.text(steps[0], value, name, fontsize=7, va="bottom", color="grey")
        ax.set_title(f"{env} ({path.parent.name})")
        ax.set_xlabel("env steps")
        ax.set_ylabel("return")
        ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def table(root: Path) -> str:
    """One row per built tier, beside D4RL's size and (medium/expert) D4RL's behaviour policy's return."""
    from worldmodels.data.d4rl import normalized_score

    rows = [
        "| dataset | transitions (D4RL) | episodes | mean return (min / max) | normalised, D4RL refs | "
        "normalised, our refs | policy return, ours vs D4RL's (normalised, D4RL refs) |",
        "|---|---|---|---|---|---|---|",
    ]
    for card_path in sorted(root.glob("*-*/d4rl.json")):
        c = json.loads(card_path.read_text())
        env, r = c["env"], c["returns"]
        ours = c["normalized"].get("ours")
        policy = "-"
        if c["tier"] in ("medium", "expert"):
            mine = c["policies"][c["tier"]]["eval_return_mean"]
            d4rl = D4RL_POLICY_RETURNS[env][c["tier"] == "expert"]
            policy = (f"{mine:.0f} vs {d4rl:.0f} ({normalized_score(env, mine):.1f} vs "
                      f"{normalized_score(env, d4rl):.1f})")  # fmt: skip
        rows.append(
            f"| {c['name']} | {c['transitions']:,} ({D4RL_SIZES[c['tier']][env]:,}) | {c['complete_episodes']} | "
            f"{r['mean']:.1f} ({r['min']:.0f} / {r['max']:.0f}) | {c['normalized']['d4rl']['mean']:.1f} | "
            f"{'-' if ours is None else format(ours['mean'], '.1f')} | {policy} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/d4rl", help="directory of the built tiers and sac/ runs")
    p.add_argument("--out", default="docs/figures/d4rl_sac_curves.png")
    args = p.parse_args(argv)
    plot(Path(args.root), Path(args.out))
    print(table(Path(args.root)))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
