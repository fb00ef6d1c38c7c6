"""Latent predictor and world model: block-causal mask, KV-cached rollout, exact save/load, API."""

import json

import pytest
import torch

from worldmodels.api import WorldModel
from worldmodels.encoders.conv_ae import ConvAEEncoder
from worldmodels.models import latent_predictor
from worldmodels.models.latent_predictor import LatentPredictor, block_causal_mask
from worldmodels.models.latent_world_model import LatentState, LatentWorldModel

PRED = dict(num_patches=16, visual_dim=8, proprio_dim=2, action_dim=4, max_frames=4, width=32, depth=2, heads=2,
            head_dim=8, mlp_dim=64)  # fmt: skip


def tiny_model(seed: int = 0, **pred) -> LatentWorldModel:
    torch.manual_seed(seed)
    enc = ConvAEEncoder(embed_dim=8, width=8, num_down=3)  # 32 px -> 4 x 4 patches
    stats = dict(proprio_mean=torch.tensor([1.0, -1.0]), proprio_std=torch.tensor([2.0, 0.5]),
                 action_mean=torch.zeros(4), action_std=torch.full((4,), 0.5))  # fmt: skip
    return LatentWorldModel(enc, {"name": "conv_ae", "config": enc.config}, {**PRED, **pred}, stats, frameskip=2, num_hist=1,
                            img_size=32, env_id="worldmodels/Wall-v0").eval()  # fmt: skip


def test_block_causal_mask_pattern():
    m = block_causal_mask(3, 2)
    assert m.shape == (6, 6)
    assert m[0, 1] and not m[0, 2] and m[5, 0] and m[2, 3] and not m[3, 4]


def test_changing_a_later_frame_never_changes_an_earlier_prediction():
    torch.manual_seed(0)
    pred = LatentPredictor(**PRED).eval()
    v, p, a = torch.randn(2, 4, 16, 8), torch.randn(2, 4, 2), torch.randn(2, 4, 4)
    out_v, out_p = pred(v, p, a)
    v2, p2, a2 = v.clone(), p.clone(), a.clone()
    v2[:, 2:] += 5.0
    p2[:, 2:] -= 3.0
    a2[:, 2:] *= -1
    new_v, new_p = pred(v2, p2, a2)
    torch.testing.assert_close(new_v[:, :2], out_v[:, :2])
    torch.testing.assert_close(new_p[:, :2], out_p[:, :2])
    assert not torch.allclose(new_v[:, 2:], out_v[:, 2:])


@pytest.mark.parametrize("per_frame_min_tokens", [0, 10**6])
@pytest.mark.parametrize("frames", [1, 2, 4])
def test_block_causal_attention_paths_equal_the_masked_reference(frames, per_frame_min_tokens, monkeypatch):
    """The forward's block-causal attention (one unmasked call per query frame, or with autograd and small
    frames one fused masked call) equals the explicit-mask reference over all tokens, values and gradients
    (eval mode: no dropout); so does a cached step of several new frames."""
    monkeypatch.setattr(latent_predictor, "PER_FRAME_MIN_TOKENS", per_frame_min_tokens)
    torch.manual_seed(0)
    pred = LatentPredictor(**PRED, dropout=0.1).eval()
    v, p, a = torch.randn(3, frames, 16, 8), torch.randn(3, frames, 2), torch.randn(3, frames, 4)
    fast, ref = pred(v, p, a), pred(v, p, a, reference=True)
    torch.testing.assert_close(fast[0], ref[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast[1], ref[1], atol=1e-6, rtol=1e-5)
    params = list(pred.parameters())
    g_fast = torch.autograd.grad(fast[0].square().sum() + fast[1].square().sum(), params)
    g_ref = torch.autograd.grad(ref[0].square().sum() + ref[1].square().sum(), params)
    for x, y in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)
    if frames > 1:  # one cached frame, then the rest at once
        _, _, cache = pred.step(v[:, :1], p[:, :1], a[:, :1], None, capacity=frames)
        sv, sp, _ = pred.step(v[:, 1:], p[:, 1:], a[:, 1:], cache)
        torch.testing.assert_close(sv, ref[0][:, 1:], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(sp, ref[1][:, 1:], atol=1e-6, rtol=1e-5)


def test_training_dropout_keeps_the_block_causal_pattern():
    """With attention dropout active (training), a later frame still never changes an earlier prediction."""
    pred = LatentPredictor(**PRED, dropout=0.5).train()
    v, p, a = torch.randn(2, 3, 16, 8), torch.randn(2, 3, 2), torch.randn(2, 3, 4)
    torch.manual_seed(1)
    out_v, _ = pred(v, p, a)
    v2 = v.clone()
    v2[:, 2] += 5.0
    torch.manual_seed(1)
    new_v, _ = pred(v2, p, a)
    torch.testing.assert_close(new_v[:, :2], out_v[:, :2])
    assert not torch.allclose(new_v[:, 2], out_v[:, 2])


def test_residual_predictor_starts_at_copy_last_and_learns_a_change():
    torch.manual_seed(0)
    pred = LatentPredictor(**PRED, residual=True)
    v, p, a = torch.randn(2, 3, 16, 8), torch.randn(2, 3, 2), torch.randn(2, 3, 4)
    out_v, out_p = pred(v, p, a)
    torch.testing.assert_close(out_v, v)  # zero-initialised heads: next = current
    torch.testing.assert_close(out_p, p)
    target_v, target_p = v + 1.0, p - 0.5
    opt = torch.optim.Adam(pred.parameters(), lr=1e-2)
    for _ in range(50):
        out_v, out_p = pred(v, p, a)
        loss = torch.nn.functional.mse_loss(out_v, target_v) + torch.nn.functional.mse_loss(out_p, target_p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize("history,residual", [(1, False), (3, False), (3, True)])
def test_kv_cached_rollout_equals_full_recomputation(history, residual):
    model = tiny_model(residual=residual)
    if residual:  # non-zero heads, so the residual path is exercised
        for head in (model.predictor.visual_head, model.predictor.proprio_head):
            torch.nn.init.normal_(head.weight, std=0.1)
    px = torch.randint(0, 256, (1, history, 3, 32, 32), dtype=torch.uint8)
    past = torch.randn(1, history - 1, 4) if history > 1 else None
    state = model.encode({"pixels": px, "proprio": torch.randn(1, history, 2)}, past_actions=past)
    actions = torch.randn(5, 6, 4)  # horizon 6 > max_frames: the context slides
    with torch.no_grad():
        fast, slow = model.rollout(state, actions), model.rollout_naive(state, actions)
    assert fast.visual.shape == (5, 6, 16, 8) and fast.proprio.shape == (5, 6, 2)
    torch.testing.assert_close(fast.visual, slow.visual, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.proprio, slow.proprio, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_state", [False, True])
def test_preallocated_cache_rollout_and_its_gradient_equal_full_recomputation(batch_state):
    """The KV cache is grown in place (a buffer with room for the whole rollout, also when the state already
    has the candidates' batch); with autograd recording it concatenates, and gradients match the naive path."""
    model = tiny_model(residual=True)
    for head in (model.predictor.visual_head, model.predictor.proprio_head):
        torch.nn.init.normal_(head.weight, std=0.1)
    b = 4 if batch_state else 1
    px = torch.randint(0, 256, (b, 2, 3, 32, 32), dtype=torch.uint8)
    state = model.encode({"pixels": px, "proprio": torch.randn(b, 2, 2)}, past_actions=torch.randn(b, 1, 4))
    actions = torch.randn(4, 2, 4)  # 2 history + 2 imagined frames fit max_frames=4: no sliding
    with torch.no_grad():
        fast, slow = model.rollout(state, actions), model.rollout_naive(state, actions)
    torch.testing.assert_close(fast.visual, slow.visual, atol=1e-5, rtol=1e-5)
    a1, a2 = actions.clone().requires_grad_(True), actions.clone().requires_grad_(True)
    model.rollout(state, a1).visual.square().sum().backward()
    model.rollout_naive(state, a2).visual.square().sum().backward()
    torch.testing.assert_close(a1.grad, a2.grad, atol=1e-4, rtol=1e-4)


def test_broadcast_state_matches_repeated_state():
    model = tiny_model()
    state = model.encode({"pixels": torch.randint(0, 256, (1, 1, 3, 32, 32), dtype=torch.uint8),
                          "proprio": torch.randn(1, 1, 2)})  # fmt: skip
    actions = torch.randn(3, 2, 4)
    with torch.no_grad():
        a = model.rollout(state, actions)
        b = model.rollout(
            LatentState(state.visual.repeat(3, 1, 1, 1), state.proprio.repeat(3, 1, 1)), actions
        )
    torch.testing.assert_close(a.visual, b.visual)


def test_save_load_is_exact(tmp_path):
    model = tiny_model(seed=3)
    model.save_pretrained(tmp_path / "m")
    loaded = LatentWorldModel.from_pretrained(tmp_path / "m")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    state = model.encode({"pixels": torch.randint(0, 256, (1, 1, 3, 32, 32), dtype=torch.uint8),
                          "proprio": torch.randn(1, 1, 2)})  # fmt: skip
    actions = torch.randn(2, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(
            model.rollout(state, actions).visual, loaded.rollout(state, actions).visual, atol=0, rtol=0
        )


def test_loading_another_architecture_is_a_clear_error(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["predictor"]["depth"] = 3
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not match the architecture"):
        LatentWorldModel.from_pretrained(tmp_path / "m")
    cfg["type"] = "SomethingElse"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        ValueError, match=r"type 'SomethingElse' is not known; known types: .*LatentWorldModel"
    ):
        LatentWorldModel.from_pretrained(tmp_path / "m")
    cfg["type"] = "conv_ae"
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown field 'encoder' for ConvAEEncoder"):
        LatentWorldModel.from_pretrained(tmp_path / "m")


def test_planning_api_bounds_and_env_actions():
    model = tiny_model()
    assert isinstance(model, WorldModel)
    low, high = model.action_bounds()
    torch.testing.assert_close(low, torch.full((4,), -2.0))  # (-1 - 0) / 0.5
    env = model.to_env_actions(torch.stack([low, high]))
    assert env.shape == (4, 2)
    torch.testing.assert_close(env, torch.tensor([[-1.0, -1.0]] * 2 + [[1.0, 1.0]] * 2))


def test_image_size_mismatch_is_rejected():
    model = tiny_model()
    with pytest.raises(ValueError, match="expects 32"):
        model.encode(
            {"pixels": torch.zeros(1, 1, 3, 64, 64, dtype=torch.uint8), "proprio": torch.zeros(1, 1, 2)}
        )
