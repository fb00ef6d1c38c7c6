"""Every committed latent config names real arguments of the module and the data module (fast, in-process;
tests/training/test_fit_cli.py runs the full CLI parse on two of them)."""

import inspect
from pathlib import Path

import pytest
import yaml

from worldmodels.data.datamodules import FrameWindowDataModule
from worldmodels.training.latent_module import ENCODER_CHOICES, LatentWorldModelModule

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "latent").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_latent_config_arguments_exist(path):
    cfg = yaml.safe_load(path.read_text())
    model, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    for cls, args in ((LatentWorldModelModule, model), (FrameWindowDataModule, data)):
        unknown = set(args) - set(inspect.signature(cls.__init__).parameters)
        assert not unknown, f"{path.name}: unknown {cls.__name__} arguments {sorted(unknown)}"
    assert model["encoder"] in ENCODER_CHOICES
    assert (model["encoder"] == "dinov2") == (model.get("encoder_path") is None), path.name
    if path.stem.endswith("_gpu"):  # DINO-WM's sizes
        assert model["encoder"] == "dinov2" and model["encoder_img_size"] == 224 and model["depth"] == 6


def test_every_env_has_a_cpu_and_a_gpu_profile():
    names = {p.stem for p in CONFIGS}
    for env in ("wall", "wallrandom", "pointmaze", "pointmaze_medium", "reacher", "pusht"):
        assert {env, f"{env}_gpu"} <= names, env
