"""Collectors on a real env (worldmodels/Wall-v0): determinism across workers, resume, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from worldmodels.data.collect import collect
from worldmodels.data.policies import MLPPolicy
from worldmodels.data.store import EpisodeStore

ENV = "worldmodels/Wall-v0"
KW = {"img_size": 32}


def assert_same_data(a: EpisodeStore, b: EpisodeStore) -> None:
    assert len(a) == len(b)
    assert [e["seed"] for e in a.manifest["episodes"]] == [e["seed"] for e in b.manifest["episodes"]]
    assert a.keys == b.keys
    for i in range(len(a)):
        for key in a.keys:
            np.testing.assert_array_equal(a.read(i, key), b.read(i, key), err_msg=f"episode {i} key {key}")


def test_collect_wall_keys_and_shapes(tmp_path):
    store = collect(
        ENV, policy="noisy-expert", episodes=2, out=tmp_path / "w", seed=3, env_kwargs=KW, progress=False
    )
    assert len(store) == 2
    assert [e["seed"] for e in store.manifest["episodes"]] == [3, 4]
    T = int(store.episode_lengths[0])
    ep = store.episode(0)
    assert ep["pixels"].shape == (T + 1, 32, 32, 3) and ep["pixels"].dtype == np.uint8
    assert ep["proprio"].shape == (T + 1, 2) and ep["proprio"].dtype == np.float32
    assert ep["state"].dtype == np.float64 and len(ep["state"]) == T + 1
    assert ep["action"].shape == (T, 2) and ep["action"].dtype == np.float32
    assert ep["terminated"].dtype == bool and ep["truncated"].dtype == bool and ep["truncated"][-1]
    assert store.manifest["observation_space"]["type"] == "Dict"
    assert (store.root / "stats.json").exists()


def test_workers_give_identical_data_and_resume(tmp_path):
    one = collect(ENV, policy="noisy-expert", episodes=5, out=tmp_path / "one", env_kwargs=KW, progress=False)
    two = collect(ENV, policy="noisy-expert", episodes=5, out=tmp_path / "two", workers=2, env_kwargs=KW,
                  progress=False)  # fmt: skip
    assert_same_data(one, two)
    part = collect(
        ENV, policy="noisy-expert", episodes=2, out=tmp_path / "part", env_kwargs=KW, progress=False
    )
    assert len(part) == 2
    resumed = collect(
        ENV, policy="noisy-expert", episodes=5, out=tmp_path / "part", env_kwargs=KW, progress=False
    )
    assert_same_data(one, resumed)


def test_resume_with_other_settings_is_refused(tmp_path):
    collect(ENV, policy="random", episodes=1, out=tmp_path / "d", env_kwargs=KW, progress=False)
    with pytest.raises(ValueError, match="key 'seed'"):
        collect(ENV, policy="random", episodes=2, out=tmp_path / "d", seed=1, env_kwargs=KW, progress=False)
    with pytest.raises(ValueError, match="key 'env_kwargs'"):
        collect(ENV, policy="random", episodes=2, out=tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="key 'behaviour_policy'"):
        collect(ENV, policy="expert", episodes=2, out=tmp_path / "d", env_kwargs=KW, progress=False)


def test_noise_std_sets_the_action_noise_and_is_checked_on_resume(tmp_path):
    calm = collect(ENV, policy="noisy-expert", episodes=3, out=tmp_path / "a", env_kwargs=KW, progress=False)
    jerky = collect(ENV, policy="noisy-expert", episodes=3, out=tmp_path / "b", env_kwargs=KW, noise_std=1.0,
                    progress=False)  # fmt: skip

    def step_change(store):  # mean |a_t - a_{t-1}|: noise makes consecutive actions differ
        return np.mean(
            [np.abs(np.diff(store.episode(i)["action"], axis=0)).mean() for i in range(len(store))]
        )

    assert step_change(jerky) > 1.5 * step_change(calm)
    with pytest.raises(ValueError, match="key 'noise_std'"):
        collect(ENV, policy="noisy-expert", episodes=4, out=tmp_path / "b", env_kwargs=KW, noise_std=0.5,
                progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"noise_std=1\.0 applies to policy='noisy-expert' only"):
        collect(ENV, policy="random", episodes=1, out=tmp_path / "c", noise_std=1.0, progress=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="policy='nope'"):
        collect(ENV, policy="nope", episodes=1, out=tmp_path / "x")
    with pytest.raises(ValueError, match="episodes=0"):
        collect(ENV, policy="random", episodes=0, out=tmp_path / "x")
    with pytest.raises(ValueError, match="workers=0"):
        collect(ENV, policy="random", episodes=1, out=tmp_path / "x", workers=0)


def test_checkpoint_policy(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    policy = MLPPolicy(obs_dim=2, action_dim=2, hidden=(8,))
    policy.save_pretrained(tmp_path / "pol")
    loaded = MLPPolicy.from_pretrained(tmp_path / "pol")
    for a, b in zip(policy.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    store = collect(
        ENV, policy=str(tmp_path / "pol"), episodes=1, out=tmp_path / "d", env_kwargs=KW, progress=False
    )
    proprio, action = store.read(0, "proprio"), store.read(0, "action")
    with torch.inference_mode():
        want = loaded(torch.as_tensor(np.array(proprio[:-1]))).numpy()
    np.testing.assert_allclose(action, want, rtol=1e-6, atol=1e-6)


def _committed(root: Path) -> int:
    try:
        return len(EpisodeStore.open(root, verify=False))
    except (FileNotFoundError, ValueError):
        return 0


def test_sigkill_mid_collection_then_resume(tmp_path):
    """Kill ``worldmodels data collect`` with SIGKILL once a few episodes are committed: the store opens
    clean with only whole episodes, and a re-run reaches the requested count with the data of an
    uninterrupted run."""
    out, n = tmp_path / "killed", 150
    cmd = [sys.executable, "-m", "worldmodels.cli", "data", "collect", "--env", ENV, "--policy", "noisy-expert",
           "--episodes", str(n), "--out", str(out), "--img-size", "32", "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while _committed(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = EpisodeStore.open(out, verify="full")
    assert 3 <= len(killed) < n, "the collector was not interrupted mid-run"
    assert killed.manifest["num_episodes"] == len(killed)
    listed = {f"ep_{i:06d}" for i in range(len(killed))}
    assert {p.name for p in (out / "episodes").glob("ep_*")} <= listed | {f"ep_{len(killed):06d}"}
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    resumed = EpisodeStore.open(out, verify="full")
    assert sorted(p.name for p in (out / "episodes").iterdir()) == [f"ep_{i:06d}" for i in range(n)]
    reference = collect(
        ENV, policy="noisy-expert", episodes=n, out=tmp_path / "ref", env_kwargs=KW, progress=False
    )
    assert_same_data(reference, resumed)


def test_policy_mixture_takes_turns_by_episode_seed(tmp_path):
    """``a+b``: even seeds run ``a``, odd seeds ``b``, each exactly as a collection of that policy alone."""
    mix = collect(ENV, policy="noisy-expert+sticky-random", episodes=4, out=tmp_path / "mix", seed=10,
                  env_kwargs=KW, noise_std=1.0, progress=False)  # fmt: skip
    expert = collect(ENV, policy="noisy-expert", episodes=4, out=tmp_path / "e", seed=10, env_kwargs=KW,
                     noise_std=1.0, progress=False)  # fmt: skip
    sticky = collect(ENV, policy="sticky-random", episodes=4, out=tmp_path / "s", seed=10, env_kwargs=KW,
                     progress=False)  # fmt: skip
    assert mix.manifest["behaviour_policy"] == "noisy-expert+sticky-random"
    for i in range(4):
        want = (expert if i % 2 == 0 else sticky).read(i, "action")
        np.testing.assert_array_equal(mix.read(i, "action"), want, err_msg=f"episode {i}")
    with pytest.raises(ValueError, match="'nope' is neither"):
        collect(ENV, policy="random+nope", episodes=1, out=tmp_path / "x")
    with pytest.raises(ValueError, match=r"noise_std=1\.0 applies to policy='noisy-expert' only"):
        collect(ENV, policy="random+sticky-random", episodes=1, out=tmp_path / "y", noise_std=1.0)


def test_collect_with_a_saved_sac_actor_on_a_gymnasium_mujoco_env(tmp_path):
    """``--policy DIR`` with a TanhGaussianActor: qpos/qvel stored, sampled actions reproducible per seed."""
    from worldmodels.rl.networks import TanhGaussianActor

    actor = TanhGaussianActor(17, 6, hidden=(8,))
    actor.save_pretrained(tmp_path / "actor")
    kw = {"max_episode_steps": 10}
    args = dict(policy=str(tmp_path / "actor"), episodes=2, env_kwargs=kw, progress=False)
    a = collect("HalfCheetah-v5", out=tmp_path / "a", stochastic=True, **args)
    b = collect("HalfCheetah-v5", out=tmp_path / "b", stochastic=True, **args)
    mean = collect("HalfCheetah-v5", out=tmp_path / "m", **args)
    assert_same_data(a, b)
    assert {"observation", "qpos", "qvel"} <= set(a.keys) and a.read(0, "qpos").shape == (11, 9)
    assert a.read(0, "observation").dtype == np.float32
    assert not np.array_equal(a.read(0, "action"), mean.read(0, "action"))
    np.testing.assert_array_equal(
        mean.read(0, "action")[0], actor.as_env_policy(None)(mean.read(0, "observation")[0])
    )
    with pytest.raises(ValueError, match="stochastic=True applies to a saved policy directory"):
        collect("HalfCheetah-v5", policy="random", episodes=1, out=tmp_path / "r", stochastic=True)
