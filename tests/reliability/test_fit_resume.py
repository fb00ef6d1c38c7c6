"""``worldmodels fit --ckpt_path``: resumed from any checkpoint (mid-epoch, epoch end, or the last one a
kill -9 left), a tiny latent fit reaches exactly the uninterrupted run's global step and weights (issue 18,
case 4). Dropout is on, so the global RNG is exercised too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from reliability_testing import command
from safetensors.torch import load_file

from worldmodels.cli import main as wm
from worldmodels.encoders.conv_ae import ConvAEEncoder

#: 5 batches per epoch x 3 epochs = 15 optimizer steps
TINY = ["--model", "worldmodels.training.latent_module.LatentWorldModelModule",
        "--data", "worldmodels.data.datamodules.FrameWindowDataModule", "--data.num_hist", "1", "--data.num_pred", "2",
        "--data.frameskip", "2", "--data.batch_size", "8", "--model.width", "32", "--model.depth", "1",
        "--model.heads", "2", "--model.head_dim", "8", "--model.mlp_dim", "32", "--model.dropout", "0.1",
        "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.logger", "false"]  # fmt: skip


def checkpoints_every(steps: int, dirpath) -> list[str]:
    return ["--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            f"--trainer.callbacks.every_n_train_steps={steps}", "--trainer.callbacks.save_top_k=-1",
            f"--trainer.callbacks.dirpath={dirpath}"]  # fmt: skip


@pytest.fixture(scope="module")
def fit_args(wall_data, tmp_path_factory):
    enc = tmp_path_factory.mktemp("enc") / "enc"
    torch.manual_seed(0)
    ConvAEEncoder(embed_dim=16, width=8).save_pretrained(enc)
    return [*TINY, "--data.root", str(wall_data), "--model.encoder_path", str(enc)]


@pytest.fixture(scope="module")
def uninterrupted(fit_args, tmp_path_factory):
    """The reference run, writing a checkpoint every 2 steps (step 10 ends epoch 1, the others are mid-epoch)."""
    root = tmp_path_factory.mktemp("full")
    assert (
        wm(["fit", *fit_args, "--trainer.default_root_dir", str(root), *checkpoints_every(2, root / "ck")])
        == 0
    )
    return root


def assert_same_model(a, b) -> None:
    ma, mb = (
        json.loads((a / "model/metrics.json").read_text()),
        json.loads((b / "model/metrics.json").read_text()),
    )
    assert ma["global_step"] == mb["global_step"] == 15
    ta, tb = load_file(a / "model/model.safetensors"), load_file(b / "model/model.safetensors")
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), f"tensor {k} differs after resume"


@pytest.mark.parametrize("step", [4, 10, 12])
def test_resume_from_a_checkpoint_reaches_the_same_step_and_weights(fit_args, uninterrupted, tmp_path, step):
    (ckpt,) = (uninterrupted / "ck").glob(f"*-step={step}.ckpt")
    assert wm(["fit", *fit_args, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", str(ckpt)]) == 0
    assert_same_model(uninterrupted, tmp_path)


def test_kill_9_during_fit_then_resume_from_the_last_checkpoint(fit_args, uninterrupted, tmp_path, sub_env):
    ck = tmp_path / "ck"
    args = [
        "fit",
        *fit_args,
        "--trainer.default_root_dir",
        str(tmp_path / "killed"),
        *checkpoints_every(1, ck),
    ]
    proc = subprocess.Popen(command("worldmodels", *args), env=sub_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while len(list(ck.glob("*.ckpt"))) < 7 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model").exists(), "the fit finished before it was killed"
    last = max(ck.glob("*.ckpt"), key=lambda p: int(p.stem.split("step=")[1]))
    assert (
        wm(
            [
                "fit",
                *fit_args,
                "--trainer.default_root_dir",
                str(tmp_path / "resumed"),
                "--ckpt_path",
                str(last),
            ]
        )
        == 0
    )
    assert_same_model(uninterrupted, tmp_path / "resumed")
