"""The video-diffusion world model: rollout shapes, seeded determinism, exact save/load, bad input, the
world-model roles, and the training losses."""

from __future__ import annotations

import pytest
import torch

from worldmodels import load_pretrained
from worldmodels.api import StochasticWorldModel, WorldModel
from worldmodels.models.video_diffusion import VideoState, VideoWorldModel

TINY = {"channels": [8, 16], "layers_per_block": 1, "cond_dim": 16, "norm_groups": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(num_hist: int = 2, proprio_dim: int = 2, patch: int = 1, **kw) -> VideoWorldModel:
    torch.manual_seed(0)
    stats = {"proprio_mean": torch.tensor([10.0, 20.0])[:proprio_dim], "proprio_std": torch.tensor([2.0, 4.0])[:proprio_dim],
             "action_mean": torch.full((4,), 0.1), "action_std": torch.full((4,), 0.5)}  # fmt: skip
    model = VideoWorldModel(
        img_size=16, num_hist=num_hist, action_dim=4, proprio_dim=proprio_dim, frameskip=2, denoiser={**TINY, "patch": patch},
        sampler={"steps": 2, "sigma_max": 5.0}, feature_pool=4, stats=stats, env_id="worldmodels/Wall-v0", **kw,
    )  # fmt: skip
    with torch.no_grad():  # a zero-initialised output layer would make every frame the same
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def obs(b: int = 1, t: int = 2, size: int = 16, proprio_dim: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"pixels": torch.randint(0, 256, (b, t, 3, size, size), generator=g, dtype=torch.uint8),
            "proprio": torch.randn(b, t, proprio_dim, generator=g)}  # fmt: skip


def test_roles():
    model = tiny_model()
    assert isinstance(model, WorldModel) and isinstance(model, StochasticWorldModel)
    low, high = model.action_bounds()
    assert low.shape == high.shape == (4,)
    torch.testing.assert_close(low, (torch.full((4,), -1.0) - 0.1) / 0.5)
    env = model.to_env_actions(torch.zeros(3, 4))
    assert env.shape == (6, 2) and torch.allclose(env, torch.full((6, 2), 0.1))


@pytest.mark.parametrize("patch", [1, 2])
def test_rollout_shapes_and_broadcast(patch):
    model = tiny_model(patch=patch)
    state = model.encode(obs())
    assert state.frames.shape == (1, 2, 3, 16, 16) and state.proprio.shape == (1, 2, 2)
    assert state.visual.shape == (1, 2, 16, 3)  # (16 / 4)^2 pooled pixels of 3 channels
    actions = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0))
    pred = model.rollout(state, actions, generator=torch.Generator().manual_seed(0))
    assert isinstance(pred, VideoState)
    assert pred.frames.shape == (5, 3, 3, 16, 16) and pred.proprio.shape == (5, 3, 2)
    assert pred.visual.shape == (5, 3, 16, 3) and pred.frames.abs().max() <= 1
    assert model.decode(pred).shape == (5, 3, 3, 16, 16)
    # different actions, different futures (the actions reach the network)
    assert not torch.allclose(pred.frames[0], pred.frames[1])


def test_rollout_is_seeded():
    model = tiny_model()
    state = model.encode(obs())
    actions = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0))
    a = model.rollout(state, actions, generator=torch.Generator().manual_seed(7))
    b = model.rollout(state, actions, generator=torch.Generator().manual_seed(7))
    c = model.rollout(state, actions, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.proprio, b.proprio)
    assert not torch.equal(a.frames, c.frames)


def test_save_load_identity(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    loaded = load_pretrained(tmp_path / "m")
    assert type(loaded) is VideoWorldModel
    assert loaded.get_config() == model.get_config()
    own, other = model.state_dict(), loaded.state_dict()
    assert own.keys() == other.keys() and all(torch.equal(own[k], other[k]) for k in own)
    state = model.encode(obs())
    actions = torch.randn(2, 2, 4, generator=torch.Generator().manual_seed(0))
    a = model.rollout(state, actions, generator=torch.Generator().manual_seed(3))
    b = loaded.rollout(loaded.encode(obs()), actions, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.frames, b.frames) and torch.equal(a.proprio, b.proprio)


def test_bad_input_names_argument_and_shapes():
    model = tiny_model(num_hist=2)
    with pytest.raises(
        ValueError, match=r"obs\['pixels'\] has shape \(1, 1, 3, 16, 16\), expected \(B, T >= num_hist=2"
    ):
        model.encode(obs(t=1))
    with pytest.raises(
        ValueError, match=r"obs\['pixels'\] has shape \(1, 2, 3, 32, 32\), expected .*3, 16, 16\)"
    ):
        model.encode(obs(size=32))
    state = model.encode(obs())
    with pytest.raises(ValueError, match=r"actions has shape \(2, 3, 5\), expected \(B, horizon, 4\)"):
        model.rollout(state, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"past_actions has shape \(1, 1, 3\)"):
        model.encode(obs(), past_actions=torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match=r"obs\['proprio'\] has shape \(1, 2, 3\), expected \(B, 2, 2\)"):
        model.encode(obs(proprio_dim=3))


def test_past_actions_condition_the_rollout():
    model = tiny_model(num_hist=2)
    actions = torch.zeros(1, 1, 4)
    past = torch.ones(1, 1, 4)
    with_past = model.rollout(
        model.encode(obs(), past_actions=past), actions, generator=torch.Generator().manual_seed(0)
    )
    without = model.rollout(model.encode(obs()), actions, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(with_past.frames, without.frames)


def test_losses_and_a_gradient_step_reduce_the_loss():
    model = tiny_model(num_hist=1).train()
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(8, 2, 3, 16, 16, generator=g) * 2 - 1
    actions, proprio = torch.randn(8, 1, 4, generator=g), torch.randn(8, 2, 2, generator=g)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(15):
        out = model.losses(frames, actions, proprio, torch.Generator().manual_seed(1), context_noise_max=0.2)
        assert set(out) == {"denoise", "proprio", "loss"}
        first = first if first is not None else out["loss"].item()
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["loss"].item() < first


def test_without_proprio():
    model = tiny_model(proprio_dim=0)
    state = model.encode({"pixels": obs()["pixels"]})
    pred = model.rollout(state, torch.zeros(2, 2, 4), generator=torch.Generator().manual_seed(0))
    assert pred.proprio is None and pred.frames.shape == (2, 2, 3, 16, 16)


def test_patch_must_divide_the_frame():
    with pytest.raises(ValueError, match="img_size=16 must be divisible by patch=3"):
        VideoWorldModel(img_size=16, num_hist=1, action_dim=2, denoiser={**TINY, "patch": 3})


def test_residual_diffuses_the_change_and_adds_it_back():
    model = tiny_model(num_hist=1, residual=True)
    seen = {}

    class Recorder:
        def loss(self, net, x, generator=None, **cond):
            seen["x"] = x
            return x.sum() * 0

        def sample(self, net, shape, config, generator=None, **kw):
            return torch.full(shape, 0.25)

    model.edm = Recorder()
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 2, 3, 16, 16, generator=g) * 2 - 1
    model.losses(frames, torch.zeros(3, 1, 4), torch.zeros(3, 2, 2), g)
    torch.testing.assert_close(seen["x"], frames[:, 1] - frames[:, 0])
    nxt, _ = model.predict_next(frames[:, :1], torch.zeros(3, 1, 4), torch.zeros(3, 1, 2))
    torch.testing.assert_close(nxt, (frames[:, 0] + 0.25).clamp(-1, 1))
