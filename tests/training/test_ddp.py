"""`worldmodels fit` with two CPU DDP processes (gloo) on a tiny real Wall dataset."""

import json
import subprocess
import sys

import pytest
import torch

from worldmodels.models.latent_world_model import LatentWorldModel

TINY = ["--model", "worldmodels.training.latent_module.LatentWorldModelModule", "--data", "worldmodels.data.datamodules.FrameWindowDataModule", "--data.num_hist", "1", "--data.num_pred", "2", "--data.frameskip", "2", "--data.batch_size", "4",
        "--model.width", "32", "--model.depth", "1", "--model.heads", "2", "--model.head_dim", "8",
        "--model.mlp_dim", "32", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
        "--trainer.limit_val_batches", "2", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.logger", "false"]  # fmt: skip
DDP = ["--trainer.strategy", "ddp", "--trainer.accelerator", "cpu", "--trainer.devices", "2"]


@pytest.mark.slow
def test_ddp_fit_on_two_cpu_processes_saves_a_loadable_model(wall_data, tmp_path):
    # a fresh interpreter: DDP launches the second rank by re-running the command line of the first
    args = [*TINY, "--data.root", str(wall_data / "data"), "--model.encoder_path", str(wall_data / "enc"),
            "--trainer.default_root_dir", str(tmp_path / "fit"), *DDP]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "worldmodels.cli", "fit", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "GLOBAL_RANK: 1" in log and "Starting with 2 processes" in log, log[-3000:]
    model = LatentWorldModel.from_pretrained(tmp_path / "fit" / "model")
    assert model.frameskip == 2 and model.predictor.max_frames == 3
    metrics = json.loads((tmp_path / "fit" / "model" / "metrics.json").read_text())
    assert torch.isfinite(torch.tensor(metrics["val/mse"])) and metrics["global_step"] == 3
