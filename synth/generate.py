"""``synth generate``: many synthetic transitions from a saved SynthER, in shards, resumable.

Layout of ``--out``::

    metadata.json            model (path + sha256 of its files), sampler, seed, shard size, counts, format,
                             complete (written atomically after every shard: the commit point)
    shards/shard_000012.npz  D4RL-keyed arrays of shard 12 (atomic write; a partial shard never exists)
    samples.npz              --format npz: every shard concatenated, D4RL keys (+ timeouts, all False)
    samples.hdf5             --format d4rl: the same as a D4RL-style HDF5 file (h5py / D4RL readers)
    store/                   --format store (and minari): an EpisodeStore of one-step episodes
    minari/<dataset_id>/     --format minari: a Minari dataset (``MINARI_DATASETS_PATH=<out>/minari``)

Resumability: shard ``i`` is drawn from its own generator seeded by ``(seed, i)``, so it does not depend on
which shards were drawn before or in which process: a killed run restarted with the same arguments keeps
its complete shards and gives exactly the files of an uninterrupted run. A directory holding samples of a
different model or different settings (sampler, seed, shard size, count) is refused unless ``overwrite``.

Synthetic transitions are independent, so ``store`` and ``minari`` hold one episode per transition
(observations ``[s, s']``; ``terminated`` = the generated terminal, ``truncated`` = not terminal): they
are per-episode formats, fine for thousands of transitions, slow for millions (use npz or d4rl there).
Terminals are thresholded by the model; a value outside {0, 1} or a non-finite value in a shard is an
error, never written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from synth.model import COLUMNS, SynthER, parse_sampler
from worldmodels.io import atomic_path, atomic_write_text

FORMATS = ("npz", "d4rl", "minari", "store")
METADATA = "metadata.json"


@dataclass
class GenerateConfig:
    """Settings of ``synth generate`` (shared by the command line and :func:`generate`)."""

    model: str = field(metadata={"help": "a saved SynthER directory"})
    num: int = field(metadata={"help": "transitions to generate"})
    out: str = field(metadata={"help": "output directory"})
    format: str = field(default="npz", metadata={"help": "npz | d4rl | minari | store"})
    seed: int = field(
        default=0, metadata={"help": "seed; shard i draws from a generator seeded by (seed, i)"}
    )
    shard_size: int = field(default=100_000, metadata={"help": "transitions per shard (the resume unit)"})
    batch_size: int = field(default=10_000, metadata={"help": "transitions per denoiser batch"})
    sampler: str | None = field(default=None, metadata={
        "help": "sampler fields replacing the model's default, e.g. 'steps=16,solver=heun,s_churn=0', "
                "or 'reference' (SynthER's 128-step stochastic Heun)"})  # fmt: skip
    bf16: bool = field(default=False, metadata={"help": "run the denoiser under bf16 autocast"})
    dataset_id: str = field(default="synth/synthetic-v0", metadata={"help": "Minari id for --format minari"})
    overwrite: bool = field(default=False, metadata={"help": "replace samples of another model/settings"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if self.num < 1:
            raise ValueError(f"--num {self.num} must be >= 1")
        if self.format not in FORMATS:
            raise ValueError(f"--format {self.format!r}; allowed values: {list(FORMATS)}")
        if self.shard_size < 1 or self.batch_size < 1:
            raise ValueError(
                f"--shard-size {self.shard_size} and --batch-size {self.batch_size} must be >= 1"
            )


def model_digest(model_dir: str | os.PathLike) -> str:
    """sha256 over a saved model's ``config.json`` and ``model.safetensors``: which model made the samples."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = Path(model_dir) / name
        if not path.is_file():
            raise ValueError(f"{path}: missing; --model must be a saved SynthER directory")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def shard_seed(seed: int, shard: int) -> int:
    """The seed of shard ``shard``'s generator: a function of ``(seed, shard)`` only."""
    return int(np.random.SeedSequence([seed, shard]).generate_state(1, np.uint64)[0] % (2**63))


def check_transitions(arrays: dict[str, np.ndarray], source: str) -> None:
    """``ValueError`` naming ``source`` and the key for a non-finite value or a terminal outside {0, 1}."""
    for key in COLUMNS:
        if not np.isfinite(arrays[key]).all():
            raise ValueError(f"{source}: generated {key!r} holds non-finite values; nothing was written")
    if not np.isin(arrays["terminals"], (0.0, 1.0)).all():
        raise ValueError(f"{source}: generated 'terminals' outside {{0, 1}}; nothing was written")


def _settings(cfg: GenerateConfig, model: SynthER, digest: str) -> dict[str, Any]:
    sampler = {
        k: (None if v == math.inf else v)
        for k, v in asdict(parse_sampler(cfg.sampler, model.sampler)).items()
    }
    return {
        "model": str(Path(cfg.model).resolve()), "model_sha256": digest, "sampler": sampler,
        "seed": cfg.seed, "num": cfg.num, "shard_size": cfg.shard_size, "bf16": cfg.bf16,
        "env_id": model.config["env_id"], "obs_dim": model.obs_dim, "action_dim": model.action_dim,
    }  # fmt: skip


def _identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What must match for a directory to be resumed (the model path may move; its digest may not)."""
    keys = ("model_sha256", "sampler", "seed", "num", "shard_size", "bf16")
    return {k: meta.get(k) for k in keys}


def _shard_path(out: Path, i: int) -> Path:
    return out / "shards" / f"shard_{i:06d}.npz"


def generate(cfg: GenerateConfig) -> dict[str, Any]:
    """Write (or finish) ``cfg.out``; returns the final metadata (see the module docstring)."""
    out = Path(cfg.out)
    digest = model_digest(cfg.model)
    model = SynthER.from_pretrained(cfg.model)
    settings = _settings(cfg, model, digest)
    meta_path = out / METADATA
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if _identity(old) != _identity(settings):
            if not cfg.overwrite:
                diff = sorted(k for k, v in _identity(settings).items() if old.get(k) != v)
                raise ValueError(
                    f"{out}: holds samples of another model or other settings (differs in {diff}); "
                    "pass --overwrite to replace them"
                )
            shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()) and not cfg.overwrite:
        raise ValueError(f"{out}: exists, is not empty and has no {METADATA}; pass --overwrite to replace it")
    elif out.exists() and cfg.overwrite:
        shutil.rmtree(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    sampler = parse_sampler(cfg.sampler, model.sampler)
    num_shards = -(-cfg.num // cfg.shard_size)
    done = [i for i in range(num_shards) if _shard_path(out, i).exists()]
    counts = {"transitions": 0, "terminals": 0}
    meta = {**settings, "format": cfg.format, "num_shards": num_shards, "complete": False}
    bar = tqdm(total=cfg.num, unit="tr", desc="synth generate", disable=not cfg.progress)
    for i in range(num_shards):
        n = min(cfg.shard_size, cfg.num - i * cfg.shard_size)
        path = _shard_path(out, i)
        if i not in done:
            g = torch.Generator().manual_seed(shard_seed(cfg.seed, i))
            arrays = model.sample(n, generator=g, sampler=sampler, batch_size=cfg.batch_size,
                                  autocast_bf16=cfg.bf16)  # fmt: skip
            check_transitions(arrays, f"{path}")
            with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        with np.load(path) as z:
            counts["transitions"] += len(z["actions"])
            counts["terminals"] += int(z["terminals"].sum())
        meta["counts"] = dict(counts, shards_done=i + 1)
        atomic_write_text(meta_path, json.dumps(meta, indent=1))
        bar.update(n)
    bar.close()
    _finalize(out, cfg, model)
    meta["complete"] = True
    atomic_write_text(meta_path, json.dumps(meta, indent=1))
    return meta


def read_shards(out: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every shard of an output directory, concatenated in shard order."""
    paths = sorted((Path(out) / "shards").glob("shard_*.npz"))
    if not paths:
        raise ValueError(f"{out}: no shards (not a synth generate output)")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in COLUMNS}
    for p in paths:
        with np.load(p) as z:
            for k in COLUMNS:
                parts[k].append(z[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def _finalize(out: Path, cfg: GenerateConfig, model: SynthER) -> None:
    data = read_shards(out)
    data["timeouts"] = np.zeros(len(data["actions"]), dtype=bool)
    if cfg.format == "npz":
        with atomic_path(out / "samples.npz", suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **data)
    elif cfg.format == "d4rl":
        _write_d4rl(out / "samples.hdf5", data, model, cfg)
    else:
        store = _write_store(out / "store", data, model)
        if cfg.format == "minari":
            from worldmodels.data.adapters import export_minari

            target = out / "minari" / cfg.dataset_id
            if target.exists():
                shutil.rmtree(target)
            export_minari(store, cfg.dataset_id, out / "minari")


def _write_d4rl(path: Path, data: dict[str, np.ndarray], model: SynthER, cfg: GenerateConfig) -> None:
    import h5py

    with atomic_path(path, suffix=".hdf5") as tmp, h5py.File(tmp, "w") as f:
        for key in (*COLUMNS, "timeouts"):
            x = data[key].astype(bool) if key in ("terminals", "timeouts") else data[key]
            f.create_dataset(key, data=x, chunks=True)
        f["metadata/env_id"] = model.config["env_id"] or ""
        f["metadata/generator"] = json.dumps({"model": str(Path(cfg.model).resolve()), "seed": cfg.seed})


def _write_store(root: Path, data: dict[str, np.ndarray], model: SynthER):
    """One-step episodes (see the module docstring); rebuilt from the shards if a previous run was killed
    while writing it."""
    from worldmodels.data.store import EpisodeStore

    if root.exists():
        shutil.rmtree(root)
    env_id = model.config["env_id"] or "synth/unknown-v0"
    store = EpisodeStore.create(root, env_id=env_id, behaviour_policy=f"synther:{model.config['dataset']}")
    n = len(data["actions"])
    for i in tqdm(range(n), desc="store", unit="ep", leave=False, disable=n < 10_000):
        term = bool(data["terminals"][i])
        store.append_episode({
            "observation": np.stack([data["observations"][i], data["next_observations"][i]]),
            "action": data["actions"][i : i + 1], "reward": data["rewards"][i : i + 1],
            "terminated": np.array([term]), "truncated": np.array([not term]),
        })  # fmt: skip
    return store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``synth generate``'s flags, one per :class:`GenerateConfig` field."""
    for f in GenerateConfig.__dataclass_fields__.values():
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            if f.name == "progress":
                parser.add_argument(
                    "--no-progress", dest="progress", action="store_false", help="hide the bar"
                )
            else:
                parser.add_argument(flag, dest=f.name, action="store_true", help=f.metadata["help"])
            continue
        typ = {"int": int, "str": str, "str | None": str}[f.type]
        kwargs: dict[str, Any] = {"required": True} if f.default is MISSING else {"default": f.default}
        parser.add_argument(flag, dest=f.name, type=typ, help=f.metadata["help"], **kwargs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="synth generate", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    meta = generate(GenerateConfig(**vars(args)))
    print(json.dumps({"out": args.out, "counts": meta["counts"], "format": meta["format"]}))
    return 0
