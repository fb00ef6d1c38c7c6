"""Callbacks every family's training shares."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L

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
