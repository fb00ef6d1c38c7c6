"""FrameWindowDataModule / TransitionDataModule: window + frameskip indexing (property tests against a
brute-force reference), normalisation, resizing, features, splits and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_testing import synthetic_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worldmodels.data.datamodules import (
    FrameWindowDataModule,
    FrameWindowDataset,
    TransitionDataModule,
    split_episodes,
    window_index,
)


def reference_windows(lengths, episodes, T, fs):
    """Brute force: every (episode, start) whose frames and actions all exist."""
    out = []
    for e in episodes:
        n = int(lengths[e])
        for t in range(n + 1):
            frames_ok = all(t + k * fs <= n for k in range(T))  # frame rows 0..n
            actions_ok = all(t + k * fs + j < n for k in range(T) for j in range(fs))  # action rows 0..n-1
            if frames_ok and actions_ok:
                out.append((e, t))
    return out


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    T=st.integers(1, 5),
    fs=st.integers(1, 5),
)
def test_window_index_matches_brute_force(lengths, T, fs):
    lengths = np.asarray(lengths)
    episodes = np.arange(len(lengths))
    got = [tuple(p) for p in window_index(lengths, episodes, T * fs)]
    assert got == reference_windows(lengths, episodes, T, fs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from worldmodels.data.store import EpisodeStore

    s = EpisodeStore.create(tmp_path_factory.mktemp("dm") / "ds", env_id="test/Synthetic-v0")
    for i, n in enumerate([12, 20, 7, 16, 9]):
        s.append_episode(synthetic_episode(n, seed=i), seed=i)
    return s


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(num_hist=st.integers(1, 3), num_pred=st.integers(1, 2), fs=st.integers(1, 3), data=st.data())
def test_window_contents_match_brute_force(store, num_hist, num_pred, fs, data):
    T = num_hist + num_pred
    ds = FrameWindowDataset(store, np.arange(len(store)), num_hist, num_pred, fs, keys=("pixels", "proprio"))
    assert len(ds) == len(reference_windows(store.episode_lengths, range(len(store)), T, fs))
    i = data.draw(st.integers(0, len(ds) - 1))
    item = ds[i]
    e, t = int(item["episode"]), int(item["start"])
    raw = synthetic_episode(int(store.episode_lengths[e]), seed=e)
    for k in range(T):
        np.testing.assert_array_equal(item["pixels"][k].numpy(), raw["pixels"][t + k * fs].transpose(2, 0, 1))
        np.testing.assert_array_equal(item["proprio"][k].numpy(), raw["proprio"][t + k * fs])
        want = np.concatenate([raw["action"][t + k * fs + j] for j in range(fs)])
        np.testing.assert_array_equal(item["action"][k].numpy(), want)
    assert item["pixels"].dtype == torch.uint8 and item["action"].shape == (T, 2 * fs)


def test_datamodule_batches_normalised(store):
    dm = FrameWindowDataModule(str(store.root), num_hist=2, num_pred=1, frameskip=2, batch_size=4,
                               val_fraction=0.2, img_size=16)  # fmt: skip
    dm.setup("fit")
    assert len(set(dm.train_episodes) & set(dm.val_episodes)) == 0
    assert len(dm.train_episodes) + len(dm.val_episodes) == len(store)
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixels"].shape == (4, 3, 3, 16, 16) and batch["pixels"].dtype == torch.uint8
    assert batch["proprio"].shape == (4, 3, 2) and batch["proprio"].dtype == torch.float32
    assert batch["action"].shape == (4, 3, 4) and batch["episode"].dtype == torch.int64
    s = store.stats()
    assert torch.allclose(dm.stats["action_mean"], torch.as_tensor(np.tile(s["action"]["mean"], 2)).float())
    e, t = int(batch["episode"][0]), int(batch["start"][0])
    raw = synthetic_episode(int(store.episode_lengths[e]), seed=e)
    want = (raw["proprio"][t] - s["proprio"]["mean"]) / s["proprio"]["std"]
    np.testing.assert_allclose(batch["proprio"][0, 0].numpy(), want, rtol=1e-5, atol=1e-5)
    want_a = (np.concatenate(raw["action"][t : t + 2]) - np.tile(s["action"]["mean"], 2)) / np.tile(
        s["action"]["std"], 2
    )
    np.testing.assert_allclose(batch["action"][0, 0].numpy(), want_a, rtol=1e-5, atol=1e-5)
    val = next(iter(dm.val_dataloader()))
    assert set(val["episode"].tolist()) <= set(dm.val_episodes.tolist())


def test_datamodule_two_workers_same_batches(store):
    kw = dict(num_hist=1, num_pred=1, batch_size=8, normalize=False, keys=("proprio",))
    a = FrameWindowDataModule(str(store.root), num_workers=0, **kw)
    b = FrameWindowDataModule(str(store.root), num_workers=2, **kw)
    a.setup(), b.setup()
    for x, y in zip(a.val_dataloader(), b.val_dataloader(), strict=True):
        for key in x:
            assert torch.equal(x[key], y[key])


def test_features_from_derived_cache(store):
    for e in range(len(store)):
        n = int(store.episode_lengths[e]) + 1
        store.write_derived(
            "toy-enc", e, np.full((n, 3, 4), e, dtype=np.float16) + np.arange(n)[:, None, None]
        )
    dm = FrameWindowDataModule(str(store.root), num_hist=1, num_pred=2, frameskip=3, batch_size=2,
                               keys=("proprio",), feature_key="toy-enc", val_fraction=0.0)  # fmt: skip
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert "pixels" not in batch and batch["features"].shape == (2, 3, 3, 4)
    e, t = int(batch["episode"][0]), int(batch["start"][0])
    np.testing.assert_array_equal(batch["features"][0, :, 0, 0].numpy(), [e + t, e + t + 3, e + t + 6])


def test_window_too_long_error(store):
    dm = FrameWindowDataModule(str(store.root), num_hist=3, num_pred=4, frameskip=3)
    with pytest.raises(ValueError, match=r"num_hist=3 \+ num_pred=4\) x frameskip=3 = 21.*longest 20"):
        dm.setup()


def test_missing_pixels_error(make_store):
    store = make_store([10, 10], pixels=False)
    with pytest.raises(ValueError, match="key 'pixels' requested"):
        FrameWindowDataModule(str(store.root)).setup()


@pytest.mark.parametrize(("arg", "value"), [("num_hist", 0), ("frameskip", 0), ("batch_size", 0)])
def test_bad_constructor_args(store, arg, value):
    with pytest.raises(ValueError, match=f"{arg}={value} must be >= 1"):
        FrameWindowDataModule(str(store.root), **{arg: value})


def test_split_episodes():
    train, val = split_episodes(10, 0.2, seed=1)
    assert len(val) == 2 and sorted([*train, *val]) == list(range(10))
    assert np.array_equal(val, split_episodes(10, 0.2, seed=1)[1])
    with pytest.raises(ValueError, match=r"val_fraction=1\.5"):
        split_episodes(10, 1.5, seed=0)


def test_transition_datamodule(store):
    dm = TransitionDataModule(str(store.root), obs_key="proprio", batch_size=5, val_fraction=0.2)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == int(store.episode_lengths.sum())
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"obs", "action", "reward", "next_obs", "terminated", "truncated"}
    assert batch["obs"].shape == (5, 2) and batch["action"].shape == (5, 2)
    e = int(split_episodes(len(store), 0.2, 0)[1][0])
    raw = synthetic_episode(int(store.episode_lengths[e]), seed=e)
    np.testing.assert_array_equal(batch["obs"].numpy(), raw["proprio"][:5])
    np.testing.assert_array_equal(batch["next_obs"].numpy(), raw["proprio"][1:6])
    np.testing.assert_array_equal(batch["reward"].numpy(), raw["reward"][:5])
    n = int(store.episode_lengths.sum())
    all_trunc = torch.cat(
        [b["truncated"] for b in dm.train_dataloader()] + [b["truncated"] for b in dm.val_dataloader()]
    )
    assert len(all_trunc) == n and int(all_trunc.sum()) == len(store)
    with pytest.raises(ValueError, match="obs_key 'observation'"):
        TransitionDataModule(str(store.root)).setup()
