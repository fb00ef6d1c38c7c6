"""Collectors: roll a behaviour policy in a real simulator and commit episodes to an :class:`EpisodeStore`.

Episode ``i`` always uses seed ``seed + i`` (for the env reset and the policy), so re-running the same
command resumes to the requested count and reproduces exactly the data an uninterrupted run would have
written. With ``workers > 1`` episodes are simulated in worker processes and committed by the parent in
index order; at most ``2 * workers`` episodes are in flight (submitted or finished and waiting), so memory
stays flat however many episodes are collected.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from worldmodels.data.store import EpisodeStore

BUILTIN_POLICIES = ("random", "expert", "noisy-expert", "sticky-random")


class _EpisodeMixture:
    """Several behaviour policies, one per episode: the episode with seed ``s`` runs ``policies[s % n]``."""

    def __init__(self, policies: list) -> None:
        self.policies = policies
        self.current = policies[0]

    def reset(self, seed: int | None = None, **kwargs) -> None:
        self.current = self.policies[(seed or 0) % len(self.policies)]
        self.current.reset(seed=seed, **kwargs)

    def __call__(self, obs: Any = None) -> np.ndarray:
        return self.current(obs)


def parse_policy(policy: str) -> list[str]:
    """Components of a policy spec: one policy, or several joined by ``+`` (one per episode, in turn)."""
    parts = [p.strip() for p in policy.split("+")]
    for part in parts:
        if part not in BUILTIN_POLICIES and not (Path(part) / "config.json").exists():
            raise ValueError(
                f"policy={policy!r}: {part!r} is neither one of {BUILTIN_POLICIES} nor a saved policy directory"
            )
    return parts


def _space_json(space) -> dict[str, Any]:
    import gymnasium as gym

    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": {k: _space_json(v) for k, v in space.spaces.items()}}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).str,
            "low": np.asarray(space.low).min().item(),
            "high": np.asarray(space.high).max().item(),
        }
    return {"type": type(space).__name__, "repr": repr(space)}


def _make_policy(env, policy: str, seed: int, noise_std: float | None = None, stochastic: bool = False):
    if "+" in policy:
        parts = parse_policy(policy)
        return _EpisodeMixture([_make_policy(env, p, seed, noise_std, stochastic) for p in parts])
    if policy in BUILTIN_POLICIES:
        from worldmodels.envs.controllers import ScriptedPolicy

        kwargs = {} if noise_std is None or policy != "noisy-expert" else {"noise_std": noise_std}
        return ScriptedPolicy(env, policy, seed=seed, **kwargs)
    from worldmodels.pretrained import load_pretrained

    model = load_pretrained(policy)
    if not hasattr(model, "as_env_policy"):
        raise ValueError(
            f"policy={policy!r}: a saved {model.model_type}, which is not a policy (no as_env_policy)"
        )
    if not stochastic:
        return model.as_env_policy(env)
    try:
        return model.as_env_policy(env, stochastic=True)
    except TypeError:
        raise ValueError(
            f"stochastic=True: the saved {model.model_type} in {policy} is deterministic"
        ) from None


def sim_state(env) -> dict[str, np.ndarray]:
    """The simulator state to store with a frame: ``state`` from our envs' ``get_state()``, or ``qpos`` +
    ``qvel`` (float64 copies) from a Gymnasium MuJoCo env's ``data``; empty for anything else."""
    unwrapped = env.unwrapped
    if hasattr(unwrapped, "get_state"):
        return {"state": np.asarray(unwrapped.get_state(), dtype=np.float64)}
    data = getattr(unwrapped, "data", None)
    if data is not None and hasattr(data, "qpos") and hasattr(data, "qvel"):
        return {"qpos": np.array(data.qpos, dtype=np.float64), "qvel": np.array(data.qvel, dtype=np.float64)}
    return {}


def rollout_episode(
    env, policy, seed: int, max_steps: int | None = None, record_log_prob: bool = False
) -> dict[str, np.ndarray]:
    """Run one episode of ``policy`` in ``env`` (reset with ``seed``) and return its arrays.

    Frame keys: the observation (dict keys, or ``observation`` cast to float32 for a vector observation) and
    the simulator state (:func:`sim_state`: ``state``, or ``qpos`` + ``qvel``), ``T + 1`` rows. Step keys:
    ``action``, ``reward``, ``terminated``, ``truncated``, and with ``record_log_prob`` the policy's
    ``last_log_prob`` after each action as ``action_log_prob`` (D4RL's ``infos/action_log_probs``).
    ``max_steps`` cuts the episode after that many steps and marks the last one ``truncated`` (a dataset's
    size budget ending mid-episode, as a time limit would).
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps={max_steps} must be >= 1")
    obs, _ = env.reset(seed=seed)
    policy.reset(seed=seed)
    frames: dict[str, list] = {k: [v] for k, v in sim_state(env).items()}
    vector_obs = not isinstance(obs, dict)

    def add_obs(o) -> None:
        for k, v in o.items() if not vector_obs else [("observation", np.asarray(o, dtype=np.float32))]:
            frames.setdefault(k, []).append(v)

    add_obs(obs)
    steps: dict[str, list] = {"action": [], "reward": [], "terminated": [], "truncated": []}
    if record_log_prob:
        steps["action_log_prob"] = []
    while True:
        action = policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        truncated = truncated or (max_steps is not None and len(steps["action"]) + 1 >= max_steps)
        steps["action"].append(np.asarray(action, dtype=np.float32))
        steps["reward"].append(np.float32(reward))
        steps["terminated"].append(bool(terminated))
        steps["truncated"].append(bool(truncated))
        if record_log_prob:
            steps["action_log_prob"].append(np.float32(policy.last_log_prob))
        for k, v in sim_state(env).items():
            frames[k].append(v)
        add_obs(obs)
        if terminated or truncated:
            break
    out = {k: np.stack(v) for k, v in frames.items()}
    if "proprio" in out:
        out["proprio"] = out["proprio"].astype(np.float32)
    out["action"] = np.stack(steps["action"])
    out["reward"] = np.asarray(steps["reward"], dtype=np.float32)
    out["terminated"] = np.asarray(steps["terminated"], dtype=bool)
    out["truncated"] = np.asarray(steps["truncated"], dtype=bool)
    if record_log_prob:
        out["action_log_prob"] = np.asarray(steps["action_log_prob"], dtype=np.float32)
    return out


_WORKER: dict[str, Any] = {}


def _worker_init(
    env_id: str, env_kwargs: dict[str, Any], policy: str, noise_std: float | None, stochastic: bool
) -> None:
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401  (registers the ids)

    env = gym.make(env_id, **env_kwargs)
    _WORKER.update(env=env, policy=_make_policy(env, policy, 0, noise_std, stochastic))


def _worker_episode(seed: int) -> tuple[int, dict[str, np.ndarray]]:
    return seed, rollout_episode(_WORKER["env"], _WORKER["policy"], seed)


def collect(
    env_id: str,
    *,
    policy: str,
    episodes: int,
    out: str | os.PathLike,
    workers: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    noise_std: float | None = None,
    stochastic: bool = False,
    progress: bool = True,
) -> EpisodeStore:
    """Collect ``episodes`` episodes of ``policy`` in ``env_id`` into ``out`` (resuming if it exists).

    Args:
        env_id: a registered Gymnasium id (``worldmodels/Wall-v0``, ...).
        policy: ``random``, ``expert``, ``noisy-expert``, ``sticky-random`` (the env's scripted
            controllers, :class:`~worldmodels.envs.controllers.ScriptedPolicy`) or the directory of a saved
            :class:`~worldmodels.data.policies.MLPPolicy`; several joined by ``+`` take turns by episode
            (``noisy-expert+sticky-random``: even seeds the first, odd seeds the second).
        episodes: total number of episodes wanted in the store.
        out: dataset directory.
        workers: simulator processes (``1`` runs in this process).
        seed: episode ``i`` uses seed ``seed + i``.
        env_kwargs: keyword arguments for ``gymnasium.make`` (e.g. ``{"img_size": 64}``).
        noise_std: action noise of ``noisy-expert`` (``None``: the policy's default, 0.3); larger values
            give jerkier actions, closer to what sampling planners try.
        stochastic: a saved stochastic policy (:class:`~worldmodels.rl.networks.TanhGaussianActor`) samples
            its actions, seeded per episode (D4RL's way), instead of acting with its mean.
        progress: show a tqdm bar.
    """
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401

    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be >= 1")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    parts = parse_policy(policy)
    if noise_std is not None and "noisy-expert" not in parts:
        raise ValueError(f"noise_std={noise_std} applies to policy='noisy-expert' only, not {policy!r}")
    if stochastic and all(p in BUILTIN_POLICIES for p in parts):
        raise ValueError(f"stochastic=True applies to a saved policy directory, not {policy!r}")
    env_kwargs = dict(env_kwargs or {})
    env = gym.make(env_id, **env_kwargs)
    store = EpisodeStore.create(
        out,
        env_id=env_id,
        env_kwargs=env_kwargs,
        behaviour_policy=policy,
        observation_space=_space_json(env.observation_space),
        action_space=_space_json(env.action_space),
        extra={"seed": seed}
        | ({} if noise_std is None else {"noise_std": noise_std})
        | ({"stochastic": True} if stochastic else {}),
    )
    start = len(store)
    todo = [seed + i for i in range(start, episodes)]
    bar = tqdm(total=episodes, initial=start, desc=f"collect {env_id}", unit="ep", disable=not progress)
    if workers == 1:
        pol = _make_policy(env, policy, 0, noise_std, stochastic)
        for s in todo:
            store.append_episode(rollout_episode(env, pol, s), seed=s)
            bar.update()
    elif todo:
        ctx = mp.get_context("spawn")
        seeds = iter(todo)
        with ctx.Pool(
            workers, initializer=_worker_init, initargs=(env_id, env_kwargs, policy, noise_std, stochastic)
        ) as pool:
            pending = deque((s, pool.apply_async(_worker_episode, (s,))) for s in islice(seeds, 2 * workers))
            while pending:
                s, result = pending.popleft()
                _, arrays = result.get()
                store.append_episode(arrays, seed=s)
                del arrays
                bar.update()
                nxt = next(seeds, None)
                if nxt is not None:
                    pending.append((nxt, pool.apply_async(_worker_episode, (nxt,))))
    bar.close()
    env.close()
    store.stats()
    store.close()  # the writer lock; a later append takes it again
    return store
