"""Training SynthER through the project's one training command::

    worldmodels fit -c configs/synth/halfcheetah.yaml      # or: synth fit -c ... (forwards to it)

* :class:`TransitionsDataModule`: the real transitions (:func:`synth.data.load_transitions`), normalised
  with the statistics fitted on them (:func:`synth.model.fit_normalization`), served as random batches
  (one tensor index per batch, no per-row collation).
* :class:`SynthERModule`: EDM training of the denoiser (AdamW, cosine schedule, gradient clipping from the
  trainer config) with an exponential moving average of the weights. ``self.model`` (what ``worldmodels
  fit`` saves) holds the EMA weights; ``self.net`` is the network the optimiser updates. EMA decay
  ``min(ema_decay, (1 + step) / (10 + step))`` at every step (the warm-up keeps early averages from
  remembering the random init; SynthER: 0.995).
"""

from __future__ import annotations

import copy

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from synth.data import dataset_env_id, load_transitions
from synth.model import SynthER, fit_normalization, flatten_transitions
from worldmodels.training.optim import adamw_with_schedule, check_schedule


class _Rows(Dataset):
    """Index a tensor with a list of rows (a whole batch at once)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows):
        return self.x[rows]


class TransitionsDataModule(L.LightningDataModule):
    """Real transitions for SynthER.

    Args:
        root: a dataset (store directory, ``.npz``/``.hdf5`` with D4RL keys; see :mod:`synth.data`).
        batch_size: rows per batch (SynthER: 256; 1024 for datasets over 800k transitions).
        subset: fraction of the transitions kept (seeded by ``subset_seed``), for the upsampling setting.
        subset_seed: seed of the subset.
        val_fraction: transitions held out for the validation loss.
        split_seed: seed of the split.
    """

    def __init__(self, root: str, batch_size: int = 256, subset: float = 1.0, subset_seed: int = 0,
                 val_fraction: float = 0.02, split_seed: int = 0) -> None:  # fmt: skip
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction={val_fraction} must be in [0, 1)")
        self.save_hyperparameters()
        self.root, self.batch_size, self.val_fraction, self.split_seed = (
            root,
            batch_size,
            val_fraction,
            split_seed,
        )
        self.subset, self.subset_seed = subset, subset_seed
        self.flat: np.ndarray | None = None

    def prepare(self) -> None:
        """Load the data and fit the normalisation (once)."""
        if self.flat is not None:
            return
        data = load_transitions(self.root, self.subset, self.subset_seed)
        self.obs_dim, self.action_dim = data["observations"].shape[1], data["actions"].shape[1]
        self.flat = flatten_transitions(data, self.root)
        self.stats = fit_normalization(self.flat, self.obs_dim, self.action_dim, self.root)
        self.env_id = dataset_env_id(self.root)

    def setup(self, stage: str | None = None) -> None:
        self.prepare()
        z = torch.as_tensor((self.flat - self.stats["mean"]) / self.stats["std"], dtype=torch.float32)
        perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(self.split_seed))
        n_val = round(self.val_fraction * len(z))
        self.train_set, self.val_set = (
            _Rows(z[perm[n_val:]]),
            _Rows(z[perm[:n_val]] if n_val else z[perm[:1]]),
        )

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.split_seed + 1)
        bs = min(self.batch_size, len(self.train_set))
        return DataLoader(self.train_set, batch_size=None,
                          sampler=BatchSampler(RandomSampler(self.train_set, generator=g), bs, drop_last=True))  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=None,
                          sampler=BatchSampler(SequentialSampler(self.val_set), self.batch_size, drop_last=False))  # fmt: skip


class SynthERModule(L.LightningModule):
    """EDM training of SynthER's denoiser (see the module docstring).

    Args:
        width: denoiser width (SynthER: 2048; CPU default 512).
        blocks: residual blocks (SynthER: 6).
        dim_t: projection / time-embedding width (SynthER: 128).
        activation: activation name (SynthER: relu).
        sampler_steps: steps of the sampler saved as the model's default.
        sampler_solver: ``euler``, ``heun`` or ``dpmsolver++``.
        sampler_churn: ``S_churn`` of the saved sampler (0: deterministic).
        lr: AdamW learning rate (SynthER: 3e-4).
        weight_decay: AdamW weight decay.
        lr_schedule: ``cosine`` (SynthER) or ``constant``.
        warmup_steps: linear warm-up steps.
        ema_decay: EMA decay (SynthER: 0.995).
        seed: seed of the training noise.
    """

    def __init__(
        self,
        width: int = 512,
        blocks: int = 4,
        dim_t: int = 128,
        activation: str = "relu",
        sampler_steps: int = 32,
        sampler_solver: str = "heun",
        sampler_churn: float = 0.0,
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        warmup_steps: int = 0,
        ema_decay: float = 0.995,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_schedule(lr_schedule, warmup_steps)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay={ema_decay} must be in [0, 1)")
        if width < 1 or blocks < 0:
            raise ValueError(f"width={width} must be >= 1 and blocks={blocks} >= 0")
        self.save_hyperparameters()
        self.model: SynthER | None = None
        self.net: torch.nn.Module | None = None
        self._generator: torch.Generator | None = None

    def setup(self, stage: str) -> None:
        if self.model is not None:
            return
        dm = self.trainer.datamodule
        dm.prepare()
        h = self.hparams
        self.model = SynthER(
            dm.obs_dim, dm.action_dim,
            denoiser={"width": h.width, "blocks": h.blocks, "dim_t": h.dim_t, "activation": h.activation},
            sampler={"steps": h.sampler_steps, "solver": h.sampler_solver, "s_churn": h.sampler_churn},
            env_id=dm.env_id, dataset=str(dm.root),
        )  # fmt: skip
        self.model.set_normalization(dm.stats)
        self.net = copy.deepcopy(self.model.denoiser)
        self.model.requires_grad_(False)

    @property
    def generator(self) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.hparams.seed + self.global_rank)
        return self._generator

    def training_step(self, batch, batch_idx):
        loss = self.model.loss(batch, self.generator, net=self.net)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        step = self.global_step
        decay = min(self.hparams.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, p in zip(self.model.denoiser.parameters(), self.net.parameters(), strict=True):
                ema.lerp_(p, 1.0 - decay)

    def validation_step(self, batch, batch_idx):
        g = torch.Generator().manual_seed(self.hparams.seed + 10_000 + batch_idx)  # the same noise each time
        loss = self.model.loss(batch, g)  # the EMA weights
        self.log("val/loss", loss, prog_bar=True, batch_size=len(batch))

    def configure_optimizers(self):
        h = self.hparams
        return adamw_with_schedule(self.net.parameters(), self.trainer, lr=h.lr, weight_decay=h.weight_decay,
                                   lr_schedule=h.lr_schedule, warmup_steps=h.warmup_steps)  # fmt: skip
