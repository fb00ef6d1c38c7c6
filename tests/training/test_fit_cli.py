"""`worldmodels fit|validate` through the Lightning CLI on a tiny real Wall dataset."""

import subprocess
import sys

import pytest

from worldmodels.cli import main as wm
from worldmodels.models.latent_world_model import LatentWorldModel

TINY = ["--model", "worldmodels.training.latent_module.LatentWorldModelModule", "--data", "worldmodels.data.datamodules.FrameWindowDataModule", "--data.num_hist", "1", "--data.num_pred", "2", "--data.frameskip", "2", "--data.batch_size", "8",
        "--model.width", "32", "--model.depth", "1", "--model.heads", "2", "--model.head_dim", "8",
        "--model.mlp_dim", "32", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger", "false"]  # fmt: skip


def test_fit_writes_a_loadable_model_and_resumes(wall_data, tmp_path):
    args = [*TINY, "--data.root", str(wall_data / "data"), "--model.encoder_path", str(wall_data / "enc"),
            "--trainer.default_root_dir", str(tmp_path / "fit")]  # fmt: skip
    assert wm(["fit", *args, "--trainer.enable_checkpointing", "true"]) == 0
    model = LatentWorldModel.from_pretrained(tmp_path / "fit" / "model")
    assert model.frameskip == 2 and model.action_dim == 4 and model.predictor.max_frames == 3
    metrics = (tmp_path / "fit" / "model" / "metrics.json").read_text()
    assert "val/mse" in metrics and "val/copy_last_mse" in metrics
    ckpts = sorted((tmp_path / "fit").rglob("*.ckpt"))
    assert ckpts, "a Lightning checkpoint is written for resume"
    resumed = ["--trainer.default_root_dir", str(tmp_path / "fit2"), "--ckpt_path", str(ckpts[-1])]
    assert wm(["fit", *args, *resumed, "--trainer.max_epochs", "2"]) == 0
    assert wm(["validate", *args, "--ckpt_path", str(ckpts[-1])]) == 0


def test_print_config_round_trips(wall_data, tmp_path):
    base = [sys.executable, "-m", "worldmodels.cli"]
    args = [*TINY, "--data.root", str(wall_data / "data"), "--model.encoder_path", str(wall_data / "enc")]
    first = subprocess.run(
        [*base, "fit", *args, "--print_config"], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "c.yaml").write_text(first)
    second = subprocess.run([*base, "fit", "-c", str(tmp_path / "c.yaml"), "--print_config"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert first == second and "encoder_path" in first


def test_config_typo_is_named(wall_data):
    proc = subprocess.run([sys.executable, "-m", "worldmodels.cli", "fit", *TINY[:4], "--data.root", str(wall_data / "data"),
                           "--model.encoder_path", "x", "--model.widht", "3"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "widht" in proc.stderr


def test_committed_configs_parse():
    for cfg in ("configs/latent/wall.yaml", "configs/latent/wall_demo.yaml"):
        proc = subprocess.run([sys.executable, "-m", "worldmodels.cli", "fit", "-c", cfg, "--print_config"],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_bf16_autocast_fit_gives_a_finite_float32_model(wall_data, tmp_path):
    import json

    import torch

    args = [*TINY, "--data.root", str(wall_data / "data"), "--model.encoder_path", str(wall_data / "enc"),
            "--trainer.default_root_dir", str(tmp_path / "fit"), "--trainer.precision", "bf16-mixed"]  # fmt: skip
    assert wm(["fit", *args]) == 0
    model = LatentWorldModel.from_pretrained(tmp_path / "fit" / "model")
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    metrics = json.loads((tmp_path / "fit" / "model" / "metrics.json").read_text())
    assert torch.isfinite(torch.tensor(metrics["val/mse"])) and metrics["global_step"] == 3


def test_warmup_cosine_schedule():
    import itertools

    from worldmodels.training.optim import warmup_cosine

    lrs = [warmup_cosine(s, warmup=4, total=20) for s in range(21)]
    assert lrs[0] == 0.25 and lrs[3] == 1.0  # linear warm-up
    assert all(a >= b for a, b in itertools.pairwise(lrs[3:])) and lrs[20] == 0.0  # then monotone decay to 0
    assert abs(lrs[12] - 0.5) < 1e-9  # half-way through the decay


def test_time_aware_cosine_follows_the_clock_when_time_runs_out_first():
    from worldmodels.training.optim import time_aware_warmup_cosine, warmup_cosine

    class Clock:  # what the schedule reads of Lightning's Timer
        def __init__(self, budget):
            self.now, self.budget = 0.0, budget

        def time_elapsed(self, stage):
            return self.now

        def time_remaining(self, stage):
            return None if self.budget is None else max(0.0, self.budget - self.now)

    # no time limit (or no timer): exactly the step schedule
    for timer in (None, Clock(None)):
        fn = time_aware_warmup_cosine(4, 20, timer)
        assert [fn(s) for s in range(21)] == [warmup_cosine(s, 4, 20) for s in range(21)]
    # 100 s budget; the warm-up ends at 10 s; steps are slow, so the clock leads the decay
    clock = Clock(100.0)
    fn = time_aware_warmup_cosine(4, 1000, clock)
    assert fn(0) == 0.25 and fn(3) == 1.0  # warm-up in steps, as before
    clock.now = 10.0
    assert fn(4) == 1.0  # decay starts where the warm-up ended
    clock.now = 55.0
    assert abs(fn(10) - 0.5) < 1e-9  # half the remaining time used: half-way, whatever the step count
    clock.now = 100.0
    assert fn(11) < 1e-12  # the time limit: lr 0 at step 11 of 1000
    # fast steps: the step count leads, as the plain schedule
    clock = Clock(1e6)
    fn = time_aware_warmup_cosine(0, 20, clock)
    assert fn(0) == 1.0 and abs(fn(10) - 0.5) < 1e-9


@pytest.mark.parametrize("schedule", ["cosine", "cosine_time"])
def test_cosine_fit_with_residual_predictor_decays_lr_to_zero(wall_data, tmp_path, schedule):
    """Both cosine schedules end at lr 0 when the step limit comes first (``cosine_time`` reads the Timer
    that ``max_time`` adds)."""
    import json

    args = [*TINY, "--data.root", str(wall_data / "data"), "--model.encoder_path", str(wall_data / "enc"),
            "--trainer.default_root_dir", str(tmp_path / "fit"), "--model.residual", "true",
            "--model.lr_schedule", schedule, "--model.warmup_steps", "1", "--trainer.max_steps", "3",
            "--model.rollout_passes", "2", "--trainer.max_time", "00:00:30:00"]  # fmt: skip
    assert wm(["fit", *args]) == 0
    model = LatentWorldModel.from_pretrained(tmp_path / "fit" / "model")
    assert model.predictor.residual
    metrics = json.loads((tmp_path / "fit" / "model" / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and metrics["lr"] == 0.0
    assert metrics["val/rollout_mse"] > 0 and "val/rollout_proprio" in metrics  # the push-forward loss ran


def test_unknown_lr_schedule_is_named(wall_data):
    proc = subprocess.run([sys.executable, "-m", "worldmodels.cli", "fit", *TINY[:4], "--data.root", str(wall_data / "data"),
                           "--model.encoder_path", "x", "--model.lr_schedule", "linear"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "lr_schedule" in proc.stderr and "cosine_time" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "worldmodels.cli", "fit", *TINY[:4], "--data.root", str(wall_data / "data"),
                           "--model.encoder_path", "x", "--model.rollout_passes", "-1"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "rollout_passes=-1" in proc.stderr


def test_pushforward_feeds_the_predictors_own_predictions():
    """``rollout_passes``: after the history, the inputs are earlier passes' (detached) predictions, and the
    loss scores what the predictor makes of them. A stand-in predictor adds 1 to every input frame, so each
    pass's inputs are known in closed form."""
    import torch

    from worldmodels.training.latent_module import LatentWorldModelModule

    calls = []

    def predictor(z, p, a):
        calls.append((z.clone(), p.clone(), torch.is_grad_enabled()))
        return z + 1.0, p + 1.0

    z = torch.arange(6, dtype=torch.float32).repeat_interleave(4).reshape(1, 6, 2, 2) * 10  # frame k = 10 k
    p = torch.arange(6, dtype=torch.float32).reshape(1, 6, 1) * 10
    a = torch.zeros(1, 6, 3)
    for passes, hist in ((1, 1), (2, 1), (2, 2)):
        module = LatentWorldModelModule(encoder_path="unused", rollout_passes=passes)
        module.model = type("Stub", (), {"num_hist": hist, "predictor": staticmethod(predictor)})()
        calls.clear()
        tf_z, tf_p = predictor(z[:, :-1], p[:, :-1], a[:, :-1])
        out = module._pushforward(z, p, a, tf_z, tf_p)
        assert len(calls) == 1 + passes  # the teacher-forced pass, passes - 1 no-grad passes, the scored one
        assert not any(grad for *_, grad in calls[2:-1])
        # input frame k >= hist carries min(k - hist + 1, passes) imagined steps: frame k - s plus s
        k = torch.arange(5)
        s = torch.clamp(k - hist + 1, min=0).clamp(max=passes)
        want = ((k - s) * 10 + s).float()
        torch.testing.assert_close(calls[-1][1][0, :, 0], want)
        torch.testing.assert_close(calls[-1][0][0, :, 0, 0], want)
        target = torch.arange(hist + 1, 6).float() * 10
        err = (want[hist:] + 1 - target) ** 2
        torch.testing.assert_close(out["rollout_proprio"], err.mean())
        torch.testing.assert_close(out["rollout_visual"], err.mean())
