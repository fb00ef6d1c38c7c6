"""``worldmodels fit|validate|test -c configs/<family>/<env>.yaml``: the Lightning CLI in subclass mode.

The config picks the LightningModule and the DataModule by import path, so a new model family adds a
config folder, not a command::

    model:
      class_path: worldmodels.training.latent_module.LatentWorldModelModule
      init_args: {width: 128, ...}
    data:
      class_path: worldmodels.data.datamodules.FrameWindowDataModule
      init_args: {root: data/wall, ...}

Without a config, name the classes on the command line (``--model worldmodels.training....Module --data
...DataModule``). Any option can be overridden (``--trainer.max_epochs 5``, ``--data.root data/wall``,
``--model.width 64``: the shorthand for ``--model.init_args.width``) and ``--print_config`` writes the full
resolved config (that is how ``configs/`` is produced).

A family's LightningModule keeps its trained object as ``self.model`` (a
:class:`worldmodels.pretrained.Pretrained`); :class:`~worldmodels.training.callbacks.SavePretrained` writes it
as ``<trainer.default_root_dir>/model`` at the end of ``fit``. Lightning ``.ckpt`` files are for
``--ckpt_path`` resume: with :class:`~worldmodels.training.callbacks.SeedEachStep` (always added) and a
resumable train loader (:mod:`worldmodels.data.resumable`, ``FrameWindowDataModule``'s), a run resumed from
any checkpoint, mid-epoch included, reaches the uninterrupted run's global step and weights.
"""

from __future__ import annotations

import argparse
import warnings

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from worldmodels.errors import UserError
from worldmodels.training.callbacks import SavePretrained, SeedEachStep


def _check_config_files(argv: list[str]) -> None:
    """A config written before subclass mode (``model:`` holding the module's arguments directly) gets a
    one-line error that says how to migrate it, instead of jsonargparse's page of alternatives."""
    import yaml

    paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-c", "--config")]
    paths += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    for path in paths:
        try:
            with open(path) as f:
                cfg = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue  # jsonargparse reports unreadable files itself
        for key in ("model", "data"):
            section = cfg.get(key) if isinstance(cfg, dict) else None
            if isinstance(section, dict) and section and "class_path" not in section:
                raise SystemExit(
                    f"worldmodels fit: {path}: '{key}' has no class_path; configs name their classes "
                    f"({key}: {{class_path: ..., init_args: {{...}}}}), see configs/latent/wall.yaml"
                )


def _precision_amp(precision: object) -> str | None:
    """``"bf16"`` / ``"fp16"`` for a Lightning ``trainer.precision`` that computes in that dtype, else None."""
    text = str(precision)
    if "bf16" in text:
        return "bf16"
    if text.startswith("16"):
        return "fp16"
    return None


def _accelerator_device(accelerator: object) -> torch.device:
    """The device a Lightning ``trainer.accelerator`` name trains on (``auto``: as Lightning picks)."""
    from worldmodels.devices import resolve_device

    name = str(accelerator if accelerator is not None else "auto")
    if name not in ("auto", "gpu"):  # a device type the config names
        try:
            return torch.device(name)
        except RuntimeError:  # a custom accelerator: Lightning decides, as for auto
            pass
    return resolve_device("auto")  # auto / gpu: the best this machine has, as Lightning picks it


def check_trainer_precision(trainer: dict, force: bool) -> None:
    """Precision by capability: a ``bf16``/``16`` ``trainer.precision`` where the accelerator does not run
    that dtype natively becomes ``32-true`` with one printed line, or a ``ValueError`` with ``force``
    (:func:`worldmodels.devices.choose_precision`). ``trainer`` is the parsed ``trainer`` section, edited in
    place."""
    from worldmodels.devices import choose_precision

    amp = _precision_amp(trainer.get("precision"))
    if amp is None:
        return
    device = _accelerator_device(trainer.get("accelerator"))
    request = f"--trainer.precision {trainer['precision']}"
    if choose_precision(amp, device, force=force, request=request, force_flag="--force_precision") is None:
        trainer["precision"] = "32-true"


class WorldModelsCLI(LightningCLI):
    """The Lightning CLI plus ``--force_precision``: precision is chosen by capability before the Trainer is
    built (:func:`check_trainer_precision`)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--force_precision", type=bool, default=False,
            help="fail when trainer.precision asks for bf16/16 on hardware without native support, instead "
                 "of training in float32",
        )  # fmt: skip

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        try:
            check_trainer_precision(cfg["trainer"], bool(cfg.get("force_precision")))
        except ValueError as err:
            raise SystemExit(f"worldmodels {self.subcommand or 'fit'}: {err}") from None


def lightning_main(argv: list[str]) -> int:
    _check_config_files(argv)
    torch.set_flush_denormal(True)
    # we pass argv explicitly (the `worldmodels` entry point already consumed sys.argv)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    try:
        WorldModelsCLI(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=argv,
            trainer_defaults={"callbacks": [SavePretrained(), SeedEachStep()]},
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            parser_kwargs={"exit_on_error": False},
        )
    except argparse.ArgumentError as err:  # a bad flag or config: one line (worldmodels.errors)
        raise UserError(str(err)) from None
    return 0
