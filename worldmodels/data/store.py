"""The episode store: one canonical on-disk format for offline trajectories.

Layout::

    <root>/manifest.json                  env id + kwargs, spaces, behaviour policy, committed counts
                                          (small; rewritten atomically: the commit point of an append)
    <root>/episodes.jsonl                 one line per episode: seed, length, return, and each file's
                                          shape/dtype/size/CRC32 (append-only; lines past the manifest's
                                          ``num_episodes`` belong to an interrupted append and are ignored)
    <root>/stats.json                     normalisation statistics (computed once, cached by episode count)
    <root>/episodes/ep_000123/<key>.npy   one array per key per episode, opened memory-mapped
    <root>/derived/<name>/ep_000123.npy   per-frame arrays computed from the data (e.g. a feature cache)

Per-episode keys (``T`` steps): frame keys with ``T + 1`` rows (``pixels`` uint8 ``(T+1, H, W, 3)``,
``proprio`` float32 ``(T+1, P)``, ``state`` float64 ``(T+1, S)``, ``observation`` ``(T+1, O)``, and for
state-based MuJoCo data the simulator state ``qpos`` float64 ``(T+1, nq)`` + ``qvel`` float64
``(T+1, nv)``: restoring row ``t`` and stepping ``action[t]`` reproduces frame ``t + 1``) and step keys with
``T`` rows (``action`` float32 ``(T, A)``, ``reward`` float32 ``(T,)``, ``terminated`` and ``truncated``
bool ``(T,)``, kept distinct; any other key, e.g. ``action_log_prob`` ``(T,)``, is a step key too).

Appending is atomic and O(1) in the dataset size: an episode is written into a temporary directory, renamed
into place (the directory then fsync'd), its line appended to ``episodes.jsonl`` (fsync'd), and only then
counted in the manifest (an atomic file write, :mod:`worldmodels.io`). In memory, ``store.manifest["episodes"]`` lists the committed entries. Stores written
in format 1 (episode entries inside ``manifest.json``) are read and migrated on their next append. An
interrupted writer leaves at most an unlisted directory, which the next writer removes (on
:meth:`EpisodeStore.create` and before each append); a reader never sees a half-written episode because it
only looks at episodes the manifest lists.

One writer at a time: a writer (:meth:`EpisodeStore.create`, or the first append/truncate of an opened
store) holds an exclusive ``flock`` on ``<root>/.writer.lock``, which also records its pid, host and start
time; a second writer fails at once with a one-line error naming the holder. The OS releases the lock when
its process dies however it dies, so the lock of a killed writer is simply taken over by the next one.
Within one process the lock is shared by every store object of the same root and released when the last
of them is closed (:meth:`EpisodeStore.close`) or garbage collected. Readers take no lock.

Nothing outside the layout is ever deleted: :meth:`EpisodeStore.create` refuses an existing directory
that is neither a dataset nor empty, and the cleanup of an interrupted append removes only names this
module writes (``ep_NNNNNN`` beyond the committed count and ``.tmp-<hex>``).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import socket
import uuid
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from worldmodels.errors import UserError
from worldmodels.io import atomic_path, atomic_write_text, fsync_dir

FORMAT = "worldmodels-episodes/2"
OLD_FORMATS = ("worldmodels-episodes/1",)
FRAME_KEYS = ("pixels", "proprio", "state", "observation", "qpos", "qvel")
STEP_KEYS = ("action", "reward", "terminated", "truncated")
STATS_KEYS = ("proprio", "action", "observation", "reward", "state")
REQUIRED_KEYS = ("action", "reward", "terminated", "truncated")
STD_FLOOR = 1e-6
LOCK_NAME = ".writer.lock"
#: what an interrupted :meth:`EpisodeStore.create` can leave before its manifest is written
_SKELETON = {LOCK_NAME, "episodes", "episodes.jsonl"}
#: names in ``episodes/`` that this module writes (everything else there is left alone)
_OWN_EPISODE_DIR = re.compile(r"ep_\d{6}|\.tmp-[0-9a-f]+")


def _save_npy(path: Path, array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    data = path.read_bytes()
    return {
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "size": len(data),
        "crc32": zlib.crc32(data),
    }


def _read_index(path: Path, count: int, nbytes: int) -> list[dict[str, Any]]:
    """The ``count`` committed entries (the first ``nbytes`` bytes) of ``episodes.jsonl``; later bytes are
    from an interrupted append."""
    if not path.exists():
        raise ValueError(f"{path}: missing (the manifest lists {count} episodes)")
    with open(path, "rb") as f:
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"{path}: has {len(data)} bytes, the manifest's index_bytes is {nbytes}")
    lines = data.splitlines(keepends=True)
    if len(lines) != count or (lines and not lines[-1].endswith(b"\n")):
        raise ValueError(
            f"{path}: has {len(lines)} entries in its committed bytes, the manifest lists {count}"
        )
    entries = []
    for i, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {i + 1} is corrupt ({e})") from None
        if not isinstance(entry, dict) or "files" not in entry or "length" not in entry:
            raise ValueError(f"{path}: line {i + 1} is missing key 'files' or 'length'")
        entries.append(entry)
    return entries


def _ep_name(episode: int) -> str:
    return f"ep_{episode:06d}"


# ---------------------------------------------------------------------------------------- writer lock
#: realpath of a root -> [fd holding the flock, number of store objects of this process sharing it]
_HELD_LOCKS: dict[str, list[int]] = {}


def _lock_holder(fd: int) -> str:
    """The holder recorded in a lock file, as ``pid P on host H since T`` (or ``unknown``)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
        return f"pid {info['pid']} on host {info['host']} since {info['since']}"
    except (OSError, ValueError, TypeError, KeyError):
        return "a writer that did not record itself"


def acquire_writer_lock(root: str | os.PathLike) -> str:
    """Take the writer lock of dataset directory ``root`` (which must exist) for this process and return
    its key for :func:`release_writer_lock`. Re-entrant within a process; raises :class:`UserError` naming
    the holder when another process writes here."""
    root = Path(root)
    key = os.path.realpath(root)
    held = _HELD_LOCKS.get(key)
    if held is not None:
        held[1] += 1
        return key
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise UserError(
            f"{root}: another writer is using this dataset ({holder}); wait for it to finish or stop it "
            f"(the lock {root / LOCK_NAME} is released when that process ends)"
        ) from None
    # a non-empty record here is the lock of a writer that died without releasing it: taken over
    since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, record, 0)
    _HELD_LOCKS[key] = [fd, 1]
    return key


def release_writer_lock(key: str) -> None:
    """Drop one reference to a lock taken by :func:`acquire_writer_lock`; the last one releases it."""
    held = _HELD_LOCKS.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] <= 0:
        del _HELD_LOCKS[key]
        try:
            os.ftruncate(held[0], 0)  # released cleanly: no holder recorded
        finally:
            os.close(held[0])  # releases the flock


def _check_creatable(root: Path) -> None:
    """Refuse a path that is a file, or a directory that is neither empty nor what an interrupted
    :meth:`EpisodeStore.create` leaves, so that a dataset is never written into (and nothing deleted in)
    a user's directory."""
    if not root.exists():
        return
    if not root.is_dir():
        raise UserError(f"{root}: exists and is not a directory")
    foreign = [p.name for p in root.iterdir() if p.name not in _SKELETON]
    if (root / "episodes").is_dir():
        foreign += [f"episodes/{p.name}" for p in (root / "episodes").iterdir()]
    foreign.sort()
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(
            f"{root}: exists and is not a dataset (no manifest.json; it holds {shown}); give a new or empty "
            "directory"
        )


@contextlib.contextmanager
def build_atomically(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``out`` to build a whole dataset in (an import); on a clean
    exit it is renamed to ``out`` (the parent then fsync'd), on an exception removed. ``out`` must not exist
    or be an empty directory, so a failed or interrupted build leaves ``out`` as it was and a retry starts
    clean. Temporary directories of builds killed earlier (``.<name>.tmp-build-*`` whose writer lock is free)
    are removed first. Close the store built inside before the block ends."""
    out = Path(out)
    if (out / "manifest.json").exists():
        raise UserError(f"{out}: a dataset already exists here; remove it or choose another output")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "is not a directory" if not out.is_dir() else "is a non-empty directory that is not a dataset"
        raise UserError(f"{out}: exists and {what}; give a new or empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.tmp-build-"
    for stale in out.parent.glob(f"{prefix}*"):
        if os.path.realpath(stale) in _HELD_LOCKS:
            continue  # a build of this process
        try:
            key = acquire_writer_lock(stale)
        except (UserError, OSError):
            continue  # a build in progress in another process
        release_writer_lock(key)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f"{prefix}{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, out)  # replaces an empty directory
        except OSError as err:
            raise UserError(f"{out}: something was written here during the build ({err.strerror})") from None
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class EpisodeStore:
    """A directory of episodes with memory-mapped random access.

    Use :meth:`create` to start (or resume) a dataset and :meth:`open` to read one.
    """

    def __init__(self, root: str | os.PathLike, manifest: dict[str, Any], max_open: int = 256):
        self.root = Path(root)
        self.manifest = manifest
        self._maps: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._max_open = max_open
        self._cleaned = False
        self._lock: weakref.finalize | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        root: str | os.PathLike,
        *,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        behaviour_policy: str = "unknown",
        observation_space: dict[str, Any] | None = None,
        action_space: dict[str, Any] | None = None,
        exist_ok: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> EpisodeStore:
        """Create a store at ``root``, or reopen it when it exists with the same env and policy.

        Args:
            root: dataset directory.
            env_id: Gymnasium id of the environment the data comes from.
            env_kwargs: keyword arguments the env was made with.
            behaviour_policy: name of the policy that acted (``random``, ``noisy-expert``, a path, ...).
            observation_space / action_space: JSON descriptions of the spaces.
            exist_ok: reopen an existing store (resume); otherwise an existing store is an error.
            extra: more JSON metadata stored in the manifest.

        Reopening checks that ``env_id``, ``behaviour_policy``, ``env_kwargs`` and every ``extra`` key match
        the stored ones (a resumed collection must not mix settings); a mismatch names the key.
        """
        root = Path(root)
        if (root / "manifest.json").exists() and not exist_ok:
            raise UserError(f"{root}: a dataset already exists here (exist_ok=False)")
        if not (root / "manifest.json").exists():
            _check_creatable(root)
        root.mkdir(parents=True, exist_ok=True)
        key = acquire_writer_lock(root)
        try:
            store = cls._create_locked(root, env_id, env_kwargs, behaviour_policy, observation_space,
                                       action_space, exist_ok, extra)  # fmt: skip
        except BaseException:
            release_writer_lock(key)
            raise
        store._lock = weakref.finalize(store, release_writer_lock, key)
        return store

    @classmethod
    def _create_locked(
        cls,
        root: Path,
        env_id: str,
        env_kwargs: dict[str, Any] | None,
        behaviour_policy: str,
        observation_space: dict[str, Any] | None,
        action_space: dict[str, Any] | None,
        exist_ok: bool,
        extra: dict[str, Any] | None,
    ) -> EpisodeStore:
        if (root / "manifest.json").exists():
            if not exist_ok:
                raise UserError(f"{root}: a dataset already exists here (exist_ok=False)")
            store = cls.open(root, verify=True)
            store._cleanup_uncommitted()
            have = store.manifest | store.manifest["extra"]
            wants = {
                "env_id": env_id,
                "behaviour_policy": behaviour_policy,
                "env_kwargs": dict(env_kwargs or {}),
            }
            for key, want in (wants | dict(extra or {})).items():
                if have.get(key) != want:
                    raise ValueError(
                        f"{root}/manifest.json: key {key!r} is {have.get(key)!r}, this run asks for {want!r}"
                    )
            return store
        _check_creatable(root)  # again, now that we hold the lock
        (root / "episodes").mkdir(exist_ok=True)
        manifest = {
            "format": FORMAT,
            "env_id": env_id,
            "env_kwargs": dict(env_kwargs or {}),
            "behaviour_policy": behaviour_policy,
            "observation_space": observation_space or {},
            "action_space": action_space or {},
            "extra": dict(extra or {}),
            "num_episodes": 0,
            "num_steps": 0,
            "episodes": [],
        }
        store = cls(root, manifest)
        store._write_index()
        store._write_manifest()
        return store

    @classmethod
    def open(cls, root: str | os.PathLike, *, verify: bool | str = True) -> EpisodeStore:
        """Open a store. ``verify=True`` checks every file's presence, size, shape and dtype and that float
        arrays are finite; ``verify="full"`` also checks CRC32 checksums. Errors name file and key."""
        root = Path(root)
        path = root / "manifest.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no dataset here (missing manifest.json)")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: corrupt manifest ({e})") from None
        for key in ("format", "env_id", "num_episodes", "num_steps"):
            if key not in manifest:
                raise ValueError(f"{path}: missing key {key!r}")
        if manifest["format"] in OLD_FORMATS:
            if "episodes" not in manifest:
                raise ValueError(f"{path}: missing key 'episodes'")
        elif manifest["format"] == FORMAT:
            if "index_bytes" not in manifest:
                raise ValueError(f"{path}: missing key 'index_bytes'")
            manifest["episodes"] = _read_index(
                root / "episodes.jsonl", int(manifest["num_episodes"]), int(manifest["index_bytes"])
            )
        else:
            raise ValueError(f"{path}: key 'format' is {manifest['format']!r}, expected {FORMAT!r}")
        store = cls(root, manifest)
        if verify:
            store.verify(full=verify == "full")
        return store

    def _cleanup_uncommitted(self) -> None:
        """Remove episode directories the manifest does not list (left by an interrupted writer). Only
        writers call this (:meth:`create` when resuming, :meth:`append_episode`): a reader never deletes."""
        if self._cleaned:  # this writer already cleaned up; since then only it has written here
            return
        listed = {_ep_name(i) for i in range(len(self))}
        for d in (self.root / "episodes").iterdir():
            if d.name not in listed and _OWN_EPISODE_DIR.fullmatch(d.name):
                shutil.rmtree(d, ignore_errors=True)
        self._cleaned = True

    def _ensure_writer(self) -> None:
        """Take the writer lock (see the module docstring) before this store object's first write."""
        if self._lock is None or not self._lock.alive:
            self._lock = weakref.finalize(self, release_writer_lock, acquire_writer_lock(self.root))

    def close(self) -> None:
        """Release this object's share of the writer lock (a later write takes it again). Reading goes on."""
        if self._lock is not None:
            self._lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. to DataLoader workers) without the writer lock or open memory maps: a copy in
        another process is a reader until it writes, and then takes the lock itself."""
        state = self.__dict__.copy()
        state["_lock"], state["_maps"] = None, OrderedDict()
        return state

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ integrity
    def verify(self, full: bool = False) -> None:
        """Check every listed episode (see :meth:`open`); raises ``ValueError`` naming file and key."""
        first: dict[str, dict[str, Any]] = {}
        for i, ep in enumerate(self.manifest["episodes"]):
            for key, info in ep["files"].items():
                path = self._path(i, key)
                if not path.exists():
                    raise ValueError(f"{path}: key {key!r} is missing")
                if path.stat().st_size != info["size"]:
                    raise ValueError(
                        f"{path}: key {key!r} has {path.stat().st_size} bytes, manifest says {info['size']}"
                    )
                if full and zlib.crc32(path.read_bytes()) != info["crc32"]:
                    raise ValueError(f"{path}: key {key!r} fails its CRC32 checksum")
                try:
                    arr = np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError as e:
                    raise ValueError(f"{path}: key {key!r} is not a readable .npy ({e})") from None
                if list(arr.shape) != info["shape"] or arr.dtype.str != info["dtype"]:
                    raise ValueError(
                        f"{path}: key {key!r} has shape {arr.shape} {arr.dtype}, "
                        f"manifest says {tuple(info['shape'])} {info['dtype']}"
                    )
                if key not in first:
                    first[key] = info
                elif info["shape"][1:] != first[key]["shape"][1:] or info["dtype"] != first[key]["dtype"]:
                    raise ValueError(
                        f"{path}: key {key!r} has per-row shape {info['shape'][1:]} {info['dtype']}, "
                        f"episode 0 has {first[key]['shape'][1:]} {first[key]['dtype']}"
                    )
                if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    raise ValueError(f"{path}: key {key!r} has NaN or inf")

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.manifest["episodes"])

    @property
    def episode_lengths(self) -> np.ndarray:
        """``(num_episodes,)`` int64: steps (actions) per episode."""
        return np.asarray([ep["length"] for ep in self.manifest["episodes"]], dtype=np.int64)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.manifest["episodes"][0]["files"]) if len(self) else ()

    @property
    def env_id(self) -> str:
        return self.manifest["env_id"]

    def _path(self, episode: int, key: str) -> Path:
        return self.root / "episodes" / _ep_name(episode) / f"{key}.npy"

    def _map(self, kind: str, episode: int, key: str, path: Path) -> np.ndarray:
        cache_key = (kind, episode, key)
        arr = self._maps.get(cache_key)
        if arr is None:
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as err:
                what = f"key {key!r} of episode {episode}" if kind == "ep" else f"{kind} of episode {episode}"
                raise ValueError(
                    f"{path}: {what} is not a readable .npy ({err}); the dataset is damaged (find every bad "
                    "file with EpisodeStore.open(root, verify='full'))"
                ) from None
            self._maps[cache_key] = arr
            if len(self._maps) > self._max_open:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(cache_key)
        return arr

    def read(self, episode: int, key: str, index: slice | np.ndarray | None = None) -> np.ndarray:
        """Rows ``index`` of ``key`` in ``episode`` (a memory map when ``index`` is None or a slice)."""
        if not 0 <= episode < len(self):
            raise IndexError(f"{self.root}: episode {episode} out of range [0, {len(self)})")
        if key not in self.manifest["episodes"][episode]["files"]:
            raise KeyError(f"{self.root}: key {key!r} not in dataset; available keys: {self.keys}")
        arr = self._map("ep", episode, key, self._path(episode, key))
        return arr if index is None else arr[index]

    def episode(self, episode: int) -> dict[str, np.ndarray]:
        """All keys of one episode as memory maps."""
        return {key: self.read(episode, key) for key in self.manifest["episodes"][episode]["files"]}

    # ------------------------------------------------------------------ writing
    def append_episode(self, arrays: dict[str, np.ndarray], *, seed: int | None = None) -> int:
        """Validate and atomically commit one episode; returns its index.

        Raises ``ValueError`` naming the key on a missing required key, row-count mismatch, NaN/inf, or a
        shape that differs from earlier episodes.
        """
        missing = [k for k in REQUIRED_KEYS if k not in arrays]
        if missing:
            raise ValueError(f"{self.root}: episode is missing key(s) {missing}")
        steps = len(arrays["action"])
        if steps < 1:
            raise ValueError(f"{self.root}: key 'action' has no rows; an episode needs at least one step")
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        for key, arr in arrays.items():
            want = steps + 1 if key in FRAME_KEYS else steps
            if len(arr) != want:
                raise ValueError(
                    f"{self.root}: key {key!r} has {len(arr)} rows, expected {want} for {steps} steps"
                )
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"{self.root}: key {key!r} has NaN or inf")
            if len(self):
                ref = self.manifest["episodes"][0]["files"].get(key)
                if ref is None:
                    raise ValueError(f"{self.root}: key {key!r} is not in the dataset's keys {self.keys}")
                if list(arr.shape[1:]) != ref["shape"][1:] or arr.dtype.str != ref["dtype"]:
                    raise ValueError(
                        f"{self.root}: key {key!r} has per-row shape {arr.shape[1:]} {arr.dtype}, "
                        f"the dataset has {tuple(ref['shape'][1:])} {np.dtype(ref['dtype'])}"
                    )
        if len(self) and set(arrays) != set(self.keys):
            raise ValueError(
                f"{self.root}: episode keys {sorted(arrays)} differ from the dataset's {sorted(self.keys)}"
            )
        self._ensure_writer()
        self._cleanup_uncommitted()
        index = len(self)
        tmp = self.root / "episodes" / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        files = {key: _save_npy(tmp / f"{key}.npy", arr) for key, arr in arrays.items()}
        os.rename(tmp, self.root / "episodes" / _ep_name(index))
        fsync_dir(self.root / "episodes")
        entry = {"length": steps, "seed": seed, "return": float(np.sum(arrays["reward"])), "files": files}
        if self.manifest["format"] != FORMAT:  # migrate a format-1 store: its entries move to the index
            self._write_index()
        self.manifest["index_bytes"] = int(self.manifest["index_bytes"]) + self._append_index(entry)
        self.manifest["episodes"].append(entry)
        self.manifest["num_episodes"] = len(self)
        self.manifest["num_steps"] = int(self.manifest["num_steps"]) + steps
        self._write_manifest()
        return index

    def truncate(self, num_episodes: int) -> None:
        """Forget every episode from index ``num_episodes`` on (a writer rewinding to a checkpoint).

        One atomic manifest write is the commit point: the committed entries are a byte prefix of
        ``episodes.jsonl``, so the manifest only shrinks ``num_episodes``/``index_bytes``; the dropped lines
        and directories are what an interrupted append leaves, cut by the next append and removed here.
        """
        if not 0 <= num_episodes <= len(self):
            raise ValueError(f"{self.root}: truncate({num_episodes}) outside [0, {len(self)}]")
        if num_episodes == len(self):
            return
        self._ensure_writer()
        if self.manifest["format"] != FORMAT:
            self._write_index()
        kept = self.manifest["episodes"][:num_episodes]
        with open(self.root / "episodes.jsonl", "rb") as f:
            lines = f.read(int(self.manifest["index_bytes"])).splitlines(keepends=True)
        self.manifest["index_bytes"] = sum(len(line) for line in lines[:num_episodes])
        self.manifest["episodes"] = kept
        self.manifest["num_episodes"] = num_episodes
        self.manifest["num_steps"] = int(sum(e["length"] for e in kept))
        self._write_manifest()
        self._maps.clear()
        self._cleaned = False
        self._cleanup_uncommitted()
        (self.root / "stats.json").unlink(missing_ok=True)

    # ------------------------------------------------------------------ manifest and index files
    def _write_manifest(self) -> None:
        header = {k: v for k, v in self.manifest.items() if k != "episodes"}
        header["format"] = FORMAT
        atomic_write_text(self.root / "manifest.json", json.dumps(header, indent=1))
        self.manifest["format"] = FORMAT

    def _write_index(self) -> None:
        """Rewrite ``episodes.jsonl`` with the committed entries (atomically)."""
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in self.manifest["episodes"])
        atomic_write_text(self.root / "episodes.jsonl", text)
        self.manifest["index_bytes"] = len(text.encode())

    def _append_index(self, entry: dict[str, Any]) -> int:
        """Append one entry after the committed bytes (cutting the tail of an interrupted append); returns
        the bytes written."""
        path = self.root / "episodes.jsonl"
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with open(path, "r+b") as f:
            f.truncate(int(self.manifest["index_bytes"]))
            f.seek(int(self.manifest["index_bytes"]))
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return len(line)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """Per float key (proprio, action, observation, reward, state): ``mean``, ``std`` (floored at 1e-6),
        ``min``, ``max`` over all rows, streamed episode by episode and cached in ``stats.json``."""
        path = self.root / "stats.json"
        if path.exists():
            cached = json.loads(path.read_text())
            if cached.get("num_episodes") == len(self):
                return {
                    k: {s: np.asarray(v, dtype=np.float64) for s, v in d.items()}
                    for k, d in cached["stats"].items()
                }
        acc: dict[str, list] = {}
        for i in range(len(self)):
            for key in STATS_KEYS:
                if key not in self.manifest["episodes"][i]["files"]:
                    continue
                x = np.asarray(self.read(i, key), dtype=np.float64)
                x = x.reshape(len(x), -1)
                n, s, ss = len(x), x.sum(0), (x * x).sum(0)
                lo, hi = x.min(0), x.max(0)
                if key not in acc:
                    acc[key] = [n, s, ss, lo, hi]
                else:
                    a = acc[key]
                    a[0] += n
                    a[1] += s
                    a[2] += ss
                    a[3] = np.minimum(a[3], lo)
                    a[4] = np.maximum(a[4], hi)
        out = {}
        for key, (n, s, ss, lo, hi) in acc.items():
            mean = s / n
            std = np.sqrt(np.maximum(ss / n - mean * mean, 0.0))
            out[key] = {"mean": mean, "std": np.maximum(std, STD_FLOOR), "min": lo, "max": hi}
        payload = {
            "num_episodes": len(self),
            "stats": {k: {s: v.tolist() for s, v in d.items()} for k, d in out.items()},
        }
        atomic_write_text(path, json.dumps(payload))
        return out

    # ------------------------------------------------------------------ derived arrays (feature caches)
    def _derived_dir(self, name: str) -> Path:
        if not name or ".." in Path(name).parts or Path(name).is_absolute():
            raise ValueError(f"derived array name {name!r} must be a relative name without '..'")
        return self.root / "derived" / name

    def write_derived(
        self, name: str, episode: int, array: np.ndarray, meta: dict[str, Any] | None = None
    ) -> None:
        """Atomically store a per-frame array (``T + 1`` rows) derived from ``episode`` under ``name``."""
        want = int(self.episode_lengths[episode]) + 1
        if len(array) != want:
            raise ValueError(
                f"derived {name!r} episode {episode}: {len(array)} rows, expected {want} (one per frame)"
            )
        d = self._derived_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        if meta is not None and not (d / "meta.json").exists():
            atomic_write_text(d / "meta.json", json.dumps(meta, indent=1))
        with atomic_path(d / f"{_ep_name(episode)}.npy", suffix=".npy") as tmp:
            np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)

    def has_derived(self, name: str, episode: int) -> bool:
        return (self._derived_dir(name) / f"{_ep_name(episode)}.npy").exists()

    def read_derived(self, name: str, episode: int, index: slice | np.ndarray | None = None) -> np.ndarray:
        path = self._derived_dir(name) / f"{_ep_name(episode)}.npy"
        if not path.exists():
            raise ValueError(
                f"{path}: derived array {name!r} missing for episode {episode} (build the cache first)"
            )
        arr = self._map(f"derived:{name}", episode, name, path)
        return arr if index is None else arr[index]

    def derived_meta(self, name: str) -> dict[str, Any]:
        path = self._derived_dir(name) / "meta.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def size_on_disk(self) -> int:
        """Bytes used by the store's files."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
