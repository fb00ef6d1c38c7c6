"""Encoders: DINOv2 from local files (timm and official layouts), missing weights, conv_ae, feature cache."""

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from worldmodels.data.collect import collect
from worldmodels.encoders import build_encoder
from worldmodels.encoders.cache import build_feature_cache, cache_key, prepare_frames
from worldmodels.encoders.conv_ae import ConvAEEncoder
from worldmodels.encoders.dinov2 import DinoV2Encoder

NAME = "vit_small_patch14_dinov2"


@pytest.fixture(scope="module")
def reference_vit():
    torch.manual_seed(0)
    return timm.create_model(NAME, pretrained=False, img_size=28, num_classes=0).eval()


@pytest.mark.parametrize("layout", ["timm-safetensors", "official-pth"])
def test_dinov2_loads_local_weights_and_features_match(tmp_path, reference_vit, layout):
    sd = {k: v.clone() for k, v in reference_vit.state_dict().items()}
    if layout == "timm-safetensors":
        path = tmp_path / "w.safetensors"
        save_file(sd, path)
    else:  # the official DINOv2 checkpoint has a mask token that timm drops
        sd["mask_token"] = torch.zeros(1, 384)
        path = tmp_path / "w.pth"
        torch.save(sd, path)
    enc = DinoV2Encoder(NAME, weights=str(path), img_size=28).eval()
    images = torch.rand(2, 3, 3, 28, 28)
    tokens = enc(images)
    assert tokens.shape == (2, 3, 4, 384) and enc.num_patches(28, 28) == 4
    with torch.no_grad():
        ref = reference_vit.forward_features((images.flatten(0, 1) - 0.5) / 0.5)[:, 1:]
    torch.testing.assert_close(tokens.flatten(0, 1), ref)
    assert "random" not in enc.name


def test_dinov2_missing_weights_fail_at_once_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    with pytest.raises(FileNotFoundError, match="weights=PATH"):
        DinoV2Encoder(NAME, weights=str(tmp_path / "nope.safetensors"), img_size=28)
    with pytest.raises(FileNotFoundError, match="HF cache"):
        DinoV2Encoder(NAME, weights="hf-cache", img_size=28)


def test_random_weights_only_by_name_and_reported():
    assert "random-weights" in DinoV2Encoder(NAME, weights="random", img_size=28).name


def test_image_size_must_divide_by_patch():
    with pytest.raises(ValueError, match="divisible"):
        DinoV2Encoder(NAME, weights="random", img_size=30)
    with pytest.raises(ValueError, match="not divisible by the patch size 8"):
        ConvAEEncoder()(torch.zeros(1, 1, 3, 60, 60))
    with pytest.raises(ValueError, match="allowed values"):
        build_encoder("resnet")


def test_conv_ae_roundtrip_and_decoder(tmp_path):
    enc = ConvAEEncoder(embed_dim=16, width=8).eval()
    enc.save_pretrained(tmp_path / "e")
    loaded = build_encoder("conv_ae", path=tmp_path / "e").eval()
    x = torch.rand(1, 2, 3, 64, 64)
    torch.testing.assert_close(enc(x), loaded(x), atol=0, rtol=0)
    assert enc(x).shape == (1, 2, 64, 16) and enc.weights_hash == loaded.weights_hash
    assert enc.decode_tokens(enc(x)).shape == (1, 2, 3, 64, 64)


def test_feature_cache_equals_on_the_fly_features_and_resumes(tmp_path):
    store = collect("worldmodels/Wall-v0", policy="random", episodes=3, out=tmp_path / "d", progress=False)
    enc = ConvAEEncoder(embed_dim=16, width=8).eval()
    key = build_feature_cache(store, enc, 64, batch_size=7, progress=False)
    assert key == cache_key(enc, 64) and all(store.has_derived(key, e) for e in range(3))
    for e in range(3):
        frames = prepare_frames(store.read(e, "pixels"), 64)
        with torch.no_grad():
            direct = enc(frames[None])[0].numpy()
        cached = np.asarray(store.read_derived(key, e))
        assert cached.dtype == np.float16 and cached.shape == direct.shape
        # equal up to the cache's float16 storage (batch composition changes float32 rounding slightly)
        np.testing.assert_allclose(cached.astype(np.float32), direct, rtol=2e-3, atol=2e-3)
    mtime = (store.root / "derived" / key / "ep_000001.npy").stat().st_mtime_ns
    build_feature_cache(store, enc, 64, progress=False)  # resumable: finished episodes are skipped
    assert (store.root / "derived" / key / "ep_000001.npy").stat().st_mtime_ns == mtime
