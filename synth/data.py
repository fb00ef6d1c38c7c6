"""Reading transition datasets for SynthER: one function, :func:`load_transitions`, for every source.

Sources (``path``):

* an :class:`~worldmodels.data.store.EpisodeStore` directory (e.g. ``worldmodels data build-d4rl``'s
  output): :func:`worldmodels.data.d4rl.qlearning_dataset` (timed-out last steps dropped, as D4RL does),
  with ``infos/qpos``/``infos/qvel`` when the store has them;
* a ``.npz`` file or a ``.hdf5``/``.h5`` file with D4RL's keys (``observations``, ``actions``, ``rewards``,
  ``next_observations``, ``terminals``);
* a ``synth generate`` output directory (its ``samples.npz``).

``subset`` keeps a random fraction of the transitions (seeded), for the "10% subset, upsampled" setting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from synth.model import COLUMNS


def load_transitions(
    path: str | os.PathLike, subset: float = 1.0, seed: int = 0, infos: bool = False
) -> dict[str, np.ndarray]:
    """D4RL-keyed arrays (``observations``, ``actions``, ``rewards``, ``next_observations``, ``terminals``,
    float32; ``rewards``/``terminals`` ``(N,)``) from ``path`` (see the module docstring); ``infos`` adds
    ``infos/qpos``/``infos/qvel`` (stores only). ``ValueError`` naming the path and the missing key."""
    p = Path(path)
    if not 0.0 < subset <= 1.0:
        raise ValueError(f"subset={subset} must be in (0, 1]")
    if p.is_dir() and (p / "manifest.json").exists():
        from worldmodels.data.d4rl import qlearning_dataset

        data = qlearning_dataset(p, infos=infos)
    elif p.is_dir() and (p / "samples.npz").exists():
        data = _read_npz(p / "samples.npz")
    elif p.is_file() and p.suffix == ".npz":
        data = _read_npz(p)
    elif p.is_file() and p.suffix in (".hdf5", ".h5"):
        import h5py

        with h5py.File(p, "r") as f:
            missing = [k for k in COLUMNS if k not in f]
            if missing:
                raise ValueError(f"{p}: key {missing[0]!r} is missing; D4RL files have {list(COLUMNS)}")
            data = {k: np.asarray(f[k]) for k in COLUMNS}
    elif not p.exists():
        raise ValueError(f"{p}: no such dataset (a store directory, a .npz/.hdf5 file or a synth output)")
    else:
        raise ValueError(f"{p}: not a dataset (expected an EpisodeStore directory with manifest.json, a "
                         f".npz or .hdf5 file with D4RL keys, or a synth generate output)")  # fmt: skip
    out = {
        k: np.asarray(v, dtype=np.float32) for k, v in data.items() if k in COLUMNS or k.startswith("infos/")
    }
    n = len(out["actions"])
    if subset < 1.0:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max(2, round(subset * n)), replace=False))
        out = {k: v[keep] for k, v in out.items()}
    return out


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in COLUMNS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: key {missing[0]!r} is missing; the file has {sorted(z.files)}")
        return {k: z[k] for k in z.files}


def dataset_env_id(path: str | os.PathLike) -> str | None:
    """The env id recorded with a dataset: a store's manifest, or a synth output's metadata; else ``None``."""
    p = Path(path)
    for name, key in (("manifest.json", "env_id"), ("metadata.json", "env_id")):
        f = p / name
        if p.is_dir() and f.exists():
            value: Any = json.loads(f.read_text()).get(key)
            return value if isinstance(value, str) else None
    return None
