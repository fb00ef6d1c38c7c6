"""D4RL-style datasets: transition view, normalised scores, restore fidelity, tier builds on a tiny SAC run,
exports (D4RL HDF5, Minari, d3rlpy) and a killed-then-resumed build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from worldmodels.data import adapters
from worldmodels.data.d4rl import (
    REF_RETURNS,
    BuildConfig,
    UniformPolicy,
    _select_policies,
    build_tier,
    check_restore,
    normalized_score,
    qlearning_dataset,
    read_card,
)
from worldmodels.data.store import EpisodeStore
from worldmodels.rl.sac import SACConfig, SACRun

TINY_SAC = dict(env_id="HalfCheetah-v5", seed=0, total_steps=120, max_episode_steps=20, learning_starts=40,
                batch_size=16, hidden=(16, 16), eval_every=20, eval_episodes=1, checkpoint_every=40,
                buffer_size=1000)  # fmt: skip
TINY_BUILD = dict(
    env="halfcheetah", seed=0, transitions=50, medium_step=40, reference_episodes=2, restore_samples=16
)


def _episode(obs: np.ndarray, terminated_last: bool) -> dict[str, np.ndarray]:
    T = len(obs) - 1
    term = np.zeros(T, dtype=bool)
    trunc = np.zeros(T, dtype=bool)
    (term if terminated_last else trunc)[-1] = True
    return {"observation": obs.astype(np.float32), "action": np.arange(T, dtype=np.float32)[:, None],
            "reward": np.arange(T, dtype=np.float32) + 10 * obs[0, 0], "terminated": term, "truncated": trunc}  # fmt: skip


def test_qlearning_dataset_drops_the_last_step_of_timed_out_episodes(tmp_path):
    store = EpisodeStore.create(tmp_path / "s", env_id="test/Hand-v0")
    store.append_episode(_episode(np.array([[0.0], [1.0], [2.0], [3.0]]), terminated_last=False))  # timeout
    store.append_episode(_episode(np.array([[5.0], [6.0], [7.0]]), terminated_last=True))  # terminal
    d = qlearning_dataset(store)
    assert sorted(d) == ["actions", "next_observations", "observations", "rewards", "terminals", "timeouts"]
    np.testing.assert_array_equal(d["observations"][:, 0], [0, 1, 5, 6])
    np.testing.assert_array_equal(d["next_observations"][:, 0], [1, 2, 6, 7])  # the terminal's s' is real
    np.testing.assert_array_equal(d["actions"][:, 0], [0, 1, 0, 1])
    np.testing.assert_array_equal(d["rewards"], [0, 1, 50, 51])
    np.testing.assert_array_equal(d["terminals"], [False, False, False, True])
    assert not d["timeouts"].any() and d["observations"].dtype == np.float32
    kept = qlearning_dataset(tmp_path / "s", drop_timeouts=False)
    np.testing.assert_array_equal(kept["observations"][:, 0], [0, 1, 2, 5, 6])
    np.testing.assert_array_equal(kept["next_observations"][:, 0], [1, 2, 3, 6, 7])
    np.testing.assert_array_equal(kept["timeouts"], [False, False, True, False, False])
    with pytest.raises(ValueError, match="infos=True needs keys 'qpos' and 'qvel'"):
        qlearning_dataset(store, infos=True)


def test_normalized_score_references():
    for env, (lo, hi) in REF_RETURNS.items():
        assert normalized_score(env, lo) == 0.0 and normalized_score(env, hi) == pytest.approx(100.0)
    assert normalized_score("hopper", np.array([-20.272305, 3234.3])).tolist() == pytest.approx([0, 100])
    assert normalized_score("halfcheetah", 50.0, "ours", (0.0, 100.0)) == 50.0
    with pytest.raises(
        ValueError,
        match=r"env='ant' is not a D4RL locomotion env; allowed values: \['halfcheetah', 'hopper', 'walker2d'\]",
    ):
        normalized_score("ant", 1.0)
    with pytest.raises(ValueError, match="reference='best'"):
        normalized_score("hopper", 1.0, "best")
    with pytest.raises(ValueError, match="needs ours="):
        normalized_score("hopper", 1.0, "ours")


def test_bad_env_or_tier(tmp_path):
    with pytest.raises(
        ValueError, match=r"env='ant' .* allowed values: \['halfcheetah', 'hopper', 'walker2d'\]"
    ):
        BuildConfig(env="ant", tier="medium", out=str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"tier='good' is not a D4RL tier; allowed values: \['random', 'medium', 'medium-replay', 'medium-expert', 'expert'\]",
    ):
        BuildConfig(env="hopper", tier="good", out=str(tmp_path))


def _uniform_store(root: Path, env_id: str, episodes: int = 2, steps: int = 15) -> EpisodeStore:
    import gymnasium as gym

    from worldmodels.data.collect import rollout_episode

    env = gym.make(env_id, max_episode_steps=steps)
    store = EpisodeStore.create(root, env_id=env_id, env_kwargs={"max_episode_steps": steps})
    policy = UniformPolicy(env.action_space)
    for i in range(episodes):
        store.append_episode(rollout_episode(env, policy, seed=i, record_log_prob=True), seed=i)
    return store


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5"])
def test_restoring_qpos_qvel_reproduces_the_next_observation(tmp_path, env_id):
    store = _uniform_store(tmp_path / "s", env_id)
    ep = store.episode(0)
    assert ep["qpos"].dtype == np.float64 and len(ep["qpos"]) == len(ep["observation"])
    assert np.allclose(ep["action_log_prob"], UniformPolicy(_space(env_id)).last_log_prob)
    report = check_restore(store, samples=20)
    assert report["samples"] == 20 and report["max_obs_error"] < 1e-5 and report["max_reward_error"] < 1e-5
    # a dataset whose stored state is not the one that produced its next observation is rejected
    bad = EpisodeStore.create(tmp_path / "bad", env_id=env_id, env_kwargs=store.manifest["env_kwargs"])
    for i in range(len(store)):
        arrays = {k: np.array(v) for k, v in store.episode(i).items()}
        arrays["qvel"][:, 0] += 0.5
        bad.append_episode(arrays, seed=i)
    with pytest.raises(ValueError, match=r"does not reproduce the next observation/reward.*rejected"):
        check_restore(bad, samples=20)


def _space(env_id):
    import gymnasium as gym

    return gym.make(env_id).action_space


def test_medium_is_the_first_snapshot_at_a_third_of_the_expert(tmp_path):
    root = tmp_path / "sac"
    root.mkdir()
    returns = [10.0, 25.0, 40.0, 35.0, 90.0, 120.0]
    evals = [
        {"step": 5 * (i + 1), "return_mean": r, "return_std": 1.0, "returns": [r] * 3}
        for i, r in enumerate(returns)
    ]
    (root / "evals.json").write_text(json.dumps(evals))
    (root / "config.json").write_text(json.dumps({"total_steps": 30}))
    (root / "finished.json").write_text(json.dumps({"step": 30, "total_steps": 30}))
    sel = _select_policies(BuildConfig(env="hopper", tier="medium", out=str(tmp_path / "o")), SACRun(root))
    assert sel["medium"]["sac_step"] == 15 and sel["medium"]["target_return"] == 40.0  # 40 >= 120 / 3
    assert sel["expert"]["sac_step"] == 30 and sel["expert"]["eval_return_mean"] == 120.0
    half = _select_policies(
        BuildConfig(env="hopper", tier="medium", out=str(tmp_path / "o"), medium_fraction=0.5), SACRun(root)
    )
    assert half["medium"]["sac_step"] == 25
    with pytest.raises(ValueError, match="medium_step=7: no snapshot at that step"):
        _select_policies(
            BuildConfig(env="hopper", tier="medium", out=str(tmp_path / "o"), medium_step=7), SACRun(root)
        )


@pytest.fixture(scope="module")
def tiny_tiers(tmp_path_factory) -> Path:
    """All five tiers of halfcheetah from one tiny SAC run (20-step episodes, 50 transitions a policy)."""
    root = tmp_path_factory.mktemp("d4rl")
    sac = SACConfig(**TINY_SAC)
    for tier in ("random", "medium", "expert", "medium-replay", "medium-expert"):
        build_tier(
            BuildConfig(tier=tier, out=str(root / f"halfcheetah-{tier}"), **TINY_BUILD), sac, progress=False
        )
    return root


def _assert_same_episodes(a: EpisodeStore, b: EpisodeStore, offset: int = 0) -> None:
    for i in range(len(a)):
        assert a.manifest["episodes"][i]["seed"] == b.manifest["episodes"][i + offset]["seed"]
        for key in a.keys:
            np.testing.assert_array_equal(a.read(i, key), b.read(i + offset, key), err_msg=f"ep {i} {key}")


def test_tiers_are_built_as_d4rl_defines_them(tiny_tiers, tmp_path):
    cards = {
        t: read_card(tiny_tiers / f"halfcheetah-{t}")
        for t in ("random", "medium", "expert", "medium-replay", "medium-expert")
    }
    for tier in ("random", "medium", "expert"):
        assert cards[tier]["transitions"] == 50 and cards[tier]["smaller_than_d4rl"]
        assert cards[tier]["episodes"] == 3  # 20 + 20 + 10 (the last cut at the budget, marked truncated)
        assert cards[tier]["restore_check"]["max_obs_error"] < 1e-5
    assert cards["medium-expert"]["transitions"] == 100
    med, exp = cards["medium"]["policies"]["medium"], cards["expert"]["policies"]["expert"]
    assert med["sac_step"] == 40 and exp["sac_step"] == 120
    assert (tiny_tiers / "halfcheetah-medium" / "policies" / "medium" / "config.json").exists()
    evals = {e["step"]: e["return_mean"] for e in SACRun(tiny_tiers / "sac" / "halfcheetah-seed0").evals}
    assert med["eval_return_mean"] == evals[40] and exp["eval_return_mean"] == evals[120]
    # normalised scores: D4RL's and ours, from the card's references
    rets = np.asarray(cards["medium"]["returns"]["mean"])
    assert cards["medium"]["normalized"]["d4rl"]["mean"] == pytest.approx(
        normalized_score("halfcheetah", rets)
    )
    lo, hi = cards["medium"]["references"]["ours"]
    assert hi == evals[120]
    ours = tiny_tiers / "halfcheetah-medium"
    assert normalized_score("halfcheetah", [lo, hi], "ours", ours) == pytest.approx([0, 100])
    # medium-expert = medium episodes then expert episodes; medium-replay = the SAC run's first 40 steps
    me = EpisodeStore.open(tiny_tiers / "halfcheetah-medium-expert")
    _assert_same_episodes(EpisodeStore.open(tiny_tiers / "halfcheetah-medium"), me)
    _assert_same_episodes(EpisodeStore.open(tiny_tiers / "halfcheetah-expert"), me, offset=3)
    mr = EpisodeStore.open(tiny_tiers / "halfcheetah-medium-replay")
    assert int(mr.episode_lengths.sum()) == 40
    _assert_same_episodes(mr, SACRun(tiny_tiers / "sac" / "halfcheetah-seed0").experience)
    # medium-expert simulated afresh (no sibling tiers to copy from) is the same dataset
    fresh = tmp_path / "alone" / "halfcheetah-medium-expert"
    cfg = BuildConfig(
        tier="medium-expert",
        out=str(fresh),
        sac_dir=str(tiny_tiers / "sac" / "halfcheetah-seed0"),
        **TINY_BUILD,
    )
    build_tier(cfg, SACConfig(**TINY_SAC), progress=False)
    _assert_same_episodes(EpisodeStore.open(fresh), me)


def test_info_card_and_plot(tiny_tiers, tmp_path, capsys):
    from worldmodels.data.cli import main

    root = tiny_tiers / "halfcheetah-medium"
    assert main(["info", str(root), "--plot", str(tmp_path / "h.png")]) == 0
    text = capsys.readouterr().out
    assert "halfcheetah-medium" in text and "tier           medium: 50 transitions" in text
    assert "SMALLER than D4RL" in text and "normalised     d4rl" in text and "normalised     ours" in text
    assert "policy         medium: SAC step 40" in text and "episode returns (histogram)" in text
    assert (tmp_path / "h.png").stat().st_size > 1000
    assert main(["info", str(root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["d4rl"]["tier"] == "medium" and sum(summary["return_histogram"]["counts"]) == 3


def test_d4rl_hdf5_round_trip(tiny_tiers, tmp_path):
    store = EpisodeStore.open(tiny_tiers / "halfcheetah-medium")
    path = adapters.export_d4rl(store, tmp_path / "m.hdf5")
    flat = qlearning_dataset(store, drop_timeouts=False, infos=True)
    with h5py.File(path, "r") as f:
        for key in (
            "observations",
            "actions",
            "rewards",
            "next_observations",
            "terminals",
            "timeouts",
            "infos/qpos",
            "infos/qvel",
        ):
            np.testing.assert_array_equal(f[key][()], flat[key], err_msg=key)
        assert f["infos/action_log_probs"].shape == (50,)
        assert json.loads(f["metadata/d4rl_card"][()])["tier"] == "medium"
    back = adapters.import_d4rl(path, tmp_path / "back")
    _assert_same_episodes(store, back)


def test_minari_round_trip(tiny_tiers, tmp_path):
    import minari

    store = EpisodeStore.open(tiny_tiers / "halfcheetah-expert")
    adapters.export_minari(store, "worldmodels/halfcheetah-expert-v0", tmp_path / "minari")
    os.environ["MINARI_DATASETS_PATH"] = str(tmp_path / "minari")
    try:
        ds = minari.load_dataset("worldmodels/halfcheetah-expert-v0")
        assert ds.total_steps == 50 and ds.total_episodes == 3
        first = next(ds.iterate_episodes())
        np.testing.assert_array_equal(first.observations, store.read(0, "observation"))
        np.testing.assert_array_equal(first.infos["qpos"], store.read(0, "qpos"))
        assert ds.recover_environment().spec.id == "HalfCheetah-v5"
    finally:
        del os.environ["MINARI_DATASETS_PATH"]
    back = adapters.import_minari(
        "worldmodels/halfcheetah-expert-v0", tmp_path / "back", root=tmp_path / "minari"
    )
    stripped = {k for k in store.keys if k != "action_log_prob"}
    assert set(back.keys) == stripped
    for i in range(len(store)):
        for key in stripped:
            np.testing.assert_array_equal(back.read(i, key), store.read(i, key), err_msg=f"{i} {key}")


def test_d3rlpy_dataset(tiny_tiers, tmp_path):
    d3rlpy = pytest.importorskip(
        "d3rlpy", reason="d3rlpy is the optional extra [d3rlpy] (pip install --no-deps d3rlpy)"
    )
    store = EpisodeStore.open(tiny_tiers / "halfcheetah-medium-expert")
    ds = adapters.to_d3rlpy(store)
    assert isinstance(ds, d3rlpy.dataset.ReplayBuffer) and ds.size() == len(store)
    # d3rlpy counts T transitions in a terminated episode and T - 1 in a timed-out one
    ends = [bool(store.read(i, "terminated")[-1]) for i in range(len(store))]
    assert ds.transition_count == sum(int(n) - (not t) for n, t in zip(store.episode_lengths, ends))
    np.testing.assert_array_equal(ds.episodes[0].observations, store.read(0, "observation")[:-1])
    np.testing.assert_array_equal(ds.episodes[4].actions, store.read(4, "action"))
    path = adapters.export_d3rlpy(store, tmp_path / "me.h5")
    with open(path, "rb") as f:
        back = d3rlpy.dataset.ReplayBuffer.load(f, d3rlpy.dataset.InfiniteBuffer())
    assert back.size() == len(store)
    np.testing.assert_array_equal(back.episodes[2].rewards[:, 0], store.read(2, "reward"))


def _build_cmd(out: Path, sac_dir: Path) -> list[str]:
    return [sys.executable, "-m", "worldmodels.cli", "data", "build-d4rl", "--env", "halfcheetah", "--tier", "medium",
            "--out", str(out), "--sac-dir", str(sac_dir), "--seed", "0", "--transitions", "60", "--medium-step", "40",
            "--reference-episodes", "1", "--restore-samples", "8", "--sac-total-steps", "200",
            "--sac-max-episode-steps", "20", "--sac-learning-starts", "40", "--sac-batch-size", "16",
            "--sac-hidden", "16", "16", "--sac-eval-every", "20", "--sac-eval-episodes", "1",
            "--sac-checkpoint-every", "40", "--sac-buffer-size", "1000"]  # fmt: skip


def test_build_d4rl_killed_then_resumed_equals_uninterrupted(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(
        _build_cmd(tmp_path / "a" / "ds", tmp_path / "a" / "sac"), check=True, env=env, capture_output=True
    )
    cmd = _build_cmd(tmp_path / "b" / "ds", tmp_path / "b" / "sac")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = tmp_path / "b" / "sac" / "experience" / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill mid-SAC, after the first checkpoint
        if (tmp_path / "b" / "sac" / "checkpoint.pt").exists() and json.loads(index.read_text())[
            "num_episodes"
        ] >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "ds" / "d4rl.json").exists()
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
    assert "halfcheetah-medium" in out and "60 transitions" in out
    a, b = EpisodeStore.open(tmp_path / "a" / "ds"), EpisodeStore.open(tmp_path / "b" / "ds")
    assert len(a) == len(b) == 3
    _assert_same_episodes(a, b)
    ca, cb = read_card(tmp_path / "a" / "ds"), read_card(tmp_path / "b" / "ds")
    assert ca["policies"] == cb["policies"] and ca["returns"] == cb["returns"]
