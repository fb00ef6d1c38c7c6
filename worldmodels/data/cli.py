"""``worldmodels data``: collect, inspect, render, export and import datasets.

worldmodels data collect --env worldmodels/Wall-v0 --policy noisy-expert --episodes 2000 --out data/wall --workers 2
worldmodels data info data/wall
worldmodels data render data/wall --episode 0 --out ep0.mp4
worldmodels data export data/wall --format minari|d4rl --out PATH [--dataset-id ID]
worldmodels data import --format minari|d4rl SRC --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np


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
    i = sub.add_parser("info", help="print a summary of a dataset")
    i.add_argument("root")
    r = sub.add_parser("render", help="write one episode's frames as a video")
    r.add_argument("root")
    r.add_argument("--episode", type=int, default=0)
    r.add_argument("--out", required=True, help="video path (.mp4 or .gif)")
    r.add_argument("--fps", type=int, default=10)
    e = sub.add_parser("export", help="export to Minari or D4RL HDF5")
    e.add_argument("root")
    e.add_argument("--format", choices=("minari", "d4rl"), required=True)
    e.add_argument("--out", required=True, help="Minari root directory, or the .hdf5 path for d4rl")
    e.add_argument("--dataset-id", default=None, help="Minari dataset id (default: worldmodels/<env>-v0)")
    m = sub.add_parser("import", help="import a Minari dataset or a D4RL HDF5 file")
    m.add_argument("src", help="Minari dataset id, or the .hdf5 path for d4rl")
    m.add_argument("--format", choices=("minari", "d4rl"), required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--minari-root", default=None, help="Minari root (default: MINARI_DATASETS_PATH)")
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
    }


def render(root: str, episode: int, out: str, fps: int = 10) -> Path:
    """Write the ``pixels`` of one episode to ``out`` (mp4/gif), atomically."""
    import imageio.v3 as iio

    from worldmodels.data.store import EpisodeStore

    store = EpisodeStore.open(root, verify=False)
    if "pixels" not in store.keys:
        raise ValueError(f"{root}: key 'pixels' is not in the dataset {store.keys}; nothing to render")
    frames = np.asarray(store.read(episode, "pixels"))
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=out_path.suffix)
    os.close(fd)
    kwargs = {"fps": fps} if out_path.suffix == ".mp4" else {"duration": 1000 / fps, "loop": 0}
    iio.imwrite(tmp, frames, **kwargs)
    os.replace(tmp, out_path)
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
        print(json.dumps(info(args.root), indent=2))
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
        else:
            adapters.export_d4rl(store, args.out)
            print(f"exported {args.root} to {args.out}")
    elif args.cmd == "import":
        from worldmodels.data import adapters

        if args.format == "minari":
            store = adapters.import_minari(args.src, args.out, root=args.minari_root)
        else:
            store = adapters.import_d4rl(args.src, args.out)
        print(f"{args.out}: {len(store)} episodes imported")
    return 0
