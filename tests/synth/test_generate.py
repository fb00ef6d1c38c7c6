"""`synth generate`: formats that other learners' loaders read unchanged, kill/resume, refusal, bad output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from synth.cli import main as synth
from synth.generate import GenerateConfig, check_transitions, generate, read_shards

REPO = Path(__file__).resolve().parents[2]


def _gen(model, out, fmt="npz", num=30, **kw):
    args = ["generate", "--model", str(model), "--num", str(num), "--out", str(out), "--format", fmt,
            "--shard-size", "12", "--no-progress"]  # fmt: skip
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", *([] if v is True else [str(v)])]
    assert synth(args) == 0


def test_npz_output_metadata_and_shards(tiny_model, tmp_path, one_torch_thread):
    _gen(tiny_model, tmp_path / "o", seed=5)
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["complete"] and meta["counts"]["transitions"] == 30 and meta["num_shards"] == 3
    assert meta["seed"] == 5 and meta["sampler"]["steps"] == 4 and len(meta["model_sha256"]) == 64
    with np.load(tmp_path / "o" / "samples.npz") as z:
        data = {k: z[k] for k in z.files}
    assert data["observations"].shape == (30, 17) and data["actions"].shape == (30, 6)
    assert set(np.unique(data["terminals"])) <= {0.0, 1.0} and not data["timeouts"].any()
    shards = read_shards(tmp_path / "o")
    assert all(np.array_equal(shards[k], data[k]) for k in shards)


def test_consumers_read_the_outputs_unchanged(tiny_model, tmp_path, one_torch_thread):
    import h5py
    import minari

    _gen(tiny_model, tmp_path / "d4rl", "d4rl")
    _gen(tiny_model, tmp_path / "minari", "minari", dataset_id="synth/cheetah-v0")
    _gen(tiny_model, tmp_path / "npz", "npz")
    with np.load(tmp_path / "npz" / "samples.npz") as z:
        ref = {k: z[k] for k in z.files}
    with h5py.File(tmp_path / "d4rl" / "samples.hdf5", "r") as f:  # a D4RL-style reader
        for key in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
            assert len(f[key]) == 30, key
        np.testing.assert_array_equal(f["observations"][:], ref["observations"])
        np.testing.assert_array_equal(f["terminals"][:], ref["terminals"].astype(bool))
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path / "minari" / "minari")
    try:
        ds = minari.load_dataset("synth/cheetah-v0")
        assert ds.total_episodes == 30 and ds.total_steps == 30
        ep = next(iter(ds.iterate_episodes([3])))
        np.testing.assert_allclose(ep.observations[0], ref["observations"][3])
        np.testing.assert_allclose(ep.observations[1], ref["next_observations"][3])
        np.testing.assert_allclose(ep.actions[0], ref["actions"][3])
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH")
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def test_td3bc_trains_on_the_npz(tiny_model, tmp_path, one_torch_thread):
    from synth.data import load_transitions
    from worldmodels.rl.td3bc import TD3BC, evaluate_policy

    _gen(tiny_model, tmp_path / "o")
    data = load_transitions(tmp_path / "o")
    agent = TD3BC(17, 6, [-1.0] * 6, [1.0] * 6)
    before = [p.clone() for p in agent.actor.parameters()]
    agent.train_offline(data, 20, torch.Generator().manual_seed(0))
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.actor.parameters()))
    returns = evaluate_policy(agent, "HalfCheetah-v5", 1, seed=0, max_steps=20)
    assert returns.shape == (1,) and np.isfinite(returns).all()


def test_d3rlpy_td3bc_fits_on_synthetic_data(tiny_model, tmp_path, one_torch_thread):
    d3rlpy = pytest.importorskip("d3rlpy", reason="optional extra [d3rlpy]")
    from synth.data import load_transitions

    _gen(tiny_model, tmp_path / "o")
    d = load_transitions(tmp_path / "o")
    ds = d3rlpy.dataset.MDPDataset(observations=d["observations"], actions=d["actions"],
                                   rewards=d["rewards"][:, None], terminals=d["terminals"],
                                   timeouts=np.ones(len(d["actions"]), dtype=np.float32))  # fmt: skip
    algo = d3rlpy.algos.TD3PlusBCConfig(batch_size=8).create(device="cpu:0")
    algo.fit(ds, n_steps=5, n_steps_per_epoch=5, show_progress=False, save_interval=10**6)


def test_store_format_is_one_step_episodes(tiny_model, tmp_path, one_torch_thread):
    from worldmodels.data.store import EpisodeStore

    _gen(tiny_model, tmp_path / "s", "store", num=7)
    store = EpisodeStore.open(tmp_path / "s" / "store")
    assert len(store) == 7 and (store.episode_lengths == 1).all() and store.env_id == "HalfCheetah-v5"
    ep = store.episode(2)
    assert ep["observation"].shape == (2, 17) and ep["terminated"][0] != ep["truncated"][0]


def test_refuses_another_models_samples_unless_overwrite(tiny_model, tmp_path, one_torch_thread):
    _gen(tiny_model, tmp_path / "o")
    with pytest.raises(
        ValueError, match=r"another model or other settings \(differs in \['seed'\]\).*--overwrite"
    ):
        _gen(tiny_model, tmp_path / "o", seed=1, debug=True)  # --debug: the error itself, not its one line
    other = tmp_path / "other"
    from worldmodels import load_pretrained

    m = load_pretrained(tiny_model)
    with torch.no_grad():
        m.denoiser.inp.weight.add_(0.01)
    m.save_pretrained(other)
    with pytest.raises(ValueError, match=r"differs in \['model_sha256'\]"):
        _gen(other, tmp_path / "o", debug=True)
    _gen(other, tmp_path / "o", overwrite=True)
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["model"] == str(other.resolve()) and meta["complete"]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"not empty and has no metadata\.json"):
        _gen(tiny_model, tmp_path / "junk", debug=True)
    with pytest.raises(ValueError, match="--format 'parquet'"):
        GenerateConfig(model=str(tiny_model), num=3, out=str(tmp_path / "p"), format="parquet")


def test_bad_generated_terminals_never_reach_the_output():
    good = {k: np.zeros((3, 2), np.float32) for k in ("observations", "actions", "next_observations")}
    good |= {"rewards": np.zeros(3, np.float32), "terminals": np.array([0, 1, 0], np.float32)}
    check_transitions(good, "s")
    with pytest.raises(ValueError, match="'terminals' outside"):
        check_transitions(good | {"terminals": np.array([0, 0.7, 1], np.float32)}, "s")
    with pytest.raises(ValueError, match="'rewards' holds non-finite"):
        check_transitions(good | {"rewards": np.array([0, np.nan, 1], np.float32)}, "s")


def test_killed_generate_resumes_to_the_uninterrupted_result(tiny_model, tmp_path):
    """A run killed (SIGKILL) after some shards, then rerun, equals a run never interrupted."""
    args = ["--model", str(tiny_model), "--num", "80", "--format", "npz", "--shard-size", "8",
            "--sampler", "steps=40", "--no-progress", "--seed", "3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "synth.cli", "generate", *args]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], env=env, cwd=REPO)
    deadline = time.time() + 120
    while not (killed / "shards" / "shard_000001.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list((killed / "shards").glob("shard_*.npz")))
    assert 2 <= done_before < 10, "the run should be killed part way"
    assert not (killed / "samples.npz").exists()
    subprocess.run([*cmd, "--out", str(killed)], env=env, cwd=REPO, check=True)
    generate(GenerateConfig(model=str(tiny_model), num=80, out=str(tmp_path / "whole"), shard_size=8,
                            sampler="steps=40", seed=3, progress=False))  # fmt: skip
    with np.load(killed / "samples.npz") as a, np.load(tmp_path / "whole" / "samples.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
