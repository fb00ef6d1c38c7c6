"""A training DataLoader that resumes mid-epoch exactly where an interrupted run stopped.

Lightning saves and restores the ``state_dict`` of a DataLoader that has one (its ``_Stateful`` protocol).
:class:`ResumableDataLoader` has one: its :class:`EpochSampler` orders epoch ``e`` by a permutation drawn
from a generator seeded with ``(seed, e)`` only (not the global RNG, which validation, the sanity check and
iterator creation also draw from), and its state is ``(epoch, batches trained in that epoch)``, read from
the trainer's progress when the checkpoint is written. Restored, the sampler skips those batches' indices
(without loading them), so a run resumed from any checkpoint sees the same batches in the same order as
the uninterrupted run.

Where Lightning replaces the sampler (a distributed sampler under DDP), the loader has no state and behaves
like a plain ``DataLoader``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

#: ``() -> (epoch, batches trained in it)``
Position = Callable[[], tuple[int, int]]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s permutation (independent streams per epoch)."""
    return int(np.random.SeedSequence([seed % 2**63, epoch]).generate_state(1, dtype=np.uint64)[0] % 2**63)


class EpochSampler(Sampler[int]):
    """Indices ``0..n-1``, shuffled per epoch from ``(seed, epoch)`` when ``shuffle``, that can skip the
    batches an interrupted run already trained on.

    Args:
        n: dataset length.
        batch_size: the loader's batch size (a resumed epoch skips ``batches * batch_size`` indices).
        seed: base seed of the permutations.
        shuffle: permute per epoch (else the natural order).
        position: ``() -> (epoch, batches trained in it)``; the epoch picks the permutation when an epoch's
            iteration starts, and both are the state written into a checkpoint.
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, position: Position):
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.position = position
        self._resume: tuple[int, int] | None = None

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        epoch, _ = self.position()
        if self.shuffle:
            order = torch.randperm(
                self.n, generator=torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            )
        else:
            order = torch.arange(self.n)
        skip = 0
        if self._resume is not None:
            resume_epoch, batches = self._resume
            self._resume = None
            if resume_epoch == epoch:
                skip = batches * self.batch_size
        yield from order[skip:].tolist()

    def state_dict(self) -> dict[str, Any]:
        epoch, batches = self.position()
        return {
            "epoch": epoch,
            "batches": batches,
            "seed": self.seed,
            "n": self.n,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = {"seed": self.seed, "n": self.n, "batch_size": self.batch_size}
        changed = {k: (state.get(k), v) for k, v in mine.items() if state.get(k) != v}
        if changed:
            warnings.warn(
                f"the checkpoint's training data differs from this run's ({changed}, checkpoint vs now): its "
                "epoch restarts from its first batch",
                stacklevel=2,
            )
            return
        self._resume = (int(state["epoch"]), int(state["batches"]))


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` with ``state_dict``/``load_state_dict`` (its :class:`EpochSampler`'s), so that
    Lightning resumes it mid-epoch; the constructor is ``DataLoader``'s."""

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict() if isinstance(self.sampler, EpochSampler) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and isinstance(self.sampler, EpochSampler):
            self.sampler.load_state_dict(state)


def trainer_position(module: Any) -> Position:
    """``position`` for an :class:`EpochSampler` of a LightningDataModule ``module``: the attached trainer's
    epoch and the batches trained in it (``(0, 0)`` outside ``fit``)."""

    def position() -> tuple[int, int]:
        trainer = getattr(module, "trainer", None)
        if trainer is None:
            return 0, 0
        return int(trainer.current_epoch), int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    return position
