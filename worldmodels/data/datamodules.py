"""Lightning DataModules over an :class:`~worldmodels.data.store.EpisodeStore`.

Frame windows (DINO-WM): a window of ``T = num_hist + num_pred`` frames starting at raw step ``t`` uses
frames ``t, t + fs, ..., t + (T - 1) * fs`` and, for frame ``k``, the ``fs`` actions
``action[t + k*fs : t + (k+1)*fs]`` concatenated (frameskip 5, action dim 2 -> 10). Valid starts are
``0 .. len - T * fs``. Train/val split by episode with a seed.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch.utils.data import DataLoader, Dataset

from worldmodels.data.resumable import EpochSampler, ResumableDataLoader, trainer_position
from worldmodels.data.store import EpisodeStore


def window_index(lengths: np.ndarray, episodes: np.ndarray, span: int) -> np.ndarray:
    """All ``(episode, start)`` pairs whose window of ``span`` steps fits: ``start + span <= length``."""
    pairs = [(e, s) for e in episodes for s in range(int(lengths[e]) - span + 1)]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of episode indices ``0..n-1`` into (train, val); val is empty when ``n < 2``."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} must be in [0, 1)")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = 0 if n < 2 or val_fraction == 0 else max(1, round(val_fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class FrameWindowDataset(Dataset):
    """Windows of frames from a store. Items are dicts of tensors (see :class:`FrameWindowDataModule`)."""

    def __init__(
        self,
        store: EpisodeStore,
        episodes: np.ndarray,
        num_hist: int,
        num_pred: int,
        frameskip: int,
        keys: tuple[str, ...] = ("pixels", "proprio"),
        feature_key: str | None = None,
        img_size: int | None = None,
        stats: dict[str, torch.Tensor] | None = None,
    ):
        self.store, self.keys, self.feature_key, self.img_size, self.stats = (
            store,
            keys,
            feature_key,
            img_size,
            stats,
        )
        self.T, self.fs = num_hist + num_pred, frameskip
        self.index = window_index(store.episode_lengths, episodes, self.T * frameskip)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ep, start = (int(v) for v in self.index[i])
        frames = start + self.fs * np.arange(self.T)
        item: dict[str, torch.Tensor] = {"episode": torch.tensor(ep), "start": torch.tensor(start)}
        if "pixels" in self.keys:
            px = torch.from_numpy(np.ascontiguousarray(self.store.read(ep, "pixels", frames)))
            px = rearrange(px, "t h w c -> t c h w")
            if self.img_size is not None and px.shape[-1] != self.img_size:
                px = F.interpolate(
                    px.float(), size=(self.img_size, self.img_size), mode="bilinear", antialias=True
                )
                px = px.round().clamp(0, 255).to(torch.uint8)
            item["pixels"] = px
        if self.feature_key is not None:
            feats = self.store.read_derived(self.feature_key, ep, frames)
            item["features"] = torch.from_numpy(np.asarray(feats, dtype=np.float32))
        for key in ("proprio", "state", "observation"):
            if key in self.keys:
                x = torch.from_numpy(np.asarray(self.store.read(ep, key, frames), dtype=np.float32))
                if self.stats is not None and f"{key}_mean" in self.stats:
                    x = (x - self.stats[f"{key}_mean"]) / self.stats[f"{key}_std"]
                item[key] = x
        act = np.array(
            self.store.read(ep, "action", slice(start, start + self.T * self.fs)), dtype=np.float32
        )
        act = rearrange(torch.from_numpy(act), "(t s) a -> t (s a)", s=self.fs)
        if self.stats is not None:
            act = (act - self.stats["action_mean"]) / self.stats["action_std"]
        item["action"] = act
        return item


class FrameWindowDataModule(L.LightningDataModule):
    """Frame windows for world-model training.

    Batch (dict of tensors): ``pixels`` uint8 ``(B, T, 3, H, W)``; ``features`` float ``(B, T, N, D)``
    when ``feature_key`` is set; ``proprio`` float32 ``(B, T, P)`` and ``action`` float32
    ``(B, T, A * frameskip)``, normalised with the store's statistics when ``normalize``; ``episode``,
    ``start`` int64 ``(B,)``.

    Args:
        root: dataset directory (an :class:`EpisodeStore`).
        num_hist: history frames per window.
        num_pred: frames to predict after the history.
        frameskip: env steps between consecutive frames; their actions are concatenated.
        batch_size: batch size.
        num_workers: DataLoader worker processes.
        val_fraction: fraction of episodes held out for validation (split by episode).
        split_seed: seed of the episode split.
        img_size: resize frames to this size (antialiased) when given.
        keys: frame keys to read (``pixels``, ``proprio``, ``state``, ``observation``).
        feature_key: name of a derived per-frame array (a feature cache) to return as ``features``.
        normalize: z-score proprio and actions with the store's statistics.
        pin_memory: DataLoader ``pin_memory``.
        persistent_workers: DataLoader ``persistent_workers`` (when ``num_workers > 0``).
    """

    def __init__(
        self,
        root: str,
        num_hist: int = 1,
        num_pred: int = 1,
        frameskip: int = 1,
        batch_size: int = 32,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        img_size: int | None = None,
        keys: tuple[str, ...] = ("pixels", "proprio"),
        feature_key: str | None = None,
        normalize: bool = True,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ):
        super().__init__()
        for name, value, low in (("num_hist", num_hist, 1), ("num_pred", num_pred, 1), ("frameskip", frameskip, 1),
                                 ("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):  # fmt: skip
            if value < low:
                raise ValueError(f"{name}={value} must be >= {low}")
        self.save_hyperparameters()
        self.root, self.num_hist, self.num_pred, self.frameskip = root, num_hist, num_pred, frameskip
        self.batch_size, self.num_workers, self.img_size = batch_size, num_workers, img_size
        self.val_fraction, self.split_seed, self.keys = val_fraction, split_seed, tuple(keys)
        self.feature_key, self.normalize = feature_key, normalize
        self.pin_memory, self.persistent_workers = pin_memory, persistent_workers
        self._store: EpisodeStore | None = None
        self._shuffle_seed: int | None = None

    @property
    def store(self) -> EpisodeStore:
        if self._store is None:
            self._store = EpisodeStore.open(self.root)
            self._check()
        return self._store

    def _check(self) -> None:
        store = self._store
        if len(store) == 0:
            raise ValueError(f"{self.root}: the dataset has no episodes")
        for key in self.keys:
            if key not in store.keys:
                raise ValueError(
                    f"{self.root}: key {key!r} requested by the DataModule is not in the dataset {store.keys}"
                )
        span = (self.num_hist + self.num_pred) * self.frameskip
        longest = int(store.episode_lengths.max())
        if span > longest:
            raise ValueError(
                f"{self.root}: a window of (num_hist={self.num_hist} + num_pred={self.num_pred}) x "
                f"frameskip={self.frameskip} = {span} steps is longer than every episode (longest {longest})"
            )

    @property
    def stats(self) -> dict[str, torch.Tensor]:
        """Normalisation statistics as tensors: ``<key>_mean``/``<key>_std`` for proprio/state/observation,
        and ``action_mean``/``action_std`` for the frameskip-concatenated action ``(A * frameskip,)``."""
        s = self.store.stats()
        out = {}
        for key in ("proprio", "state", "observation"):
            if key in s:
                out[f"{key}_mean"] = torch.as_tensor(s[key]["mean"], dtype=torch.float32)
                out[f"{key}_std"] = torch.as_tensor(s[key]["std"], dtype=torch.float32)
        out["action_mean"] = torch.as_tensor(
            np.tile(s["action"]["mean"], self.frameskip), dtype=torch.float32
        )
        out["action_std"] = torch.as_tensor(np.tile(s["action"]["std"], self.frameskip), dtype=torch.float32)
        return out

    def _dataset(self, episodes: np.ndarray) -> FrameWindowDataset:
        return FrameWindowDataset(
            self.store, episodes, self.num_hist, self.num_pred, self.frameskip, keys=self.keys,
            feature_key=self.feature_key, img_size=self.img_size, stats=self.stats if self.normalize else None,
        )  # fmt: skip

    def setup(self, stage: str | None = None) -> None:
        train, val = split_episodes(len(self.store), self.val_fraction, self.split_seed)
        self.train_episodes, self.val_episodes = train, val
        self.train_set, self.val_set = self._dataset(train), self._dataset(val if len(val) else train)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            pin_memory=self.pin_memory, persistent_workers=self.persistent_workers and self.num_workers > 0,
            drop_last=shuffle and len(dataset) > self.batch_size,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        """Shuffled per epoch from ``(torch.initial_seed(), epoch)`` (the run's ``seed_everything``) and
        resumable mid-epoch (:mod:`worldmodels.data.resumable`): a run resumed from any checkpoint trains on
        the same batches in the same order as the uninterrupted run."""
        n = len(self.train_set)
        if self._shuffle_seed is None:  # once: later loaders (reload_dataloaders_every_n_epochs) keep it
            self._shuffle_seed = torch.initial_seed()
        sampler = EpochSampler(
            n, self.batch_size, self._shuffle_seed, shuffle=True, position=trainer_position(self)
        )
        return ResumableDataLoader(
            self.train_set, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
            pin_memory=self.pin_memory, persistent_workers=self.persistent_workers and self.num_workers > 0,
            drop_last=n > self.batch_size,
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


class TransitionDataModule(L.LightningDataModule):
    """Transitions ``(obs, action, reward, next_obs, terminated, truncated)`` for state-based learners.

    Args:
        root: dataset directory.
        obs_key: which frame key is the observation (``observation``, ``proprio`` or ``state``).
        batch_size: batch size.
        val_fraction: fraction of episodes held out (split by episode).
        split_seed: seed of the split.
        normalize: z-score observations with the store's statistics.
        num_workers: DataLoader workers.
    """

    def __init__(self, root: str, obs_key: str = "observation", batch_size: int = 256, val_fraction: float = 0.1,
                 split_seed: int = 0, normalize: bool = False, num_workers: int = 0):  # fmt: skip
        super().__init__()
        self.save_hyperparameters()
        self.root, self.obs_key, self.batch_size = root, obs_key, batch_size
        self.val_fraction, self.split_seed, self.normalize, self.num_workers = (
            val_fraction,
            split_seed,
            normalize,
            num_workers,
        )

    def _tensors(self, store: EpisodeStore, episodes: np.ndarray) -> torch.utils.data.TensorDataset:
        obs, nxt, act, rew, term, trunc = [], [], [], [], [], []
        for e in episodes:
            o = np.asarray(store.read(int(e), self.obs_key), dtype=np.float32)
            obs.append(o[:-1])
            nxt.append(o[1:])
            act.append(np.asarray(store.read(int(e), "action"), dtype=np.float32))
            rew.append(np.asarray(store.read(int(e), "reward"), dtype=np.float32))
            term.append(np.asarray(store.read(int(e), "terminated")))
            trunc.append(np.asarray(store.read(int(e), "truncated")))
        o, n = np.concatenate(obs), np.concatenate(nxt)
        if self.normalize:
            s = store.stats()[self.obs_key]
            o, n = (o - s["mean"]) / s["std"], (n - s["mean"]) / s["std"]
        arrays = (o, np.concatenate(act), np.concatenate(rew), n, np.concatenate(term), np.concatenate(trunc))
        return torch.utils.data.TensorDataset(
            *(torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays)
        )

    def setup(self, stage: str | None = None) -> None:
        store = EpisodeStore.open(self.root)
        if self.obs_key not in store.keys:
            raise ValueError(f"{self.root}: obs_key {self.obs_key!r} is not in the dataset {store.keys}")
        train, val = split_episodes(len(store), self.val_fraction, self.split_seed)
        self.train_set = self._tensors(store, train)
        self.val_set = self._tensors(store, val if len(val) else train)

    @staticmethod
    def _collate(rows):
        names = ("obs", "action", "reward", "next_obs", "terminated", "truncated")
        return {k: torch.stack([r[i] for r in rows]) for i, k in enumerate(names)}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            self.batch_size,
            shuffle=True,
            collate_fn=self._collate,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set, self.batch_size, collate_fn=self._collate, num_workers=self.num_workers
        )
