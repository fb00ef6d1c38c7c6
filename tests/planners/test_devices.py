"""The same work on every device this machine has: the CPU always, CUDA when there is one.

CI (no GPU) runs the CPU half; on a GPU machine ``pytest tests/planners/test_devices.py`` runs both, so a tensor
left on the CPU, a CPU generator fed to CUDA sampling, or a tool that silently stays on the CPU fails here.
"""

from __future__ import annotations

import json

import lightning.pytorch  # noqa: F401  (imported here, so its log handlers bind to the session's stderr)
import numpy as np
import pytest
import torch
from planners_testing import PointModel, point_state, tiny_wall_latent_model

from planners import PLANNERS, GoalDistance, build_planner, make_cost_fn
from planners.cli import main as planners_main
from planners.evaluate import EvalOptions, evaluate
from worldmodels.cli import main as wm
from worldmodels.data.collect import collect
from worldmodels.devices import resolve_device
from worldmodels.encoders import build_encoder
from worldmodels.encoders.cache import build_feature_cache, prepare_frames
from worldmodels.encoders.conv_ae import ConvAEEncoder
from worldmodels.models.latent_world_model import LatentWorldModel

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
ENV = "worldmodels/Wall-v0"
FAST = {
    "cem": {"samples": 200, "topk": 20, "iterations": 20},
    "icem": {"samples": 200, "topk": 20, "iterations": 12},
    "mppi": {"samples": 200, "iterations": 30, "temperature": 0.05, "noise_std": 0.3},
    "gd": {"steps": 200, "lr": 0.05, "restarts": 4},
}


@pytest.fixture(scope="module")
def wall_data(tmp_path_factory):
    """``root/data``: 4 noisy-expert Wall episodes; ``root/enc``: a saved ``ConvAEEncoder``."""
    root = tmp_path_factory.mktemp("wall")
    collect(ENV, policy="noisy-expert", episodes=4, out=root / "data", progress=False)
    ConvAEEncoder(embed_dim=16, width=8).save_pretrained(root / "enc")
    return root


def test_resolve_device_auto_and_one_line_errors():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device 'gpu0': not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device 'cuda': CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="--x 'cuda:99'"):
        resolve_device("cuda:99", flag="--x")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", PLANNERS)
def test_every_planner_reaches_the_point_goal_on(device, name):
    """x_{t+1} = x_t + a_t, goal 3.5 units away in 5 steps: the plan, its cost and the sampling stay on
    ``device`` (the generator is that device's, as ``planners eval`` makes it)."""
    model = PointModel(dim=2, device=device)
    planner = build_planner(name, **FAST[name])
    cost_fn = make_cost_fn(model, point_state([0.0, 0.0], device=device),
                           GoalDistance(point_state([3.5, -2.0], device=device)), chunk_size=64,
                           differentiable=planner.differentiable)  # fmt: skip
    low, high = model.action_bounds()
    res = planner.plan(cost_fn, horizon=5, action_dim=2, low=low, high=high,
                       generator=torch.Generator(device=device).manual_seed(0))  # fmt: skip
    assert res.actions.device.type == device
    torch.testing.assert_close(res.actions.sum(0).cpu(), torch.tensor([3.5, -2.0]), atol=0.1, rtol=0)
    assert bool((res.actions >= low).all() and (res.actions <= high).all())
    assert res.cost < 5e-3


@pytest.mark.parametrize("device", DEVICES)
def test_latent_model_on_device_matches_the_cpu_and_differentiates(device):
    cpu = tiny_wall_latent_model()
    moved = tiny_wall_latent_model().to(device)
    gen = torch.Generator().manual_seed(0)
    obs = {"pixels": torch.randint(0, 256, (1, 3, 3, 64, 64), dtype=torch.uint8, generator=gen),
           "proprio": torch.randn(1, 3, 2, generator=gen) * 16 + 32}  # fmt: skip
    past = torch.rand(1, 2, 10, generator=gen) * 2 - 1
    actions = torch.rand(6, 5, 10, generator=gen) * 2 - 1
    with torch.no_grad():
        ref = cpu.rollout(cpu.encode(obs, past_actions=past), actions)
        state = moved.encode({k: v.to(device) for k, v in obs.items()}, past_actions=past.to(device))
        fast = moved.rollout(state, actions.to(device))
        slow = moved.rollout_naive(state, actions.to(device))
    assert fast.visual.device.type == device
    # cuDNN runs the encoder's convolutions in TF32 by default (torch.backends.cudnn.allow_tf32)
    tol = 1e-4 if device == "cpu" else 1e-3
    torch.testing.assert_close(fast.visual.cpu(), ref.visual, atol=tol, rtol=tol)
    torch.testing.assert_close(slow.visual.cpu(), ref.visual, atol=tol, rtol=tol)
    torch.testing.assert_close(fast.proprio.cpu(), ref.proprio, atol=tol, rtol=tol)
    # gradient-based planning differentiates through the rollout on the device
    a = actions.to(device).requires_grad_(True)
    moved.rollout(state, a).visual.pow(2).mean().backward()
    assert a.grad is not None and a.grad.device.type == device and bool(torch.isfinite(a.grad).all())
    assert float(a.grad.abs().sum()) > 0
    low, high = moved.action_bounds()
    assert low.device.type == device and high.device.type == device


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_costs_are_float32_and_rank_like_float32(device):
    """``amp="bf16"``: the rollout runs under autocast (bf16 activations), the costs come back float32,
    close to the float32 costs and with the same best candidates."""
    model = tiny_wall_latent_model(seed=1).to(device)
    for head in (model.predictor.visual_head, model.predictor.proprio_head):  # a model that predicts change
        torch.nn.init.normal_(head.weight, std=0.2)
    gen = torch.Generator().manual_seed(0)
    obs = {"pixels": torch.randint(0, 256, (1, 1, 3, 64, 64), dtype=torch.uint8, generator=gen).to(device),
           "proprio": (torch.randn(1, 1, 2, generator=gen) * 16 + 32).to(device)}  # fmt: skip
    goal = {"pixels": torch.randint(0, 256, (1, 1, 3, 64, 64), dtype=torch.uint8, generator=gen).to(device),
            "proprio": (torch.randn(1, 1, 2, generator=gen) * 16 + 32).to(device)}  # fmt: skip
    with torch.no_grad():
        state, objective = model.encode(obs), GoalDistance(model.encode(goal))
    actions = (torch.rand(64, 3, 10, generator=gen) * 2 - 1).to(device)
    full = make_cost_fn(model, state, objective, chunk_size=16)(actions)
    half = make_cost_fn(model, state, objective, chunk_size=16, amp="bf16")(actions)
    assert half.dtype == torch.float32 and half.device.type == device
    assert not torch.equal(half, full)  # autocast did change the arithmetic
    torch.testing.assert_close(half, full, rtol=2e-2, atol=1e-3)
    best_full, best_half = set(full.argsort()[:8].tolist()), set(half.argsort()[:8].tolist())
    assert len(best_full & best_half) >= 6
    with pytest.raises(ValueError, match="amp='fp8'"):
        make_cost_fn(model, state, objective, amp="fp8")


@pytest.mark.parametrize("device", DEVICES)
def test_mpc_evaluation_on_device_and_in_spawned_workers(device, tmp_path):
    """The harness takes the model's device for observations, goal features, bounds and the generator;
    a model on the GPU also plans in spawned workers, with the same results as in one process."""
    model = tiny_wall_latent_model().to(device)

    def options(**kw) -> EvalOptions:
        return EvalOptions(pairs=2, seed=0, mpc=True, horizon=2, execute=1, budget=10, chunk_size=16, videos=0,
                           planner_kwargs={"samples": 16, "topk": 4, "iterations": 2}, progress=False, **kw)  # fmt: skip

    one = evaluate(model, ENV, "cem", options(out=tmp_path / "one"))
    two = evaluate(model, ENV, "cem", options(out=tmp_path / "two", workers=2))
    half = evaluate(model, ENV, "cem", options(out=tmp_path / "half", amp="bf16"))
    assert half.config["amp"] == "bf16" and "amp" not in one.config
    assert json.loads((tmp_path / "half" / "results.json").read_text())["config"]["amp"] == "bf16"
    assert [p.plan_calls for p in one.pairs] == [2, 2]  # 10 env steps / frameskip 5, one action per plan
    for a, b in zip(one.pairs, two.pairs, strict=True):
        assert (a.success, a.env_steps, a.plan_calls) == (b.success, b.env_steps, b.plan_calls)
        np.testing.assert_allclose(a.final_distance, b.final_distance, rtol=1e-5, atol=1e-6)
    assert next(model.parameters()).device.type == device


@pytest.mark.parametrize("device", DEVICES)
def test_feature_cache_on_device_equals_cpu_features(device, tmp_path):
    """DINOv2 (random weights, asked for by name) and conv_ae: caching on ``device`` stores the CPU's
    features, and the encoders come back usable."""
    store = collect(ENV, policy="random", episodes=2, out=tmp_path / "d", progress=False)
    for enc in (ConvAEEncoder(embed_dim=16, width=8), build_encoder("dinov2", weights="random", img_size=56)):
        enc = enc.eval()
        img = 56 if enc.name.startswith("dinov2") else 64
        key = build_feature_cache(store, enc.to(device), img, batch_size=16, progress=False)
        enc.cpu()
        for e in range(2):
            with torch.no_grad():
                direct = enc(prepare_frames(store.read(e, "pixels"), img)[None])[0].numpy()
            cached = np.asarray(store.read_derived(key, e)).astype(np.float32)
            np.testing.assert_allclose(cached, direct, rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_encoder_tools_take_the_device(device, wall_data, tmp_path, capsys):
    enc_dir = tmp_path / "enc"
    args = ["pretrain-encoder", "--data", str(wall_data / "data"), "--out", str(enc_dir), "--steps", "3",
            "--batch-size", "4", "--embed-dim", "8", "--device", device]  # fmt: skip
    assert wm(args) == 0
    assert f"on {device}" in capsys.readouterr().out
    enc = build_encoder("conv_ae", path=enc_dir)
    assert all(torch.isfinite(p).all() for p in enc.parameters())
    assert wm(["cache-features", "--data", str(wall_data / "data"), "--encoder", "conv_ae", "--path", str(enc_dir),
               "--device", device]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 4
    with pytest.raises(SystemExit):
        wm([*args[:-1], "nope"])
    assert "--device 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "accelerator,precision,device",
    [("cpu", "32", "cpu"), pytest.param("gpu", "bf16-mixed", "cuda", marks=CUDA)],
)
def test_fit_on_the_accelerator_then_plan_there(accelerator, precision, device, wall_data, tmp_path, capsys):
    """`worldmodels fit` through Lightning on ``accelerator`` (feature cache built there), then
    `planners eval --device`: the whole main job on one device."""
    fit = tmp_path / "fit"
    args = ["fit", "--model", "worldmodels.training.latent_module.LatentWorldModelModule", "--data", "worldmodels.data.datamodules.FrameWindowDataModule", "--data.root", str(wall_data / "data"), "--model.encoder_path", str(wall_data / "enc"),
            "--model.use_feature_cache", "true", "--trainer.default_root_dir", str(fit),
            "--trainer.accelerator", accelerator, "--trainer.devices", "1", "--trainer.precision", precision,
            "--data.num_hist", "1", "--data.num_pred", "2", "--data.frameskip", "2", "--data.batch_size", "8",
            "--model.width", "32", "--model.depth", "1", "--model.heads", "2", "--model.head_dim", "8",
            "--model.mlp_dim", "32", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
            "--trainer.limit_val_batches", "2", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.logger", "false"]  # fmt: skip
    assert wm(args) == 0
    model = LatentWorldModel.from_pretrained(fit / "model", map_location=device)
    assert next(model.parameters()).device.type == device
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    metrics = json.loads((fit / "model" / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and np.isfinite(metrics["val/mse"])
    out = tmp_path / "eval"
    code = planners_main(["eval", "--model", str(fit / "model"), "--env", ENV, "--planner", "cem", "--mpc",
                          "--pairs", "1", "--samples", "8", "--topk", "2", "--iters", "1", "--horizon", "2",
                          "--budget", "4", "--videos", "0", "--out", str(out), "--no-progress", "--device", device])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "success rate" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["pairs"][0]["env_steps"] <= 4
