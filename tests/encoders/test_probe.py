"""Encoder probe on analytic cases, and the state_ae encoder: interface, save/load, cache, training."""

import numpy as np
import pytest
import torch

from worldmodels import load_pretrained
from worldmodels.data.collect import collect
from worldmodels.encoders import build_encoder
from worldmodels.encoders.base import Encoder
from worldmodels.encoders.cache import build_feature_cache, cache_key
from worldmodels.encoders.cli import pretrain_state_ae
from worldmodels.encoders.probe import probe_encoder, probe_state, probe_tokens, rankdata, spearman
from worldmodels.encoders.state_ae import StateAEEncoder


@pytest.fixture(scope="module")
def wall_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "wall"
    return collect("worldmodels/Wall-v0", policy="noisy-expert", episodes=12, out=out, progress=False)


def test_rank_correlation_known_values():
    np.testing.assert_array_equal(rankdata(np.array([3.0, 1.0, 2.0, 2.0])), [3.0, 0.0, 1.5, 1.5])
    x = np.arange(10.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    assert spearman(x, np.ones(10)) == 0.0


def test_probe_on_tokens_that_are_the_state_and_on_noise():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(400, 3))
    test = np.arange(400) >= 280
    exact = np.zeros((400, 4, 5))
    exact[:, :, :3] = states[:, None, :] / states.std(0)  # every token carries the standardised state
    good = probe_tokens(exact, states, test, pairs=2000)
    assert good["spearman"] > 0.999 and good["r2"] > 0.99
    noise = probe_tokens(rng.normal(size=(400, 4, 5)), states, test, pairs=2000)
    assert abs(noise["spearman"]) < 0.1 and noise["r2"] < 0.1
    with pytest.raises(ValueError, match="must agree"):
        probe_tokens(exact[:10], states, test)


class _CentroidEncoder(Encoder):
    """An analytic encoder: one token, the (row, col) centroid of the red agent's pixels (a known function
    of the Wall state)."""

    patch_size, embed_dim, name = 64, 2, "centroid"

    def encode_frames(self, images):
        red = (images[:, 0] > 0.8) & (images[:, 1] < 0.5)
        rows = torch.arange(images.shape[-2], dtype=torch.float32)[None, :, None]
        cols = torch.arange(images.shape[-1], dtype=torch.float32)[None, None, :]
        n = red.sum((1, 2)).clamp(min=1)
        return torch.stack([(red * cols).sum((1, 2)) / n, (red * rows).sum((1, 2)) / n], -1)[:, None]


class _ConstantEncoder(_CentroidEncoder):
    name = "constant"

    def encode_frames(self, images):
        return torch.zeros(images.shape[0], 1, 2)


def test_probe_encoder_on_an_analytic_encoder(wall_store):
    good = probe_encoder(_CentroidEncoder(), wall_store, frames=300, pairs=2000)
    assert good["env"] == "worldmodels/Wall-v0" and good["encoder"] == "centroid"
    assert good["spearman"] > 0.95 and good["r2"] > 0.95, good
    bad = probe_encoder(_ConstantEncoder(), wall_store, frames=300, pairs=2000)
    assert bad["spearman"] == 0.0 and bad["r2"] < 0.05


def test_probe_state_per_env():
    s = np.array([[0.3, -0.2, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0]])
    reacher = probe_state("worldmodels/Reacher-v0", s)
    np.testing.assert_allclose(reacher, [[np.cos(0.3), np.sin(0.3), np.cos(0.1), np.sin(0.1)]])
    assert probe_state("worldmodels/WallRandom-v0", np.zeros((2, 5))).shape == (2, 5)
    assert probe_state("worldmodels/PushT-v0", np.zeros((1, 10))).shape == (1, 6)
    with pytest.raises(ValueError, match="no visible-state definition"):
        probe_state("CartPole-v1", np.zeros((1, 4)))


def test_state_ae_interface_roundtrip_and_cache(tmp_path, wall_store, one_torch_thread):
    torch.manual_seed(0)
    enc = StateAEEncoder(code_dim=2, embed_dim=16, width=8).eval()
    x = torch.rand(2, 3, 3, 64, 64)
    tokens = enc(x)
    assert tokens.shape == (2, 3, 64, 16) and enc.num_patches(64, 64) == 64
    # the last code_dim channels are the (scaled) code, the same in every patch
    _, code = enc.encode_with_code(x.flatten(0, 1))
    torch.testing.assert_close(tokens.flatten(0, 1)[:, 5, -2:], code * enc.code_scale)
    torch.testing.assert_close(tokens[..., 0, -2:], tokens[..., 63, -2:])
    assert enc.decode_tokens(tokens).shape == (2, 3, 3, 64, 64)
    enc.save_pretrained(tmp_path / "e")
    for loaded in (build_encoder("state_ae", path=tmp_path / "e"), load_pretrained(tmp_path / "e")):
        assert isinstance(loaded, StateAEEncoder)
        torch.testing.assert_close(loaded.eval()(x), tokens, atol=0, rtol=0)
        assert loaded.weights_hash == enc.weights_hash
    key = build_feature_cache(wall_store, enc, 64, progress=False)
    assert key == cache_key(enc, 64) and key.startswith("features/state_ae-d16-c2-")
    # the code scale is a weight in the latent distance only: a rescaled copy decodes the same images
    big = enc.with_code_scale(8.0)
    big_tokens = big(x)
    torch.testing.assert_close(big_tokens[..., :-2], tokens[..., :-2])
    torch.testing.assert_close(big_tokens[..., -2:], tokens[..., -2:] * 4.0)
    torch.testing.assert_close(big.decode_tokens(big_tokens), enc.decode_tokens(tokens), atol=1e-5, rtol=1e-5)
    assert big.name != enc.name and big.config["decoder_code_scale"] == enc.code_scale
    with pytest.raises(ValueError, match="built for 64x64"):
        enc(torch.zeros(1, 1, 3, 32, 32))
    with pytest.raises(ValueError, match="local channels"):
        StateAEEncoder(code_dim=10, embed_dim=16)


def test_state_ae_training_learns_the_state(wall_store, one_torch_thread):
    """A short run: the state code follows the agent position on held-out frames far better than chance."""
    enc = pretrain_state_ae(wall_store, steps=60, batch_size=16, embed_dim=16, progress=False)
    assert enc.code_dim == 2 and not enc.training
    res = probe_encoder(enc, wall_store, frames=300, pairs=2000)
    assert res["spearman"] > 0.5, res
    with pytest.raises(ValueError, match="'state' is not in the dataset"):
        pretrain_state_ae(_NoState(wall_store), steps=1)


class _NoState:
    """A store view without the ``state`` key."""

    def __init__(self, store):
        self._store = store
        self.root = store.root
        self.keys = tuple(k for k in store.keys if k != "state")


def test_pretrain_encoder_cli_patch_size_option(wall_store, tmp_path, one_torch_thread):
    """``--num-down 4``: 16-pixel patches, a 4 x 4 token grid at 64 px, through the CLI, saved and reloaded;
    the patch size is in the name (the feature-cache key)."""
    from worldmodels.encoders.cli import pretrain_main

    for kind in ("conv_ae", "state_ae"):
        out = tmp_path / kind
        args = ["--data", str(wall_store.root), "--encoder", kind, "--out", str(out), "--steps", "2",
                "--batch-size", "4", "--embed-dim", "16", "--num-down", "4", "--device", "cpu"]  # fmt: skip
        assert pretrain_main(args) == 0
        enc = build_encoder(kind, path=str(out))
        assert enc.patch_size == 16 and enc.name.endswith("-p16") and enc.num_patches(64, 64) == 16
        tokens = enc(torch.rand(1, 2, 3, 64, 64))
        assert tokens.shape == (1, 2, 16, 16)
        assert enc.decode_tokens(tokens).shape == (1, 2, 3, 64, 64)
    with pytest.raises(SystemExit):
        pretrain_main(["--data", str(wall_store.root), "--out", str(tmp_path / "x"), "--num-down", "0"])
