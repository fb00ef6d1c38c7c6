"""Latent SynthER on Wall: features of a pixel dataset as transitions, and the world-model check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.cli import main as synth
from synth.latent import latent_transitions, world_model_check
from worldmodels.data.store import EpisodeStore


@pytest.fixture(scope="module")
def wall(tmp_path_factory):
    from worldmodels.data.collect import collect

    root = tmp_path_factory.mktemp("wall") / "wall"
    collect("worldmodels/Wall-v0", policy="noisy-expert", episodes=6, out=root, env_kwargs={"img_size": 32},
            progress=False)  # fmt: skip
    return root


def test_proprio_and_pooled_transitions(wall, tmp_path):
    store = EpisodeStore.open(wall)
    t = latent_transitions(store)
    n = int(store.episode_lengths.sum())
    assert t["observations"].shape == (n, 2) and t["actions"].shape[0] == n
    np.testing.assert_array_equal(t["next_observations"][0], store.read(0, "proprio")[1])
    from worldmodels.encoders.conv_ae import ConvAEEncoder

    ConvAEEncoder(embed_dim=8, width=8, num_down=2).save_pretrained(tmp_path / "enc")
    p = latent_transitions(store, np.array([0, 1]), "pooled", str(tmp_path / "enc"))
    assert p["observations"].shape == (int(store.episode_lengths[:2].sum()), 8)
    with pytest.raises(ValueError, match="needs encoder_path"):
        latent_transitions(store, features="pooled")


def test_world_model_check_prefers_faithful_data_over_corrupted(wall):
    t = latent_transitions(EpisodeStore.open(wall))
    test = {k: v[:50] for k, v in t.items()}
    real = {k: v[50:] for k, v in t.items()}
    rng = np.random.default_rng(0)
    wrong = dict(real, next_observations=real["next_observations"] + rng.normal(0, 1.0, real["observations"].shape)
                 .astype(np.float32))  # fmt: skip
    faithful = world_model_check(real, real, test, steps=80, seeds=[0])
    corrupted = world_model_check(real, wrong, test, steps=80, seeds=[0])
    assert corrupted["ratio"] > 1.5 and faithful["ratio"] < corrupted["ratio"]


def test_latent_cli_end_to_end(wall, tmp_path, one_torch_thread):
    rc = synth(["latent", "--data", str(wall), "--out", str(tmp_path / "l"), "--fit-steps", "10", "--width", "32",
                "--blocks", "1", "--wm-steps", "20", "--seeds", "0", "--sampler", "steps=3"])  # fmt: skip
    assert rc == 0
    report = json.loads((tmp_path / "l" / "check.json").read_text())
    assert report["real"] > 0 and report["real+synthetic"] > 0 and isinstance(report["no_worse"], bool)
