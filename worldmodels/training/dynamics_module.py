"""``worldmodels fit -c configs/dynamics/<dataset>.yaml``: the probabilistic ensemble dynamics
(:class:`~worldmodels.models.ensemble_dynamics.EnsembleDynamics`) on a D4RL-style transition dataset.

Protocol (MBPO / the edge-of-reach code): a random holdout of ``min(holdout_fraction * N, max_holdout)``
transitions; every epoch each member sees the training set in its own random order (one ``(E, B)`` batch of
indices per step, so members differ by data order and initialisation); Gaussian NLL + ``0.01 *`` the
log-variance bound penalty + per-layer L2; after each epoch the holdout MSE of every member is compared with
its best so far: a member improving by more than ``improvement`` (1 %) has its weights kept; training stops
after ``patience`` (5) epochs without any member improving. At the end every member is restored to its best
weights and the ``num_elites`` members with the lowest holdout MSE become the elites.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from worldmodels.models.ensemble_dynamics import EnsembleDynamics

KEYS = ("observations", "actions", "next_observations", "rewards")


def load_transitions(root: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, manifest)`` of a dataset directory: float32 ``observations``, ``actions``,
    ``next_observations`` ``(N, ...)``, ``rewards``, ``terminals`` ``(N,)`` (D4RL's ``qlearning_dataset``)."""
    from worldmodels.data.d4rl import qlearning_dataset
    from worldmodels.data.store import EpisodeStore

    store = EpisodeStore.open(root, verify=False)
    data = qlearning_dataset(store)
    tensors = {k: torch.as_tensor(np.asarray(data[k], dtype=np.float32)) for k in (*KEYS, "terminals")}
    for key, value in tensors.items():
        if not torch.isfinite(value).all():
            raise ValueError(f"{root}: key {key!r} holds NaN or inf values")
    return tensors, store.manifest


class _MemberBatches(IterableDataset):
    """One epoch: ``E`` independent permutations of the training rows, cut into ``(E, B)`` index batches."""

    def __init__(self, n: int, batch_size: int, members: int, seed: int) -> None:
        self.n, self.batch_size, self.members, self.seed, self.epoch = n, batch_size, members, seed, 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        perms = torch.stack([torch.randperm(self.n, generator=g) for _ in range(self.members)])
        for start in range(0, self.n, self.batch_size):
            yield perms[:, start : start + self.batch_size]


class TransitionDataModule(L.LightningDataModule):
    """Transitions of a D4RL-style dataset for ensemble dynamics.

    Args:
        root: dataset directory (an ``EpisodeStore``, e.g. built by ``worldmodels data build-d4rl``).
        holdout_fraction: fraction of transitions held out for early stopping and elites (0.2).
        max_holdout: cap on the holdout size (edge-of-reach code: 1000).
        batch_size: minibatch per member (256).
        seed: seed of the split and of the member orders.
        ensemble_size: members that each get their own order (set by the LightningModule in ``setup``).

    Training batches are dicts of ``(E, B, ...)`` tensors; the validation batch is the whole holdout
    ``(N_holdout, ...)`` shared by all members.
    """

    def __init__(
        self,
        root: str,
        holdout_fraction: float = 0.2,
        max_holdout: int = 1000,
        batch_size: int = 256,
        seed: int = 0,
        ensemble_size: int = 1,
    ) -> None:
        super().__init__()
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"{holdout_fraction=} must be in (0, 1)")
        if max_holdout < 1 or batch_size < 1:
            raise ValueError(f"{max_holdout=} and {batch_size=} must be >= 1")
        self.root, self.holdout_fraction, self.max_holdout = root, holdout_fraction, max_holdout
        self.batch_size, self.seed, self.ensemble_size = batch_size, seed, ensemble_size
        self.data: dict[str, torch.Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        data, manifest = load_transitions(self.root)
        n = len(data["rewards"])
        n_holdout = min(int(self.holdout_fraction * n), self.max_holdout)
        if n_holdout < 1 or n - n_holdout < 1:
            raise ValueError(
                f"{self.root}: {n} transitions are too few for a holdout of {self.holdout_fraction}"
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        self.train = {k: v[perm[n_holdout:]] for k, v in data.items()}
        self.holdout = {k: v[perm[:n_holdout]] for k, v in data.items()}
        self.data, self.manifest = data, manifest
        self.env_id = manifest.get("env_id")
        space = manifest.get("action_space") or {}
        shape = self.data["actions"].shape[1:]
        self.action_low, self.action_high = (
            np.broadcast_to(np.asarray(space[k], dtype=np.float64), shape).tolist() if k in space else None
            for k in ("low", "high")
        )

    def train_dataloader(self) -> DataLoader:
        index = _MemberBatches(len(self.train["rewards"]), self.batch_size, self.ensemble_size, self.seed)
        train = self.train

        def gather(idx: torch.Tensor) -> dict[str, torch.Tensor]:
            return {k: train[k][idx] for k in KEYS}

        return DataLoader(index, batch_size=None, collate_fn=gather)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([{k: self.holdout[k] for k in KEYS}], batch_size=None)


class DynamicsModule(L.LightningModule):
    """Trains an :class:`EnsembleDynamics` (saved as ``<default_root_dir>/model`` by ``worldmodels fit``).

    Args:
        num_members: ensemble size (7).
        num_elites: elites kept for sampling (5).
        hidden: hidden widths (4 x 200).
        activation: activation name (``silu``).
        lr: Adam learning rate (1e-3).
        weight_decay: L2 weight of each layer, hidden layers then head (MBPO: 2.5e-5, 5e-5, 7.5e-5, 7.5e-5,
            1e-4).
        logvar_penalty: weight of ``sum max_logvar - sum min_logvar`` (0.01).
        patience: epochs without improvement before stopping (5).
        improvement: relative holdout-MSE decrease that counts as an improvement (0.01).
        max_logvar_init: initial soft upper log-variance bound (0.5).
        min_logvar_init: initial soft lower bound (-10).
    """

    def __init__(
        self,
        num_members: int = 7,
        num_elites: int = 5,
        hidden: Sequence[int] = (200, 200, 200, 200),
        activation: str = "silu",
        lr: float = 1e-3,
        weight_decay: Sequence[float] = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4),
        logvar_penalty: float = 0.01,
        patience: int = 5,
        improvement: float = 0.01,
        max_logvar_init: float = 0.5,
        min_logvar_init: float = -10.0,
    ) -> None:
        super().__init__()
        if len(weight_decay) != len(hidden) + 1:
            raise ValueError(
                f"weight_decay has {len(weight_decay)} entries; {len(hidden) + 1} layers ({hidden=})"
            )
        if patience < 1 or not 0.0 <= improvement < 1.0:
            raise ValueError(f"{patience=} must be >= 1 and {improvement=} in [0, 1)")
        self.save_hyperparameters()
        self.model: EnsembleDynamics | None = None

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        if not isinstance(dm, TransitionDataModule):
            raise ValueError(f"DynamicsModule needs a TransitionDataModule, got {type(dm).__name__}")
        dm.ensemble_size = self.hparams.num_members
        dm.setup(stage)
        if self.model is not None:
            return
        h = self.hparams
        obs_dim, action_dim = dm.train["observations"].shape[1], dm.train["actions"].shape[1]
        self.model = EnsembleDynamics(
            obs_dim, action_dim, h.num_members, h.num_elites, tuple(h.hidden), h.activation, env_id=dm.env_id,
            action_low=dm.action_low, action_high=dm.action_high, max_logvar_init=h.max_logvar_init,
            min_logvar_init=h.min_logvar_init,
        )  # fmt: skip
        t = dm.train
        self.model.set_statistics(t["observations"], t["actions"], t["next_observations"], t["rewards"])
        self.register_buffer("best_mse", torch.full((h.num_members,), float("inf")))
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.epochs_since_update = 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        m = self.model
        nll = m.nll(batch["observations"], batch["actions"], batch["next_observations"], batch["rewards"])
        loss = nll + self.hparams.logvar_penalty * m.logvar_bound_penalty()
        loss = loss + m.weight_decay_penalty(self.hparams.weight_decay)
        if not torch.isfinite(loss):
            raise ValueError(f"dynamics training: the loss is {loss.item()} at step {self.global_step}")
        self.log("train/nll", nll / m.num_members, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        mse = self.model.mse(
            batch["observations"], batch["actions"], batch["next_observations"], batch["rewards"]
        )
        self.holdout_mse = mse
        self.log("val/mse", mse.sort().values[: self.hparams.num_elites].mean(), prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        mse = self.holdout_mse.to(self.best_mse)
        better = (self.best_mse - mse) / self.best_mse > self.hparams.improvement
        better |= torch.isinf(self.best_mse)
        if better.any():
            state = self.model.state_dict()
            for key, value in state.items():
                if value.dim() == 3 and value.shape[0] == self.model.num_members:  # per-member tensors
                    self.best_state[key][better] = value.detach()[better]
                elif not key.startswith(("elites",)):
                    self.best_state[key] = value.detach().clone()
            self.best_mse = torch.where(better, mse, self.best_mse)
            self.epochs_since_update = 0
        else:
            self.epochs_since_update += 1
        self.log("val/epochs_since_update", float(self.epochs_since_update))
        self.log("val/best_elite_mse", self.best_mse.sort().values[: self.hparams.num_elites].mean())
        if self.epochs_since_update >= self.hparams.patience:
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        """Restore every member's best weights and choose the elites by holdout MSE."""
        if torch.isinf(self.best_mse).all():
            return  # no validation ran: keep the final weights
        self.model.load_state_dict(self.best_state)
        self.model.elites.copy_(self.best_mse.argsort()[: self.model.num_elites].sort().values)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)
