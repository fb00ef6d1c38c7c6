"""Minari and D4RL adapters: lossless round trips, recover_environment, missing-key errors."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from worldmodels.data.adapters import export_d4rl, export_minari, import_d4rl, import_minari
from worldmodels.data.collect import collect
from worldmodels.data.store import EpisodeStore


def assert_same_store(a: EpisodeStore, b: EpisodeStore) -> None:
    assert len(a) == len(b) and set(a.keys) == set(b.keys)
    for key in ("env_id", "env_kwargs", "behaviour_policy"):
        assert a.manifest[key] == b.manifest[key], key
    assert [e["seed"] for e in a.manifest["episodes"]] == [e["seed"] for e in b.manifest["episodes"]]
    for i in range(len(a)):
        for key in a.keys:
            x, y = a.read(i, key), b.read(i, key)
            assert x.dtype == y.dtype, (i, key)
            np.testing.assert_array_equal(x, y, err_msg=f"episode {i} key {key}")


@pytest.fixture(scope="module")
def wall(tmp_path_factory) -> EpisodeStore:
    out = tmp_path_factory.mktemp("wall") / "ds"
    return collect("worldmodels/Wall-v0", policy="noisy-expert", episodes=3, out=out, env_kwargs={"img_size": 32},
                   progress=False)  # fmt: skip


def test_minari_round_trip_and_recover_environment(wall, tmp_path, monkeypatch):
    import minari

    path = export_minari(wall, "worldmodels/wall-v0", tmp_path / "minari", chunk=2)
    assert path == tmp_path / "minari" / "worldmodels" / "wall-v0"
    assert not list((tmp_path / "minari").glob(".tmp-*"))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    dataset = minari.load_dataset("worldmodels/wall-v0")
    assert dataset.total_episodes == 3 and dataset.total_steps == int(wall.episode_lengths.sum())
    ep = next(dataset.iterate_episodes())
    np.testing.assert_array_equal(ep.observations["pixels"], wall.read(0, "pixels"))
    env = dataset.recover_environment()
    assert env.spec.id == "worldmodels/Wall-v0" and env.spec.kwargs == {"img_size": 32}
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (32, 32, 3)
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    back = import_minari("worldmodels/wall-v0", tmp_path / "back", root=tmp_path / "minari")
    assert_same_store(wall, back)
    assert back.manifest["env_kwargs"] == {"img_size": 32}
    assert "MINARI_DATASETS_PATH" not in os.environ
    with pytest.raises(ValueError, match="already exists"):
        export_minari(wall, "worldmodels/wall-v0", tmp_path / "minari")


@pytest.mark.filterwarnings("ignore:env_spec is None")
def test_minari_vector_observations_without_registered_env(make_store, tmp_path):
    src = make_store([4, 6], pixels=False)
    export_minari(src, "test/synthetic-v0", tmp_path / "m")
    back = import_minari("test/synthetic-v0", tmp_path / "back", root=tmp_path / "m")
    assert_same_store(src, back)


def test_minari_missing_key_error(wall, tmp_path):
    export_minari(wall, "worldmodels/wall-v0", tmp_path / "m")
    data = tmp_path / "m" / "worldmodels" / "wall-v0" / "data" / "main_data.hdf5"
    with h5py.File(data, "a") as f:
        del f["episode_1/rewards"]
    with pytest.raises(ValueError, match=f"{data}: key 'episode_1/rewards' is missing"):
        import_minari("worldmodels/wall-v0", tmp_path / "back", root=tmp_path / "m")


def test_d4rl_round_trip(wall, tmp_path):
    path = export_d4rl(wall, tmp_path / "wall.hdf5")
    with h5py.File(path) as f:
        n = int(wall.episode_lengths.sum())
        assert f["observations"].shape == (n, 2) and f["next_observations"].shape == (n, 2)
        assert f["actions"].shape == (n, 2) and f["rewards"].shape == (n,)
        assert f["terminals"].dtype == bool and f["timeouts"].dtype == bool
        assert f["infos/pixels"].shape == (n, 32, 32, 3) and f["metadata/final/pixels"].shape == (
            3,
            32,
            32,
            3,
        )
        np.testing.assert_array_equal(f["next_observations"][:3], wall.read(0, "proprio")[1:4])
        assert "infos/qpos" not in f  # Wall's state is not a MuJoCo qpos/qvel
    assert_same_store(wall, import_d4rl(path, tmp_path / "back"))


def test_d4rl_qpos_qvel_split_for_mujoco(tmp_path):
    store = collect("worldmodels/PointMazeUMaze-v0", policy="random", episodes=1, out=tmp_path / "pm",
                    env_kwargs={"img_size": 32}, progress=False)  # fmt: skip
    path = export_d4rl(store, tmp_path / "pm.hdf5")
    state = np.asarray(store.read(0, "state"))[:-1]
    with h5py.File(path) as f:
        assert int(f["metadata/qpos_dim"][()]) == 2
        np.testing.assert_array_equal(np.concatenate([f["infos/qpos"][:], f["infos/qvel"][:]], axis=1), state)
    assert_same_store(store, import_d4rl(path, tmp_path / "back"))


def test_d4rl_foreign_file_splits_at_terminals_and_timeouts(tmp_path):
    path = tmp_path / "foreign.hdf5"
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(10, 3)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["observations"], f["next_observations"] = obs, np.roll(obs, -1, axis=0)
        f["actions"] = rng.normal(size=(10, 2)).astype(np.float32)
        f["rewards"] = np.arange(10, dtype=np.float32)
        f["terminals"] = np.isin(np.arange(10), [2])
        f["timeouts"] = np.isin(np.arange(10), [6])
    store = import_d4rl(path, tmp_path / "out")
    np.testing.assert_array_equal(store.episode_lengths, [3, 4, 3])
    assert store.read(0, "terminated").tolist() == [False, False, True]
    assert store.read(1, "truncated").tolist() == [False, False, False, True]
    np.testing.assert_array_equal(store.read(1, "observation"), np.concatenate([obs[3:7], obs[7:8]]))


@pytest.mark.parametrize("key", ["rewards", "timeouts", "next_observations"])
def test_d4rl_missing_key_error(make_store, tmp_path, key):
    path = export_d4rl(make_store([3, 4], pixels=False), tmp_path / "d.hdf5")
    with h5py.File(path, "a") as f:
        del f[key]
    with pytest.raises(ValueError, match=f"{path}: key '{key}' is missing"):
        import_d4rl(path, tmp_path / "out")
