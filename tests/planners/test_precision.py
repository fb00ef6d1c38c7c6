"""Precision chosen by capability: bf16/fp16 only where the hardware runs them natively.

The capability checks (CPU flags, CUDA compute capability) are monkeypatched, so both branches run on any
machine.
"""

from __future__ import annotations

import json

import pytest
import torch

import worldmodels.devices as devices
from worldmodels.devices import choose_precision, native_precision
from worldmodels.training.cli import check_trainer_precision

NO_FLAGS = {"avx2", "fma"}
BF16_FLAGS = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}


def test_cpu_bf16_is_native_only_with_avx512_bf16_or_amx(monkeypatch):
    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_FLAGS)
    native, why = native_precision("bf16", "cpu")
    assert not native and "avx512_bf16" in why and "emulated" in why
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"amx_bf16"})
    assert native_precision("bf16", "cpu") == (True, "this CPU has amx_bf16")
    assert not native_precision("fp16", "cpu")[0]  # bf16 hardware says nothing about fp16
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx512_fp16"})
    assert native_precision("fp16", "cpu")[0]
    with pytest.raises(ValueError, match="amp='fp8'"):
        native_precision("fp8", "cpu")


def test_cuda_needs_tensor_cores_of_the_dtype(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert native_precision("fp16", "cuda")[0]
    native, why = native_precision("bf16", "cuda")
    assert not native and "compute capability 7.5" in why
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert native_precision("bf16", "cuda")[0]


def test_choose_precision_falls_back_with_one_line_or_fails_when_forced(monkeypatch, capsys):
    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_FLAGS)
    assert choose_precision(None, "cpu") is None and choose_precision("none", "cpu") is None
    assert capsys.readouterr().out == ""
    assert choose_precision("bf16", "cpu") is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("--amp bf16: ") and "float32 is used instead" in out[0]
    with pytest.raises(ValueError, match="--amp bf16 --force: this CPU has neither"):
        choose_precision("bf16", "cpu", force=True)
    monkeypatch.setattr(devices, "cpu_flags", lambda: BF16_FLAGS)
    assert choose_precision("bf16", "cpu", force=True) == "bf16"
    assert capsys.readouterr().out == ""


def test_trainer_precision_becomes_float32_where_not_native(monkeypatch, capsys):
    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_FLAGS)
    for precision in ("bf16-mixed", "bf16-true", "16-mixed", 16):
        trainer = {"precision": precision, "accelerator": "cpu"}
        check_trainer_precision(trainer, force=False)
        assert trainer["precision"] == "32-true"
        assert "float32 is used instead" in capsys.readouterr().out
    trainer = {"precision": "32-true", "accelerator": "cpu"}
    check_trainer_precision(trainer, force=True)
    assert trainer["precision"] == "32-true"
    with pytest.raises(ValueError, match=r"--trainer\.precision bf16-mixed --force_precision: "):
        check_trainer_precision({"precision": "bf16-mixed", "accelerator": "cpu"}, force=True)
    monkeypatch.setattr(devices, "cpu_flags", lambda: BF16_FLAGS)
    trainer = {"precision": "bf16-mixed", "accelerator": "cpu"}
    check_trainer_precision(trainer, force=True)
    assert trainer["precision"] == "bf16-mixed"


def test_fit_refuses_forced_bf16_without_native_support(monkeypatch, tmp_path):
    from worldmodels.cli import main as wm

    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_FLAGS)
    args = ["fit", "--model", "worldmodels.training.latent_module.LatentWorldModelModule", "--data",
            "worldmodels.data.datamodules.FrameWindowDataModule", "--data.root", str(tmp_path / "none"),
            "--model.encoder_path", "x", "--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed",
            "--force_precision", "true", "--trainer.default_root_dir", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit, match=r"--trainer\.precision bf16-mixed --force_precision: this CPU"):
        wm(args)


def test_planners_eval_amp_by_capability(monkeypatch, tmp_path, capsys):
    from planners_testing import tiny_wall_latent_model

    from planners.cli import main

    model_dir = tmp_path / "model"
    tiny_wall_latent_model().save_pretrained(model_dir)
    monkeypatch.setattr(devices, "cpu_flags", lambda: NO_FLAGS)
    args = ["eval", "--model", str(model_dir), "--env", "worldmodels/Wall-v0", "--planner", "cem", "--pairs", "1",
            "--samples", "8", "--topk", "2", "--iters", "1", "--horizon", "2", "--budget", "4", "--videos", "0",
            "--no-progress", "--amp", "bf16"]  # fmt: skip
    assert main([*args, "--force"]) == 2
    assert "--amp bf16 --force: this CPU has neither" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "fp32")]) == 0
    assert "--amp bf16: this CPU has neither" in capsys.readouterr().out
    assert "amp" not in json.loads((tmp_path / "fp32" / "results.json").read_text())["config"]
    monkeypatch.setattr(devices, "cpu_flags", lambda: BF16_FLAGS)
    assert main([*args, "--force", "--chunk-size", "auto", "--out", str(tmp_path / "bf16")]) == 0
    config = json.loads((tmp_path / "bf16" / "results.json").read_text())["config"]
    assert config["amp"] == "bf16" and config["chunk_size"] == "auto"
    assert main([*args[:-2], "--force"]) == 2
    assert "--force: only with --amp" in capsys.readouterr().err
