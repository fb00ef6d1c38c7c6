"""``worldmodels fit|validate|test -c configs/latent/<env>.yaml``: the Lightning CLI.

Any option can be overridden on the command line (``--trainer.max_epochs 5``, ``--data.root data/wall``)
and ``--print_config`` writes the full resolved config (that is how ``configs/`` is produced).
The trained model is written as ``<trainer.default_root_dir>/model`` (``config.json`` +
``model.safetensors``) at the end of ``fit``; Lightning ``.ckpt`` files are for ``--ckpt_path`` resume.
"""

from __future__ import annotations

import warnings

import torch
from lightning.pytorch.cli import LightningCLI

from worldmodels.data.datamodules import FrameWindowDataModule
from worldmodels.training.latent_module import LatentWorldModelModule, SavePretrained


def lightning_main(argv: list[str]) -> int:
    torch.set_flush_denormal(True)
    # we pass argv explicitly (the `worldmodels` entry point already consumed sys.argv)
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
    LightningCLI(
        LatentWorldModelModule,
        FrameWindowDataModule,
        args=argv,
        trainer_defaults={"callbacks": [SavePretrained()]},
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
    )
    return 0
