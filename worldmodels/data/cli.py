"""``worldmodels data``: collect, inspect, render, export and import datasets.

worldmodels data collect --env worldmodels/Wall-v0 --policy noisy-expert --episodes 2000 --out data/wall --workers 2
worldmodels data info data/wall
worldmodels data render data/wall --episode 0 --out ep0.mp4
worldmodels data export data/wall --format minari|d4rl|d3rlpy --out PATH [--dataset-id ID]
worldmodels data build-d4rl --env halfcheetah --tier medium --out data/d4rl/halfcheetah-medium --seed 0
worldmodels data import --format minari|d4rl SRC --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from worldmodels.io import atomic_path

#: what ``data render --out`` writes (imageio picks the writer from the suffix)
VIDEO_SUFFIXES = (".mp4", ".gif")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="worldmodels data", description="Offline datasets: collect, inspect, convert."
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="roll a behaviour policy in a simulator and store the episodes")
    c.add_argument("--env", required=True, help="Gymnasium id, e.g. worldmodels/Wall-v0")
    c.add_argument(
        "--policy",
        required=True,
        help="random | expert | noisy-expert | sticky-random | a saved policy directory; "
        "several joined by + take turns by episode (e.g. noisy-expert+sticky-random)",
    )
    c.add_argument("--episodes", type=int, required=True, help="total episodes wanted (a re-run resumes)")
    c.add_argument("--out", required=True, help="dataset directory")
    c.add_argument("--workers", type=int, default=1, help="simulator processes (default 1)")
    c.add_argument("--seed", type=int, default=0, help="episode i uses seed + i (default 0)")
    c.add_argument("--img-size", type=int, default=None, help="image size for visual envs (env default)")
    c.add_argument(
        "--noise-std", type=float, default=None, help="noisy-expert: Gaussian action noise std (default 0.3)"
    )
    c.add_argument(
        "--stochastic",
        action="store_true",
        help="a saved stochastic policy (SAC actor) samples its actions, seeded per episode (D4RL's way)",
    )
    i = sub.add_parser(
        "info", help="print a dataset card (a summary; D4RL tiers: returns, normalised scores)"
    )
    i.add_argument("root")
    i.add_argument("--json", action="store_true", help="print the summary as JSON instead of the card")
    i.add_argument("--plot", default=None, help="write a histogram of episode returns to this image path")
    b = sub.add_parser(
        "build-d4rl",
        help="build a D4RL-style locomotion dataset (trains or resumes the SAC run it needs; resumable)",
    )
    from worldmodels.data.d4rl import BuildConfig

    for f in dataclasses.fields(BuildConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = {"int": int, "float": float, "str": str, "int | None": int, "str | None": str}[f.type]
        required = f.default is dataclasses.MISSING
        b.add_argument(flag, type=kind, required=required, default=None, help=f.metadata["help"])
    from worldmodels.rl.sac import SACConfig

    SACConfig.add_arguments(b, prefix="sac-", skip=("env_id", "seed"))
    r = sub.add_parser("render", help="write one episode's frames as a video")
    r.add_argument("root")
    r.add_argument("--episode", type=int, default=0)
    r.add_argument("--out", required=True, help="video path (.mp4 or .gif)")
    r.add_argument("--fps", type=int, default=10)
    e = sub.add_parser("export", help="export to Minari or D4RL HDF5")
    e.add_argument("root")
    e.add_argument("--format", choices=("minari", "d4rl", "d3rlpy"), required=True)
    e.add_argument(
        "--out",
        required=True,
        help="Minari root directory, or the .hdf5 path for d4rl, or the .h5 for d3rlpy",
    )
    e.add_argument("--dataset-id", default=None, help="Minari dataset id (default: worldmodels/<env>-v0)")
    m = sub.add_parser("import", help="import a Minari dataset or a D4RL HDF5 file")
    m.add_argument("src", help="Minari dataset id, or the .hdf5 path for d4rl")
    m.add_argument("--format", choices=("minari", "d4rl"), required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--minari-root", default=None, help="Minari root (default: MINARI_DATASETS_PATH)")
    m.add_argument(
        "--drop-info",
        action="append",
        default=[],
        metavar="KEY",
        help="d4rl: import without the column infos/KEY (repeatable); an unknown or incomplete infos column "
        "is otherwise an error, never dropped silently",
    )
    return p


def info(root: str) -> dict:
    """Summary of a dataset as a dict (what ``data info`` prints)."""
    from worldmodels.data.store import EpisodeStore

    store = EpisodeStore.open(root)
    m = store.manifest
    returns = np.asarray([ep["return"] for ep in m["episodes"]]) if len(store) else np.zeros(1)
    lengths = store.episode_lengths if len(store) else np.zeros(1, dtype=np.int64)
    return {
        "root": str(root),
        "env_id": m["env_id"],
        "env_kwargs": m["env_kwargs"],
        "behaviour_policy": m["behaviour_policy"],
        "episodes": len(store),
        "steps": int(lengths.sum()),
        "episode_length": {
            "min": int(lengths.min()),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
        "return": {"min": float(returns.min()), "mean": float(returns.mean()), "max": float(returns.max())},
        "keys": {
            k: [*v["shape"][1:], np.dtype(v["dtype"]).name]
            for k, v in (m["episodes"][0]["files"].items() if len(store) else [])
        },
        "observation_space": m["observation_space"],
        "action_space": m["action_space"],
        "size_on_disk_mb": round(store.size_on_disk() / 2**20, 2),
        "return_histogram": _histogram(returns),
        "d4rl": _read_card(root),
    }


def _read_card(root: str) -> dict | None:
    from worldmodels.data.d4rl import CARD_NAME

    path = Path(root) / CARD_NAME
    return json.loads(path.read_text()) if path.exists() else None


def _histogram(returns: np.ndarray, bins: int = 10) -> dict[str, list]:
    counts, edges = np.histogram(returns, bins=bins)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def card_text(root: str) -> str:
    """The dataset card ``data info`` prints: what the data is, its size, returns and their histogram, and
    for a D4RL tier its policies, normalised scores (D4RL's references and ours) and restore check."""
    s = info(root)
    card = s["d4rl"]
    lines = [f"{root}", f"  env            {s['env_id']} {s['env_kwargs'] or ''}".rstrip()]
    if card is not None:
        v = card["versions"]
        lines[0] = f"{card['name']}  ({root})"
        lines[1] += f"  (gymnasium {v['gymnasium']}, mujoco {v['mujoco']}), seed {card['seed']}"
        size = card["d4rl_transitions"]
        d4rl = "D4RL: the replay buffer up to medium" if size is None else f"D4RL has {size:,}"
        smaller = "  SMALLER than D4RL (CPU budget)" if card["smaller_than_d4rl"] else ""
        lines.append(
            f"  tier           {card['tier']}: {card['transitions']:,} transitions ({d4rl}){smaller}"
        )
    else:
        lines.append(f"  policy         {s['behaviour_policy']}")
    el = s["episode_length"]
    lines.append(f"  episodes       {s['episodes']:,}, {s['steps']:,} steps, length min/mean/max "
                 f"{el['min']}/{el['mean']:.1f}/{el['max']}")  # fmt: skip
    if card is not None:
        r = card["returns"]
        lines.append(f"  returns        mean {r['mean']:.1f}  std {r['std']:.1f}  min {r['min']:.1f}  max {r['max']:.1f}"
                     f"  ({card['complete_episodes']} complete episodes)")  # fmt: skip
        for ref, refs in card["references"].items():
            if ref in card["normalized"]:
                n = card["normalized"][ref]
                lines.append(f"  normalised     {ref:<5} (random {refs[0]:.1f}, expert {refs[1]:.1f}): mean {n['mean']:.1f}"
                             f"  min {n['min']:.1f}  max {n['max']:.1f}")  # fmt: skip
        for name, p in card["policies"].items():
            lines.append(f"  policy         {name}: SAC step {p['sac_step']:,}, evaluated return {p['eval_return_mean']:.1f}"
                         f" +- {p['eval_return_std']:.1f} ({p['eval_episodes']} episodes, mean action); data "
                         f"{p['sampling']}ly sampled; {p['path']}")  # fmt: skip
        if card.get("sac"):
            sac = card["sac"]
            lines.append(f"  SAC run        {sac['run_dir']}: {sac['final_step']:,} env steps, hidden "
                         f"{sac['config']['hidden']}, expert {sac['expert_return']:.1f}, medium {sac['medium_return']:.1f} "
                         f"at step {sac['medium_step']:,}")  # fmt: skip
        rc = card["restore_check"]
        lines.append(f"  restore check  {rc['samples']} transitions restored from qpos/qvel and stepped: max obs "
                     f"error {rc['max_obs_error']:.2g}, max reward error {rc['max_reward_error']:.2g}")  # fmt: skip
    else:
        r = s["return"]
        lines.append(f"  returns        mean {r['mean']:.1f}  min {r['min']:.1f}  max {r['max']:.1f}")
    lines.append("  episode returns (histogram)")
    h = s["return_histogram"]
    top = max(h["counts"]) or 1
    for lo, hi, c in zip(h["edges"][:-1], h["edges"][1:], h["counts"]):
        lines.append(f"    [{lo:10.1f}, {hi:10.1f})  {'#' * round(30 * c / top):<30} {c}")
    keys = ", ".join(f"{k} {tuple(v[:-1])} {v[-1]}" for k, v in s["keys"].items())
    lines.append(f"  keys           {keys}")
    lines.append(f"  on disk        {s['size_on_disk_mb']} MiB")
    return "\n".join(lines)


def plot_returns(root: str, out: str) -> Path:
    """Histogram of episode returns (with normalised-score axis for a D4RL tier) written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldmodels.data.store import EpisodeStore
    from worldmodels.io import atomic_path

    store = EpisodeStore.open(root, verify=False)
    card = _read_card(root)
    returns = np.asarray([e["return"] for e in store.manifest["episodes"]])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(returns, bins=30)
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.set_title(card["name"] if card else str(root))
    if card is not None:
        from worldmodels.data.d4rl import normalized_score

        env = card["env"]
        sec = ax.secondary_xaxis("top", functions=(lambda x: normalized_score(env, x),
                                                   lambda y: np.asarray(y) / 100 * (card["references"]["d4rl"][1] - card["references"]["d4rl"][0]) + card["references"]["d4rl"][0]))  # fmt: skip
        sec.set_xlabel("D4RL-normalised score")
    fig.tight_layout()
    out_path = Path(out)
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return out_path


def render(root: str, episode: int, out: str, fps: int = 10) -> Path:
    """Write the ``pixels`` of one episode to ``out`` (mp4/gif), atomically."""
    import imageio.v3 as iio

    from worldmodels.data.store import EpisodeStore

    out_path = Path(out)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--out {out}: a video path must end in one of {VIDEO_SUFFIXES}")
    store = EpisodeStore.open(root, verify=False)
    if "pixels" not in store.keys:
        raise ValueError(f"{root}: key 'pixels' is not in the dataset {store.keys}; nothing to render")
    if not 0 <= episode < len(store):
        raise ValueError(f"--episode {episode}: {root} has episodes 0..{len(store) - 1}")
    frames = np.asarray(store.read(episode, "pixels"))
    kwargs = {"fps": fps} if out_path.suffix == ".mp4" else {"duration": 1000 / fps, "loop": 0}
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        iio.imwrite(tmp, frames, **kwargs)
    return out_path


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "collect":
        from worldmodels.data.collect import collect

        kwargs = {} if args.img_size is None else {"img_size": args.img_size}
        store = collect(args.env, policy=args.policy, episodes=args.episodes, out=args.out, workers=args.workers,
                        seed=args.seed, env_kwargs=kwargs, noise_std=args.noise_std, stochastic=args.stochastic)  # fmt: skip
        print(f"{args.out}: {len(store)} episodes, {int(store.episode_lengths.sum())} steps")
    elif args.cmd == "info":
        print(json.dumps(info(args.root), indent=2) if args.json else card_text(args.root))
        if args.plot:
            print(f"wrote {plot_returns(args.root, args.plot)}")
    elif args.cmd == "build-d4rl":
        from worldmodels.data.d4rl import BuildConfig, build_tier, default_sac_config

        fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(BuildConfig)}
        cfg = BuildConfig(**{k: v for k, v in fields.items() if v is not None})
        sac = default_sac_config(cfg.env, cfg.seed).override(args, prefix="sac-")
        build_tier(cfg, sac)
        print(card_text(cfg.out))
    elif args.cmd == "render":
        print(f"wrote {render(args.root, args.episode, args.out, args.fps)}")
    elif args.cmd == "export":
        from worldmodels.data import adapters
        from worldmodels.data.store import EpisodeStore

        store = EpisodeStore.open(args.root)
        if args.format == "minari":
            ds_id = args.dataset_id or f"worldmodels/{store.env_id.split('/')[-1].split('-v')[0].lower()}-v0"
            adapters.export_minari(store, ds_id, args.out)
            print(f"exported {args.root} as Minari dataset {ds_id!r} under {args.out}")
        elif args.format == "d3rlpy":
            adapters.export_d3rlpy(store, args.out)
            print(f"exported {args.root} to {args.out} (d3rlpy MDPDataset)")
        else:
            adapters.export_d4rl(store, args.out)
            print(f"exported {args.root} to {args.out}")
    elif args.cmd == "import":
        from worldmodels.data import adapters

        if args.format == "minari":
            if args.drop_info:
                raise ValueError(f"--drop-info {args.drop_info[0]}: only for --format d4rl")
            store = adapters.import_minari(args.src, args.out, root=args.minari_root)
        else:
            store = adapters.import_d4rl(args.src, args.out, drop_infos=args.drop_info)
        print(f"{args.out}: {len(store)} episodes imported")
    return 0
