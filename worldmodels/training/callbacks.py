"""Callbacks every family's training shares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from worldmodels.io import atomic_write_text
from worldmodels.pretrained import Pretrained


class SavePretrained(L.Callback):
    """At the end of ``fit``, write the module's ``model`` (a :class:`~worldmodels.pretrained.Pretrained`) as
    ``<default_root_dir>/model`` and the final metrics as ``<default_root_dir>/model/metrics.json``.

    This is the one convention a family's LightningModule follows to plug into ``worldmodels fit``: it keeps
    the trained object as ``self.model``; :func:`worldmodels.load_pretrained` then rebuilds it.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        model = getattr(pl_module, "model", None)
        if not isinstance(model, Pretrained):
            raise TypeError(
                f"{type(pl_module).__name__}.model is a {type(model).__name__}, not a worldmodels Pretrained "
                "model: `worldmodels fit` saves pl_module.model with save_pretrained"
            )
        out = model.save_pretrained(Path(trainer.default_root_dir) / "model")
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        metrics["global_step"] = trainer.global_step
        if trainer.optimizers:
            metrics["lr"] = trainer.optimizers[0].param_groups[0]["lr"]  # the learning rate at the end
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
        print(f"saved the trained {model.model_type} to {out}")


class SeedEachStep(L.Callback):
    """Before every training batch, seed the global torch RNG (CPU and CUDA) from ``(run seed, rank, epoch,
    batch index)``, so dropout and any other global-RNG draw of a training step depend on where the step is,
    not on everything drawn before it (validation, the sanity check, DataLoader iterators). A run resumed
    from any checkpoint then draws what the uninterrupted run drew (with the resumable train loader of
    :mod:`worldmodels.data.resumable`: the same weights). The run seed is ``torch.initial_seed()`` when
    ``fit`` starts (``seed_everything``'s value). Modules with their own ``torch.Generator`` are not
    affected."""

    def __init__(self) -> None:
        self.base_seed: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.base_seed = torch.initial_seed()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        assert self.base_seed is not None
        key = [self.base_seed % 2**63, trainer.global_rank, trainer.current_epoch, batch_idx]
        torch.manual_seed(int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0] % 2**63))
