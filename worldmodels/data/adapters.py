"""Convert an :class:`~worldmodels.data.store.EpisodeStore` to and from Minari datasets and D4RL HDF5 files.

Both directions stream episode by episode (at most ``chunk`` episodes in memory) and write atomically: a
Minari dataset is built under a temporary root and renamed into place (the directory then ``fsync``'d); a
D4RL file goes through :func:`worldmodels.io.atomic_path`.

Minari (0.5.4, HDF5 storage, no JPEG encoding so the round trip is lossless)
    Dict observations (``pixels`` + ``proprio``) become Minari dict observations; a plain vector
    ``observation`` stays an array. The simulator state (``state``, or ``qpos`` + ``qvel``) goes to
    ``infos`` (``T + 1`` rows like Minari's infos), episode seeds to Minari's per-episode ``seed``; a step
    key such as ``action_log_prob`` (``T`` rows) has no place in Minari's infos and is not exported. The env spec (id + our ``env_kwargs``) is
    recorded, so ``dataset.recover_environment()`` works once ``worldmodels.envs`` is importable; our
    env id, env kwargs and behaviour policy are also kept in the dataset metadata key ``worldmodels``
    (JSON), so envs that are not registered survive the round trip.

D4RL HDF5 (``N`` = total steps, episode after episode)
    ``observations`` / ``next_observations`` ``(N, O)``: the ``observation`` key if the store has one,
    else ``proprio`` (frame ``t`` and frame ``t + 1`` of each step); ``actions`` ``(N, A)``; ``rewards``,
    ``terminals`` (= terminated), ``timeouts`` (= truncated) ``(N,)``; ``infos/<key>`` ``(N, ...)`` frame
    ``t`` of every other frame key (``pixels``, ``state``, ...); ``infos/qpos`` + ``infos/qvel`` when the
    env is a MuJoCo env whose state is ``concatenate([qpos, qvel])`` (``nq + nv == state_dim``:
    PointMaze, Reacher), split at ``model.nq``, or the stored ``qpos``/``qvel`` keys themselves;
    ``infos/action_log_probs`` ``(N,)`` from ``action_log_prob`` (D4RL's name); ``metadata/*``: env id,
    env kwargs (JSON), the dataset card (``metadata/d4rl_card``, JSON) when there is one, behaviour
    policy, observation key, per-episode lengths and seeds, and ``metadata/final/<key>`` ``(E, ...)``
    the last frame of each episode for the keys in ``infos`` (D4RL has no row for it).
    :func:`import_d4rl` splits episodes at ``terminals | timeouts`` (or at ``metadata/episode_lengths``
    when present, so that episodes ending with neither flag survive).

d3rlpy (optional extra ``[d3rlpy]``)
    :func:`to_d3rlpy` builds a ``d3rlpy.dataset.MDPDataset(observations, actions, rewards, terminals,
    timeouts)`` from the flat arrays; episodes end where ``terminals | timeouts``, which every stored episode
    does at its last step. ``export --format d3rlpy`` writes it with ``MDPDataset.dump`` (HDF5).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worldmodels.data.store import FRAME_KEYS, EpisodeStore, build_atomically
from worldmodels.io import atomic_path, fsync_dir

MINARI_REQUIRED = ("observations", "actions", "rewards", "terminations", "truncations")
MINARI_INFO_KEYS = ("state", "qpos", "qvel")
#: step keys exported under ``infos/`` with D4RL's names
D4RL_STEP_INFOS = {"action_log_prob": "action_log_probs"}
D4RL_REQUIRED = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")


@contextlib.contextmanager
def _minari_root(root: str | os.PathLike | None) -> Iterator[None]:
    """Point minari at ``root`` (``MINARI_DATASETS_PATH``) for the duration of the block."""
    if root is None:
        yield
        return
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def _make_env(store: EpisodeStore):
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401  (registers our ids)

    try:
        return gym.make(store.env_id, **store.manifest["env_kwargs"])
    except gym.error.Error:
        return None


def _box_like(array: np.ndarray):
    import gymnasium as gym

    return gym.spaces.Box(-np.inf, np.inf, shape=array.shape[1:], dtype=array.dtype)


# ---------------------------------------------------------------------------------------------- Minari
def export_minari(store: EpisodeStore, dataset_id: str, root: str | os.PathLike, chunk: int = 32) -> Path:
    """Write ``store`` as the Minari dataset ``dataset_id`` under the Minari root ``root``.

    Args:
        store: the dataset to export.
        dataset_id: Minari id, ``namespace/name-vN`` (e.g. ``worldmodels/wall-v0``).
        root: Minari datasets root (what ``MINARI_DATASETS_PATH`` points at when loading).
        chunk: episodes held in memory at a time.

    Returns the dataset directory ``root/<dataset_id>``. Load it with ``minari.load_dataset(dataset_id)``
    and ``MINARI_DATASETS_PATH=root``.
    """
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    if len(store) == 0:
        raise ValueError(f"{store.root}: the dataset has no episodes to export")
    root = Path(root)
    target = root / dataset_id
    if target.exists():
        raise ValueError(f"{target}: a Minari dataset {dataset_id!r} already exists under root={root}")
    obs_keys = [k for k in ("pixels", "proprio") if k in store.keys]
    if not obs_keys and "observation" not in store.keys:
        raise ValueError(f"{store.root}: no observation key (pixels, proprio or observation) in {store.keys}")
    env = _make_env(store)

    def buffer(i: int) -> EpisodeBuffer:
        ep = store.episode(i)
        obs = {k: np.asarray(ep[k]) for k in obs_keys} if obs_keys else np.asarray(ep["observation"])
        infos = {k: np.asarray(ep[k]) for k in MINARI_INFO_KEYS if k in ep}
        return EpisodeBuffer(
            id=i, seed=store.manifest["episodes"][i]["seed"], observations=obs, actions=np.asarray(ep["action"]),
            rewards=list(np.asarray(ep["reward"])), terminations=list(np.asarray(ep["terminated"])),
            truncations=list(np.asarray(ep["truncated"])), infos=infos,
        )  # fmt: skip

    if env is not None:
        spaces = {"observation_space": env.observation_space, "action_space": env.action_space}
    else:
        first = store.episode(0)
        import gymnasium as gym

        obs_space = (
            gym.spaces.Dict({k: _box_like(first[k]) for k in obs_keys})
            if obs_keys
            else _box_like(first["observation"])
        )
        spaces = {"observation_space": obs_space, "action_space": _box_like(first["action"])}
    root.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-minari-"))
    try:
        with _minari_root(tmp_root), warnings.catch_warnings():
            # minari recommends optional provenance fields (author, code_permalink, ...) we do not have
            warnings.filterwarnings("ignore", message=r"`\w+` is set to None", category=UserWarning)
            dataset = None
            for lo in range(0, len(store), chunk):
                buffers = [buffer(i) for i in range(lo, min(lo + chunk, len(store)))]
                if dataset is None:
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id, buffers, env=env.spec if env is not None else None, eval_env=env.spec if env is not None else None,
                        algorithm_name=store.manifest["behaviour_policy"], data_format="hdf5",
                        jpeg_encoding=False, description=f"worldmodels EpisodeStore export of {store.root}",
                        **spaces,
                    )  # fmt: skip
                else:
                    dataset.update_dataset_from_buffer(buffers)
            ours = {k: store.manifest[k] for k in ("env_id", "env_kwargs", "behaviour_policy")}
            dataset.storage.update_metadata({"worldmodels": json.dumps(ours)})
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_root / dataset_id, target)
        namespace_meta = (tmp_root / dataset_id).parent / "namespace_metadata.json"
        if namespace_meta.exists() and not (target.parent / namespace_meta.name).exists():
            os.replace(namespace_meta, target.parent / namespace_meta.name)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
        if env is not None:
            env.close()
    return target


def _check_minari_file(path: Path, dataset) -> None:
    """Raise a one-line ``ValueError`` naming ``path`` and the key if an episode lacks a required key."""
    import h5py

    if not path.exists():
        raise ValueError(f"{path}: missing (Minari dataset {dataset.id!r} has no HDF5 data file)")
    with h5py.File(path, "r") as f:
        for name in f:
            for key in MINARI_REQUIRED:
                if key not in f[name]:
                    raise ValueError(f"{path}: key '{name}/{key}' is missing")


def import_minari(
    dataset_id: str, out: str | os.PathLike, root: str | os.PathLike | None = None
) -> EpisodeStore:
    """Read the Minari dataset ``dataset_id`` (from ``root``, default ``MINARI_DATASETS_PATH``) into a new
    store at ``out``. Dict observations become frame keys by name; array observations ``observation``;
    ``infos["state"]``/``["qpos"]``/``["qvel"]`` (if present, ``T + 1`` rows) the frame keys of those names."""
    import minari

    with _minari_root(root):
        try:
            dataset = minari.load_dataset(dataset_id)
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"Minari dataset {dataset_id!r} not found under root={root}: {e}") from None
        data_path = Path(dataset.storage.data_path)
        if dataset.storage.metadata.get("data_format", "hdf5") == "hdf5":
            _check_minari_file(data_path / "main_data.hdf5", dataset)
        spec = dataset.env_spec
        ours = json.loads(dataset.storage.metadata.get("worldmodels", "{}"))
        with build_atomically(out) as tmp:  # a failed or interrupted import leaves no partial dataset
            store = EpisodeStore.create(
                tmp, env_id=ours.get("env_id", spec.id if spec is not None else f"minari:{dataset_id}"),
                env_kwargs=ours.get("env_kwargs", dict(spec.kwargs) if spec is not None else {}),
                behaviour_policy=ours.get("behaviour_policy", f"minari:{dataset_id}"),
                observation_space=_space_json(dataset.observation_space),
                action_space=_space_json(dataset.action_space), exist_ok=False,
            )  # fmt: skip
            seeds = [m.get("seed") for m in dataset.storage.get_episode_metadata(dataset.episode_indices)]
            for i, (ep, seed) in enumerate(zip(dataset.iterate_episodes(), seeds, strict=True)):
                obs = ep.observations
                arrays = dict(obs) if isinstance(obs, dict) else {"observation": obs}
                for k in MINARI_INFO_KEYS:
                    if k in ep.infos:
                        arrays[k] = ep.infos[k]
                arrays.update(
                    action=ep.actions, reward=np.asarray(ep.rewards, dtype=np.float32),
                    terminated=np.asarray(ep.terminations, dtype=bool), truncated=np.asarray(ep.truncations, dtype=bool),
                )  # fmt: skip
                try:
                    store.append_episode(arrays, seed=seed)
                except ValueError as err:
                    reason = str(err).removeprefix(f"{store.root}: ")
                    raise ValueError(
                        f"Minari dataset {dataset_id!r} ({data_path}): episode {i}: {reason}"
                    ) from None
            store.stats()
            store.close()
    return EpisodeStore.open(out, verify=False)


def _space_json(space) -> dict[str, Any]:
    from worldmodels.data.collect import _space_json as to_json

    return to_json(space)


# ------------------------------------------------------------------------------------------------ D4RL
def _mujoco_split(store: EpisodeStore) -> int | None:
    """``nq`` when the env's state is ``concatenate([qpos, qvel])`` of a MuJoCo model, else None."""
    if "state" not in store.keys:
        return None
    env = _make_env(store)
    if env is None:
        return None
    try:
        model = getattr(env.unwrapped, "model", None)
        nq, nv = getattr(model, "nq", None), getattr(model, "nv", None)
        state_dim = store.manifest["episodes"][0]["files"]["state"]["shape"][1]
        return int(nq) if nq is not None and nv is not None and nq + nv == state_dim else None
    finally:
        env.close()


def export_d4rl(store: EpisodeStore, path: str | os.PathLike) -> Path:
    """Write ``store`` as one D4RL-style HDF5 file at ``path`` (layout in the module docstring)."""
    import h5py

    if len(store) == 0:
        raise ValueError(f"{store.root}: the dataset has no episodes to export")
    obs_key = next((k for k in ("observation", "proprio") if k in store.keys), None)
    if obs_key is None:
        raise ValueError(
            f"{store.root}: D4RL needs a vector key 'observation' or 'proprio'; keys: {store.keys}"
        )
    info_keys = [k for k in FRAME_KEYS if k in store.keys and k != obs_key]
    step_infos = {k: v for k, v in D4RL_STEP_INFOS.items() if k in store.keys}
    nq = None if "qpos" in store.keys else _mujoco_split(store)
    path = Path(path)
    first = store.episode(0)

    def column(f, name: str, like: np.ndarray) -> h5py.Dataset:
        return f.create_dataset(name, shape=(0, *like.shape[1:]), maxshape=(None, *like.shape[1:]),
                                dtype=like.dtype, chunks=(min(1024, max(1, 2**20 // max(1, like[0].nbytes))), *like.shape[1:]))  # fmt: skip

    def append(ds: h5py.Dataset, rows: np.ndarray) -> None:
        n = ds.shape[0]
        ds.resize(n + len(rows), axis=0)
        ds[n:] = rows

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        cols = {
            "observations": column(f, "observations", first[obs_key]),
            "next_observations": column(f, "next_observations", first[obs_key]),
            "actions": column(f, "actions", first["action"]),
            "rewards": column(f, "rewards", first["reward"]),
            "terminals": column(f, "terminals", first["terminated"]),
            "timeouts": column(f, "timeouts", first["truncated"]),
        }
        for k in info_keys:
            cols[f"infos/{k}"] = column(f, f"infos/{k}", first[k])
            cols[f"metadata/final/{k}"] = column(f, f"metadata/final/{k}", first[k])
        for k, name in step_infos.items():
            cols[f"infos/{name}"] = column(f, f"infos/{name}", first[k])
        if nq is not None:
            cols["infos/qpos"] = column(f, "infos/qpos", first["state"][:, :nq])
            cols["infos/qvel"] = column(f, "infos/qvel", first["state"][:, nq:])
        for i in range(len(store)):
            ep = store.episode(i)
            obs = np.asarray(ep[obs_key])
            append(cols["observations"], obs[:-1])
            append(cols["next_observations"], obs[1:])
            append(cols["actions"], np.asarray(ep["action"]))
            append(cols["rewards"], np.asarray(ep["reward"]))
            append(cols["terminals"], np.asarray(ep["terminated"]))
            append(cols["timeouts"], np.asarray(ep["truncated"]))
            for k in info_keys:
                x = np.asarray(ep[k])
                append(cols[f"infos/{k}"], x[:-1])
                append(cols[f"metadata/final/{k}"], x[-1:])
            for k, name in step_infos.items():
                append(cols[f"infos/{name}"], np.asarray(ep[k]))
            if nq is not None:
                state = np.asarray(ep["state"][:-1])
                append(cols["infos/qpos"], state[:, :nq])
                append(cols["infos/qvel"], state[:, nq:])
        m = store.manifest
        f["metadata/env_id"] = m["env_id"]
        f["metadata/env_kwargs"] = json.dumps(m["env_kwargs"])
        f["metadata/behaviour_policy"] = m["behaviour_policy"]
        f["metadata/obs_key"] = obs_key
        f["metadata/episode_lengths"] = store.episode_lengths
        f["metadata/episode_seeds"] = np.asarray(
            [-1 if e["seed"] is None else e["seed"] for e in m["episodes"]]
        )
        f["metadata/observation_space"] = json.dumps(m["observation_space"])
        f["metadata/action_space"] = json.dumps(m["action_space"])
        if nq is not None:
            f["metadata/qpos_dim"] = nq
        card = store.root / "d4rl.json"
        if card.exists():
            f["metadata/d4rl_card"] = card.read_text()
    return path


def _open_hdf5(path: Path):
    """``h5py.File(path, "r")`` with a one-line error naming ``path`` (missing, truncated, not HDF5)."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such D4RL file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None


def _d4rl_info_keys(f, path: Path, n: int, drop_infos: set[str]) -> tuple[list[str], dict[str, str]]:
    """The frame keys (``infos/<k>`` + ``metadata/final/<k>``) and step keys (``infos/<D4RL name>``) to
    import; anything else under ``infos/`` or ``metadata/final/`` is an error unless named in
    ``drop_infos``, so no column is dropped silently."""
    infos = set(f["infos"]) if "infos" in f else set()
    finals = set(f["metadata/final"]) if "metadata/final" in f else set()
    unknown = sorted(drop_infos - infos - finals)
    if unknown:
        raise ValueError(f"{path}: drop_infos {unknown} are not in the file (infos: {sorted(infos)})")
    frame = [k for k in FRAME_KEYS if k in infos and k in finals and k not in drop_infos]
    step = {k: name for k, name in D4RL_STEP_INFOS.items() if name in infos and name not in drop_infos}
    if "metadata/qpos_dim" in f and "state" in frame:  # export_d4rl's split of `state`: nothing is lost
        drop_infos = drop_infos | ({"qpos", "qvel"} - finals)
    hint = "; pass drop_infos=[{k!r}] (--drop-info {k}) to import without it"
    for k in sorted((infos | finals) - drop_infos - set(frame) - set(step.values())):
        if k in infos and k in finals:
            why = f"'infos/{k}' is not a frame key {FRAME_KEYS}"
        elif k in finals:
            why = f"'metadata/final/{k}' has no 'infos/{k}' (the frames of each step)"
        elif k in FRAME_KEYS:
            why = f"'infos/{k}' has no 'metadata/final/{k}' (the last frame of each episode)"
        else:
            why = f"'infos/{k}' is not a key this importer knows ({FRAME_KEYS} or {tuple(D4RL_STEP_INFOS.values())})"
        raise ValueError(f"{path}: {why}{hint.format(k=k)}")
    for k in [*(f"infos/{k}" for k in frame), *(f"infos/{name}" for name in step.values())]:
        if len(f[k]) != n:
            raise ValueError(f"{path}: key {k!r} has {len(f[k])} rows, 'actions' has {n}")
    return frame, step


def import_d4rl(
    path: str | os.PathLike, out: str | os.PathLike, drop_infos: Sequence[str] = ()
) -> EpisodeStore:
    """Read a D4RL-style HDF5 file into a new store at ``out``.

    Episodes end at ``terminals | timeouts`` (or follow ``metadata/episode_lengths`` when the file has
    it); trailing steps after the last flag form a final episode. ``observations`` (+ the last
    ``next_observations`` row of each episode) become the frame key named by ``metadata/obs_key``
    (default ``observation``); ``infos/<key>`` with a matching ``metadata/final/<key>`` become frame keys,
    ``infos/action_log_probs`` the step key ``action_log_prob``. Any other column under ``infos/`` or
    ``metadata/final/`` (e.g. ``infos/pixels`` without its final frames) is an error unless listed in
    ``drop_infos``: nothing is dropped silently.

    The import is atomic (:func:`~worldmodels.data.store.build_atomically`): the store is built in a
    temporary directory and renamed to ``out`` at the end, so a bad episode (NaN, wrong shape; the error
    names the file and the episode) or an interruption leaves no partial dataset and a retry starts clean.
    """
    path = Path(path)
    with _open_hdf5(path) as f:
        for key in D4RL_REQUIRED:
            if key not in f:
                raise ValueError(f"{path}: key {key!r} is missing")
        n = len(f["actions"])
        for key in D4RL_REQUIRED:
            if len(f[key]) != n:
                raise ValueError(f"{path}: key {key!r} has {len(f[key])} rows, 'actions' has {n}")

        def meta(name: str, default: Any) -> Any:
            if f"metadata/{name}" not in f:
                return default
            v = f[f"metadata/{name}"][()]
            return v.decode() if isinstance(v, bytes) else v

        if "metadata/episode_lengths" in f:
            lengths = np.asarray(f["metadata/episode_lengths"], dtype=np.int64)
            if lengths.sum() != n:
                raise ValueError(
                    f"{path}: key 'metadata/episode_lengths' sums to {lengths.sum()}, expected {n}"
                )
        else:
            done = np.asarray(f["terminals"], dtype=bool) | np.asarray(f["timeouts"], dtype=bool)
            ends = np.flatnonzero(done) + 1
            if not len(ends) or ends[-1] != n:
                ends = np.append(ends, n)
            lengths = np.diff(np.concatenate([[0], ends]))
        seeds = np.asarray(f["metadata/episode_seeds"]) if "metadata/episode_seeds" in f else None
        obs_key = meta("obs_key", "observation")
        info_keys, step_infos = _d4rl_info_keys(f, path, n, set(drop_infos))
        for k in info_keys:
            if len(f[f"metadata/final/{k}"]) != len(lengths):
                raise ValueError(
                    f"{path}: key 'metadata/final/{k}' has {len(f[f'metadata/final/{k}'])} rows, the file has "
                    f"{len(lengths)} episodes"
                )
        with build_atomically(out) as tmp:
            store = EpisodeStore.create(
                tmp, env_id=meta("env_id", f"d4rl:{path.name}"), env_kwargs=json.loads(meta("env_kwargs", "{}")),
                behaviour_policy=meta("behaviour_policy", f"d4rl:{path.name}"),
                observation_space=json.loads(meta("observation_space", "{}")),
                action_space=json.loads(meta("action_space", "{}")), exist_ok=False,
            )  # fmt: skip
            lo = 0
            for i, length in enumerate(lengths):
                hi = lo + int(length)
                obs = f["observations"][lo:hi]
                arrays = {
                    obs_key: np.concatenate([obs, f["next_observations"][hi - 1 : hi]]),
                    "action": f["actions"][lo:hi],
                    "reward": np.asarray(f["rewards"][lo:hi], dtype=np.float32),
                    "terminated": np.asarray(f["terminals"][lo:hi], dtype=bool),
                    "truncated": np.asarray(f["timeouts"][lo:hi], dtype=bool),
                }
                for k in info_keys:
                    arrays[k] = np.concatenate([f[f"infos/{k}"][lo:hi], f[f"metadata/final/{k}"][i : i + 1]])
                for k, name in step_infos.items():
                    arrays[k] = np.asarray(f[f"infos/{name}"][lo:hi])
                seed = None if seeds is None or seeds[i] < 0 else int(seeds[i])
                try:
                    store.append_episode(arrays, seed=seed)
                except ValueError as err:
                    reason = str(err).removeprefix(f"{store.root}: ")
                    raise ValueError(f"{path}: episode {i} (rows {lo}..{hi - 1}): {reason}") from None
                lo = hi
            store.stats()
            store.close()
    return EpisodeStore.open(out, verify=False)


# ---------------------------------------------------------------------------------------------- d3rlpy
def to_d3rlpy(store: EpisodeStore | str | os.PathLike):
    """The store as a ``d3rlpy.dataset.MDPDataset`` (observations float32 ``(N, O)``, actions ``(N, A)``,
    rewards ``(N, 1)``, terminals and timeouts ``(N,)``, every step of every episode). Needs the optional
    extra ``[d3rlpy]``: d3rlpy pins an old gymnasium, so install it with ``pip install --no-deps d3rlpy``
    plus its small dependencies (see docs/d4rl_datasets.md)."""
    try:
        import d3rlpy
    except ImportError as e:
        raise ImportError(
            f"to_d3rlpy needs d3rlpy (optional extra [d3rlpy]; pip install --no-deps d3rlpy): {e}"
        ) from None
    from worldmodels.data.d4rl import qlearning_dataset

    flat = qlearning_dataset(store, drop_timeouts=False)
    return d3rlpy.dataset.MDPDataset(
        observations=flat["observations"], actions=flat["actions"], rewards=flat["rewards"][:, None],
        terminals=flat["terminals"].astype(np.float32), timeouts=flat["timeouts"].astype(np.float32),
    )  # fmt: skip


def export_d3rlpy(store: EpisodeStore, path: str | os.PathLike) -> Path:
    """Write :func:`to_d3rlpy`'s dataset with ``MDPDataset.dump`` (HDF5) to ``path``, atomically."""
    dataset = to_d3rlpy(store)
    with atomic_path(path, suffix=".h5") as tmp:
        dataset.dump(str(tmp))
    return Path(path)
