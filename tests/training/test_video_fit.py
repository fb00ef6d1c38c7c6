"""The video world model end to end on a tiny real Wall dataset: `worldmodels fit` -> load -> rollout ->
`planners eval` -> `worldmodels evaluate-rollouts`."""

import json
import subprocess
import sys

import pytest
import torch

from planners.cli import main as planners_main
from worldmodels import load_pretrained
from worldmodels.cli import main as wm
from worldmodels.models.video_diffusion import VideoWorldModel

TINY = ["--model", "worldmodels.training.video_module.VideoWorldModelModule", "--data",
        "worldmodels.data.datamodules.FrameWindowDataModule", "--data.num_hist", "1", "--data.num_pred", "2",
        "--data.frameskip", "2", "--data.batch_size", "4", "--model.channels", "[8, 16]", "--model.norm_groups", "4",
        "--model.cond_dim", "16", "--model.patch", "2", "--model.sampler_steps", "1", "--model.val_sample_batches", "1",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]  # fmt: skip


@pytest.fixture(scope="module")
def fitted(wall_data, tmp_path_factory):
    """``worldmodels fit`` of a tiny video model; returns the fit directory."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    fit = tmp_path_factory.mktemp("video") / "fit"
    assert (
        wm(["fit", *TINY, "--data.root", str(wall_data / "data"), "--trainer.default_root_dir", str(fit)])
        == 0
    )
    torch.set_num_threads(before)
    return fit


def test_fit_rollout_plan(fitted, tmp_path):
    fit = fitted
    model = load_pretrained(fit / "model")
    assert isinstance(model, VideoWorldModel)
    assert (model.img_size, model.num_hist, model.action_dim, model.proprio_dim, model.frameskip) == (
        64,
        1,
        4,
        2,
        2,
    )
    assert model.env_id == "worldmodels/Wall-v0" and model.sampler.steps == 1
    metrics = json.loads((fit / "model" / "metrics.json").read_text())
    assert {"val/loss", "val/psnr", "val/psnr_copy_last"} <= set(metrics)

    pixels = torch.randint(0, 256, (1, 1, 3, 64, 64), dtype=torch.uint8)
    state = model.encode({"pixels": pixels, "proprio": torch.full((1, 1, 2), 30.0)})
    pred = model.rollout(state, torch.zeros(3, 2, 4), generator=torch.Generator().manual_seed(0))
    assert pred.frames.shape == (3, 2, 3, 64, 64) and pred.proprio.shape == (3, 2, 2)

    out = tmp_path / "plan"
    args = ["eval", "--model", str(fit / "model"), "--env", "worldmodels/Wall-v0", "--planner", "cem", "--mpc",
            "--pairs", "1", "--horizon", "2", "--samples", "4", "--topk", "2", "--iters", "1", "--budget", "4",
            "--execute", "2", "--out", str(out), "--no-progress", "--threads", "1"]  # fmt: skip
    assert planners_main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["pairs"][0]["env_steps"] == 4 and res["pairs"][0]["plan_calls"] == 1
    assert (out / "pair_000.mp4").is_file()  # real | imagined (decoded) | goal


def test_evaluate_rollouts(fitted, wall_data, tmp_path, capsys):
    ev = tmp_path / "eval"
    args = ["evaluate-rollouts", "--model", str(fitted / "model"), "--data", str(wall_data / "data"), "--horizon",
            "3", "--episodes", "2", "--videos", "1", "--out", str(ev), "--threads", "1"]  # fmt: skip
    assert wm(args) == 0
    result = json.loads((ev / "results.json").read_text())
    assert [r["step"] for r in result["per_step"]] == [1, 2, 3]
    assert {"video_psnr", "video_ssim", "copy_last_psnr"} <= set(result["per_step"][0])
    assert (ev / "plot.png").is_file() and (ev / "videos" / "episode_000.mp4").is_file()
    assert "| step | env steps | video psnr" in capsys.readouterr().out
    sens = result["action_sensitivity"]  # 2 held-out windows: each gets the other's actions, replayed
    assert {"advantage_db", "last_step_fraction_closer_to_own", "passed"} <= set(sens)


def test_evaluate_rollouts_rejects_a_horizon_that_does_not_fit(wall_data, tmp_path, capsys):
    model = VideoWorldModel(img_size=64, num_hist=1, action_dim=4, proprio_dim=2, frameskip=2,
                            denoiser={"channels": [8, 16], "norm_groups": 4, "cond_dim": 16, "patch": 2},
                            env_id="worldmodels/Wall-v0")  # fmt: skip
    model.save_pretrained(tmp_path / "m")
    args = [
        "evaluate-rollouts",
        "--model",
        str(tmp_path / "m"),
        "--data",
        str(wall_data / "data"),
        "--horizon",
        "40",
    ]
    assert wm(args) == 2
    err = capsys.readouterr().err
    assert "lower --horizon" in err and "frameskip=2" in err


@pytest.mark.slow
def test_committed_video_configs_parse():
    for cfg in ("wall", "wall_gpu", "pointmaze", "pointmaze_gpu"):
        proc = subprocess.run([sys.executable, "-m", "worldmodels.cli", "fit", "-c", f"configs/video/{cfg}.yaml",
                               "--print_config"], capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
