"""Datasets under concurrent or interrupted writers and in the wrong place (issue 18, cases 1-3).

Case 1: two ``data collect`` runs into one ``--out``: the second fails at once naming the first's pid and
host; the first's lock, once it is killed, is taken over and the dataset resumes to an uninterrupted run's.
Case 2: ``--out`` an existing directory that is not a dataset: refused, nothing in it touched.
Case 3: ``data import`` is atomic: a NaN in a later episode names the file and the episode and leaves no
partial dataset (a retry works); a column that cannot be imported is an error or an explicit flag.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from reliability_testing import command, error_line, run_here, snapshot

from worldmodels.data.adapters import export_d4rl, import_d4rl
from worldmodels.data.collect import collect
from worldmodels.data.store import EpisodeStore

ENV = "worldmodels/Wall-v0"


def _committed(root) -> int:
    try:
        return len(EpisodeStore.open(root, verify=False))
    except (FileNotFoundError, ValueError):
        return 0


def assert_same_data(a: EpisodeStore, b: EpisodeStore) -> None:
    assert len(a) == len(b) and a.keys == b.keys
    assert [e["seed"] for e in a.manifest["episodes"]] == [e["seed"] for e in b.manifest["episodes"]]
    for i in range(len(a)):
        for key in a.keys:
            np.testing.assert_array_equal(a.read(i, key), b.read(i, key), err_msg=f"episode {i} key {key}")


def test_second_writer_fails_at_once_and_a_killed_writers_lock_is_taken_over(tmp_path, sub_env, capsys):
    out, n = tmp_path / "d", 100_000  # the first writer is killed long before it is done
    args = [
        "data",
        "collect",
        "--env",
        ENV,
        "--policy",
        "noisy-expert",
        "--out",
        str(out),
        "--img-size",
        "32",
    ]
    first = subprocess.Popen(command("worldmodels", *args, "--episodes", str(n)), env=sub_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while _committed(out) < 1 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.poll() is None, "the first writer finished before the second could start"
        started = time.monotonic()
        # the test process is the second writer (a few episodes: without a lock it would not hang here)
        second = run_here(capsys, "worldmodels", *args, "--episodes", "3")
        assert second.returncode == 2
        line = error_line(second.stderr, "worldmodels data collect: error: ")
        assert (
            f"{out}: another writer is using this dataset (pid {first.pid} on host {socket.gethostname()}"
            in line
        )
        assert time.monotonic() - started < 60  # at once: no simulation before the refusal
    finally:
        os.killpg(
            first.pid, signal.SIGKILL
        )  # kill -9: its lock file keeps its record, the flock dies with it
        first.wait()
    done = _committed(out)
    assert 1 <= done < n, (
        f"kill -9 must leave a partial dataset to resume from: {done} of {n} episodes committed"
    )
    record = json.loads((out / ".writer.lock").read_text())  # the dead writer's record stays
    assert record["pid"] > 0 and record["host"] == socket.gethostname()
    resumed = run_here(capsys, "worldmodels", *args, "--episodes", str(done + 3))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference = collect(ENV, policy="noisy-expert", episodes=done + 3, out=tmp_path / "ref",
                        env_kwargs={"img_size": 32}, progress=False)  # fmt: skip
    assert_same_data(reference, EpisodeStore.open(out, verify="full"))


def test_two_writers_in_python_and_the_lock_is_released_on_close(tmp_path, sub_env):
    store = EpisodeStore.create(tmp_path / "d", env_id="test/X-v0")
    code = (
        "from worldmodels.data.store import EpisodeStore\n"
        f"EpisodeStore.create({str(tmp_path / 'd')!r}, env_id='test/X-v0')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=sub_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and f"pid {os.getpid()} on host" in proc.stderr
    store.close()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=sub_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_collect_into_a_directory_that_is_not_a_dataset_touches_nothing(tmp_path, capsys):
    d = tmp_path / "mine"
    (d / "episodes" / "x").mkdir(parents=True)
    (d / "episodes" / "x" / "keep.txt").write_text("user data")
    (d / "notes.txt").write_text("more user data")
    before = snapshot(d)
    proc = run_here(capsys, "worldmodels", "data", "collect", "--env", ENV, "--policy", "random", "--episodes", "1", "--out",
               str(d), "--img-size", "32")  # fmt: skip
    assert proc.returncode == 2
    line = error_line(proc.stderr, "worldmodels data collect: error: ")
    assert f"{d}: exists and is not a dataset (no manifest.json; it holds episodes/x, notes.txt" in line
    assert snapshot(d) == before


def test_a_writer_never_deletes_what_it_did_not_write(tmp_path):
    store = EpisodeStore.create(tmp_path / "d", env_id="test/X-v0")
    foreign = store.root / "episodes" / "x"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    leftover = store.root / "episodes" / "ep_000000"  # what an interrupted append leaves: removed
    leftover.mkdir()
    store = EpisodeStore.create(tmp_path / "d", env_id="test/X-v0")
    store.append_episode(
        {
            "action": np.zeros((2, 1), np.float32),
            "reward": np.zeros(2, np.float32),
            "terminated": np.zeros(2, bool),
            "truncated": np.ones(2, bool),
        }
    )
    assert (foreign / "keep.txt").read_text() == "user data"
    assert len(EpisodeStore.open(store.root, verify="full")) == 1


@pytest.fixture
def d4rl_file(make_tiny_store, tmp_path):
    return export_d4rl(make_tiny_store(tmp_path / "src"), tmp_path / "src.hdf5")


@pytest.fixture
def make_tiny_store():
    def make(root):
        store = EpisodeStore.create(root, env_id="test/X-v0")
        rng = np.random.default_rng(0)
        for i in range(3):
            t = 4 + i
            store.append_episode(
                {"proprio": rng.normal(size=(t + 1, 2)).astype(np.float32),
                 "pixels": rng.integers(0, 255, (t + 1, 4, 4, 3), dtype=np.uint8),
                 "action": rng.normal(size=(t, 2)).astype(np.float32), "reward": rng.normal(size=t).astype(np.float32),
                 "terminated": np.zeros(t, bool), "truncated": np.arange(t) == t - 1}, seed=i)  # fmt: skip
        return store

    return make


def test_import_with_nan_in_a_later_episode_names_file_and_episode_and_leaves_nothing(
    d4rl_file, tmp_path, capsys
):
    with h5py.File(d4rl_file, "a") as f:
        f["rewards"][10] = np.nan  # episode 2 (rows 9..14)
    out = tmp_path / "out"
    proc = run_here(
        capsys, "worldmodels", "data", "import", "--format", "d4rl", str(d4rl_file), "--out", str(out)
    )
    assert proc.returncode == 2
    line = error_line(proc.stderr, "worldmodels data import: error: ")
    assert line.endswith(f"{d4rl_file}: episode 2 (rows 9..14): key 'reward' has NaN or inf")
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-build-*"))
    with h5py.File(d4rl_file, "a") as f:
        f["rewards"][10] = 0.0
    assert len(import_d4rl(d4rl_file, out)) == 3  # the retry is not refused


def test_import_of_pixels_without_their_final_frames_is_an_error_or_an_explicit_flag(
    d4rl_file, tmp_path, capsys
):
    with h5py.File(d4rl_file, "a") as f:
        del f["infos/pixels"]
    proc = run_here(
        capsys,
        "worldmodels",
        "data",
        "import",
        "--format",
        "d4rl",
        str(d4rl_file),
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 2 and not (tmp_path / "o").exists()
    line = error_line(proc.stderr, "worldmodels data import: error: ")
    assert (
        f"{d4rl_file}: 'metadata/final/pixels' has no 'infos/pixels'" in line and "--drop-info pixels" in line
    )
    proc = run_here(capsys, "worldmodels", "data", "import", "--format", "d4rl", str(d4rl_file), "--out",
                    str(tmp_path / "o"), "--drop-info", "pixels")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pixels" not in EpisodeStore.open(tmp_path / "o").keys


def test_import_of_a_truncated_hdf5_names_it(d4rl_file, tmp_path, capsys):
    data = d4rl_file.read_bytes()
    d4rl_file.write_bytes(data[: len(data) // 2])
    proc = run_here(
        capsys,
        "worldmodels",
        "data",
        "import",
        "--format",
        "d4rl",
        str(d4rl_file),
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 2 and not (tmp_path / "o").exists()
    assert f"{d4rl_file}: not a readable HDF5 file" in error_line(
        proc.stderr, "worldmodels data import: error: "
    )


def test_import_into_an_existing_dataset_or_foreign_directory_changes_nothing(
    d4rl_file, tmp_path, make_tiny_store
):
    existing = make_tiny_store(tmp_path / "existing").root
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("x")
    for out in (existing, foreign):
        before = snapshot(out)
        with pytest.raises(ValueError, match=f"{out}: "):
            import_d4rl(d4rl_file, out)
        assert snapshot(out) == before


def test_a_killed_build_leaves_no_dataset_and_is_cleaned_by_the_next(tmp_path, sub_env):
    """kill -9 in the middle of an import: ``out`` does not exist; the next import removes the temp dir."""
    from worldmodels.data.store import build_atomically

    code = (
        "import os, signal\n"
        "from worldmodels.data.store import EpisodeStore, build_atomically\n"
        f"with build_atomically({str(tmp_path / 'out')!r}) as tmp:\n"
        "    EpisodeStore.create(tmp, env_id='test/X-v0')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=sub_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out").exists() and len(list(tmp_path.glob(".out.tmp-build-*"))) == 1
    with build_atomically(tmp_path / "out") as tmp:
        EpisodeStore.create(tmp, env_id="test/X-v0").close()
    assert not list(tmp_path.glob(".out.tmp-build-*")) and (tmp_path / "out" / "manifest.json").exists()
    shutil.rmtree(tmp_path / "out")


def test_a_writer_store_pickles_without_its_lock(tmp_path):
    import pickle

    store = EpisodeStore.create(tmp_path / "d", env_id="test/X-v0")
    copy = pickle.loads(pickle.dumps(store))
    assert copy._lock is None and copy.root == store.root and len(copy) == 0
