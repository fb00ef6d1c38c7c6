"""EpisodeStore: append/read, memory maps, atomic commits, integrity errors, stats, derived arrays."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from data_testing import synthetic_episode

from worldmodels.data.store import EpisodeStore


def test_append_and_read_round_trip(make_store):
    store = make_store([5, 7, 3])
    reopened = EpisodeStore.open(store.root, verify="full")
    assert len(reopened) == 3
    np.testing.assert_array_equal(reopened.episode_lengths, [5, 7, 3])
    assert set(reopened.keys) == {"pixels", "proprio", "state", "action", "reward", "terminated", "truncated"}
    assert [ep["seed"] for ep in reopened.manifest["episodes"]] == [0, 1, 2]
    for i, n in enumerate([5, 7, 3]):
        want = synthetic_episode(n, seed=i)
        got = reopened.episode(i)
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
            assert got[key].dtype == want[key].dtype
    np.testing.assert_array_equal(
        reopened.read(1, "proprio", np.array([0, 3, 6])), synthetic_episode(7, 1)["proprio"][[0, 3, 6]]
    )


def test_read_is_memory_mapped_and_lru_bounded(make_store):
    store = make_store([4] * 6)
    store = EpisodeStore(store.root, store.manifest, max_open=3)
    assert isinstance(store.read(0, "pixels"), np.memmap)
    for i in range(6):
        store.read(i, "proprio")
    assert len(store._maps) == 3


def test_read_errors(make_store):
    store = make_store([3])
    with pytest.raises(IndexError, match="episode 1 out of range"):
        store.read(1, "action")
    with pytest.raises(KeyError, match="'observation' not in dataset"):
        store.read(0, "observation")


def test_uncommitted_episode_is_invisible_and_cleaned(make_store):
    store = make_store([3, 3])
    # a writer killed mid-append: a temp dir and a renamed-but-unlisted episode directory
    tmp = store.root / "episodes" / ".tmp-deadbeef"
    tmp.mkdir()
    (tmp / "action.npy").write_bytes(b"partial")
    orphan = store.root / "episodes" / "ep_000002"
    orphan.mkdir()
    np.save(orphan / "action.npy", np.zeros((3, 2), np.float32))
    reader = EpisodeStore.open(store.root)
    assert len(reader) == 2
    assert tmp.exists()  # readers never delete
    writer = EpisodeStore.create(store.root, env_id="test/Synthetic-v0", behaviour_policy="random")
    assert not tmp.exists() and not orphan.exists()
    assert writer.append_episode(synthetic_episode(4, seed=9), seed=9) == 2
    np.testing.assert_array_equal(
        EpisodeStore.open(store.root).read(2, "action"), synthetic_episode(4, 9)["action"]
    )


def test_create_refuses_other_env_or_existing(make_store):
    store = make_store([2])
    with pytest.raises(ValueError, match="key 'env_id'"):
        EpisodeStore.create(store.root, env_id="other/Env-v0", behaviour_policy="random")
    with pytest.raises(ValueError, match="exist_ok=False"):
        EpisodeStore.create(store.root, env_id="test/Synthetic-v0", behaviour_policy="random", exist_ok=False)


def _path(store, ep, key):
    return store.root / "episodes" / f"ep_{ep:06d}" / f"{key}.npy"


def _expect(store, ep, key, what, verify=True):
    path = _path(store, ep, key)
    with pytest.raises(ValueError, match=re.escape(f"{path}: key {key!r}") + ".*" + what):
        EpisodeStore.open(store.root, verify=verify)


def test_truncated_npy(make_store):
    store = make_store([4, 4])
    p = _path(store, 1, "proprio")
    p.write_bytes(p.read_bytes()[:-5])
    _expect(store, 1, "proprio", "bytes, manifest says")


def test_corrupted_npy_header(make_store):
    store = make_store([4])
    p = _path(store, 0, "action")
    data = bytearray(p.read_bytes())
    data[:6] = b"XXXXXX"  # destroys the .npy magic string, same size
    p.write_bytes(bytes(data))
    _expect(store, 0, "action", "not a readable .npy")


def test_corrupted_payload_caught_by_full_checksum(make_store):
    store = make_store([4])
    p = _path(store, 0, "pixels")
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    EpisodeStore.open(store.root, verify=True)  # the cheap check cannot see a flipped byte
    _expect(store, 0, "pixels", "CRC32", verify="full")


def test_nan_in_float_key(make_store):
    store = make_store([4, 4])
    p = _path(store, 1, "proprio")
    arr = np.load(p)
    arr[2, 0] = np.nan
    np.save(p, arr)
    _expect(store, 1, "proprio", "NaN")


def test_shape_mismatch(make_store):
    store = make_store([4])
    p = _path(store, 0, "proprio")
    np.save(p, np.zeros((10,), np.float32))  # same byte count as (5, 2) float32, other shape
    _expect(store, 0, "proprio", r"shape \(10,\)")


def test_shape_inconsistent_across_episodes(make_store):
    store = make_store([4, 4])
    p = _path(store, 1, "proprio")
    np.save(p, np.zeros((5, 3), np.float32))
    store.manifest["episodes"][1]["files"]["proprio"].update(shape=[5, 3], size=p.stat().st_size)
    store._write_index()
    store._write_manifest()
    _expect(store, 1, "proprio", "per-row shape")


def test_missing_file(make_store):
    store = make_store([4, 4])
    _path(store, 0, "reward").unlink()
    _expect(store, 0, "reward", "is missing")


def test_missing_or_corrupt_manifest(tmp_path, make_store):
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        EpisodeStore.open(tmp_path / "nothing")
    store = make_store([2])
    (store.root / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"manifest\.json: corrupt manifest"):
        EpisodeStore.open(store.root)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda ep: ep.pop("reward"), r"missing key\(s\) \['reward'\]"),
        (lambda ep: ep.update(proprio=ep["proprio"][:-1]), "key 'proprio' has 4 rows, expected 5"),
        (lambda ep: ep["action"].__setitem__((0, 0), np.inf), "key 'action' has NaN or inf"),
        (lambda ep: ep.update(proprio=np.zeros((5, 3), np.float32)), "key 'proprio' has per-row shape"),
        (lambda ep: ep.update(extra=np.zeros(4)), "key 'extra' is not in the dataset"),
    ],
)
def test_append_rejects_bad_episodes(make_store, edit, match):
    store = make_store([3])
    ep = synthetic_episode(4, seed=5)
    edit(ep)
    with pytest.raises(ValueError, match=match):
        store.append_episode(ep)
    assert len(EpisodeStore.open(store.root)) == 1


def test_stats_streamed_and_cached(make_store):
    store = make_store([5, 7])
    s = store.stats()
    proprio = np.concatenate([synthetic_episode(n, i)["proprio"] for i, n in enumerate([5, 7])]).astype(
        np.float64
    )
    np.testing.assert_allclose(s["proprio"]["mean"], proprio.mean(0), rtol=1e-10)
    np.testing.assert_allclose(s["proprio"]["std"], proprio.std(0), rtol=1e-8)
    np.testing.assert_array_equal(s["proprio"]["min"], proprio.min(0))
    assert set(s) == {"proprio", "action", "reward", "state"}
    assert (store.root / "stats.json").exists()
    store.append_episode(synthetic_episode(3, seed=2), seed=2)
    assert store.stats()["proprio"]["mean"].tolist() != s["proprio"]["mean"].tolist()  # recomputed
    const = make_store([3], name="const", pixels=False)
    const.append_episode({**synthetic_episode(3, 1, pixels=False), "proprio": np.ones((4, 2), np.float32)})
    assert const.stats()["action"]["std"].min() > 0


def test_derived_arrays(make_store):
    store = make_store([4, 6])
    assert not store.has_derived("enc", 0)
    with pytest.raises(ValueError, match="missing for episode 0"):
        store.read_derived("enc", 0)
    feats = np.arange(5 * 3 * 2, dtype=np.float16).reshape(5, 3, 2)
    store.write_derived("enc", 0, feats, meta={"encoder": "x"})
    assert store.has_derived("enc", 0) and not store.has_derived("enc", 1)
    np.testing.assert_array_equal(store.read_derived("enc", 0, np.array([1, 4])), feats[[1, 4]])
    assert store.derived_meta("enc") == {"encoder": "x"}
    with pytest.raises(ValueError, match="6 rows, expected 7"):
        store.write_derived("enc", 1, np.zeros((6, 3, 2)))
    with pytest.raises(ValueError, match=r"without '\.\.'"):
        store.write_derived("../escape", 0, feats)
    assert not list((store.root / "derived" / "enc").glob(".tmp-*"))


def test_interrupted_index_append_is_ignored_then_cut(make_store):
    """A writer killed after appending its index line but before the manifest commit: readers see the
    committed episodes only, and the next append replaces the stray line."""
    store = make_store([3, 3])
    with open(store.root / "episodes.jsonl", "ab") as f:
        f.write(b'{"length": 9, "seed": 99, "files": {}}\n{"half')
    again = EpisodeStore.open(store.root, verify="full")
    assert len(again) == 2 and [e["seed"] for e in again.manifest["episodes"]] == [0, 1]
    again.append_episode(synthetic_episode(4, seed=7), seed=7)
    lines = (store.root / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(line)["seed"] for line in lines] == [0, 1, 7]
    assert len(EpisodeStore.open(store.root, verify="full")) == 3


def test_append_cost_does_not_grow_with_the_dataset(make_store):
    """Each append writes one index line and a manifest of constant size (no rewrite of all entries)."""
    store = make_store([2] * 3)
    small = (store.root / "manifest.json").stat().st_size
    for i in range(3, 40):
        store.append_episode(synthetic_episode(2, seed=i, pixels=True), seed=i)
    assert (store.root / "manifest.json").stat().st_size <= small + 8
    assert len((store.root / "episodes.jsonl").read_text().splitlines()) == 40


def test_corrupt_or_short_index(make_store):
    store = make_store([2, 2])
    index = store.root / "episodes.jsonl"
    text = index.read_text()
    index.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"episodes\.jsonl: has \d+ bytes, the manifest's index_bytes"):
        EpisodeStore.open(store.root)
    index.write_text("x" * len(text))
    with pytest.raises(ValueError, match=r"episodes\.jsonl: .*(corrupt|entries)"):
        EpisodeStore.open(store.root)
    index.unlink()
    with pytest.raises(ValueError, match=r"episodes\.jsonl: missing"):
        EpisodeStore.open(store.root)


def test_format_1_store_is_read_and_migrated(make_store):
    """A store written before the index file existed (entries inside manifest.json) opens unchanged and is
    migrated by its next append."""
    store = make_store([3, 2])
    header = json.loads((store.root / "manifest.json").read_text())
    old = {**header, "format": "worldmodels-episodes/1", "episodes": store.manifest["episodes"]}
    old.pop("index_bytes")
    (store.root / "manifest.json").write_text(json.dumps(old))
    (store.root / "episodes.jsonl").unlink()
    legacy = EpisodeStore.open(store.root, verify="full")
    assert len(legacy) == 2 and np.array_equal(legacy.read(1, "action"), store.read(1, "action"))
    legacy.append_episode(synthetic_episode(4, seed=5), seed=5)
    migrated = EpisodeStore.open(store.root, verify="full")
    assert migrated.manifest["format"] == "worldmodels-episodes/2"
    assert [e["seed"] for e in migrated.manifest["episodes"]] == [0, 1, 5]
    assert "episodes" not in json.loads((store.root / "manifest.json").read_text())


def test_truncate_rewinds_to_a_prefix_then_appends(make_store):
    """A writer rewinding to a checkpoint: later episodes vanish for readers, their directories are removed,
    the cached statistics are dropped, and the next append continues the prefix."""
    store = make_store([2, 3, 4, 5], pixels=False)
    store.stats()
    store.truncate(2)
    assert len(store) == 2 and store.manifest["num_steps"] == 5
    assert sorted(p.name for p in (store.root / "episodes").iterdir()) == ["ep_000000", "ep_000001"]
    assert not (store.root / "stats.json").exists()
    again = EpisodeStore.open(store.root, verify="full")
    assert [e["seed"] for e in again.manifest["episodes"]] == [0, 1]
    again.append_episode(synthetic_episode(6, seed=9, pixels=False), seed=9)
    reopened = EpisodeStore.open(store.root, verify="full")
    assert [e["seed"] for e in reopened.manifest["episodes"]] == [0, 1, 9]
    assert reopened.episode_lengths.tolist() == [2, 3, 6]
    with pytest.raises(ValueError, match=r"truncate\(5\) outside \[0, 3\]"):
        reopened.truncate(5)


def test_qpos_qvel_are_frame_keys(make_store):
    store = make_store([3], pixels=False)
    ep = synthetic_episode(3, seed=1, pixels=False) | {"qpos": np.zeros((4, 2)), "qvel": np.zeros((4, 2))}
    other = EpisodeStore.create(store.root.parent / "q", env_id="test/Synthetic-v0")
    other.append_episode(ep)
    bad = ep | {"qpos": np.zeros((3, 2))}
    with pytest.raises(ValueError, match="key 'qpos' has 3 rows, expected 4 for 3 steps"):
        other.append_episode(bad)
