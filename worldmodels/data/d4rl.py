"""D4RL-style offline locomotion datasets, built here from Gymnasium's MuJoCo v5 envs and our own SAC.

D4RL (Fu et al. 2020) defines five tiers per locomotion env; we build them the same way, from one SAC run
per env and seed (:mod:`worldmodels.rl.sac`):

* ``random``: uniform random actions;
* ``medium``: a snapshot of the SAC run whose evaluated return first reaches ``medium_fraction`` (a third)
  of the final policy's: D4RL's "early-stopped at about a third of expert performance";
* ``medium-replay``: every training episode of the SAC run up to the medium snapshot (its replay buffer);
* ``medium-expert``: the medium episodes followed by the expert episodes (the same episodes as those two
  tiers: same policies, same seeds);
* ``expert``: the final SAC policy.

Medium and expert data are collected as D4RL collected them: actions *sampled* from the stochastic policy
(``infos/action_log_probs`` kept), episodes of at most 1000 steps, the last episode cut at the size budget
(D4RL: 1M transitions for random/medium/expert, 2M for medium-expert). Every episode of a tier has a fixed
seed (``seed * 10**7 + offset(segment) + i``), so a killed build resumes from its last complete episode and
gives exactly the dataset an uninterrupted build gives. Episodes carry ``qpos``/``qvel``; a sample of
transitions is restored in the simulator and stepped at build time, and a dataset whose states do not
reproduce their next observations and rewards is rejected.

Layout of a built tier (an :class:`~worldmodels.data.store.EpisodeStore` plus)::

    <out>/d4rl.json               the dataset card: tier, sizes, policies and their evaluated returns,
                                  dataset returns and normalised scores, references, restore check, versions
    <out>/policies/<name>/        the behaviour policies (TanhGaussianActor directories)

Normalised score (D4RL): ``100 * (return - random) / (expert - random)``, with D4RL's reference returns
(:data:`REF_RETURNS`, from ``d4rl/infos.py``, measured on the old ``-v0..v2`` envs, so only approximate on
``-v5``) or with ours (the mean return of uniform random actions and the final SAC policy's evaluated
return, both on the ``-v5`` env).

:func:`qlearning_dataset` gives D4RL's flat transition view. Departure from ``d4rl.qlearning_dataset``: our
episodes store the true next observation of every step, so the transition at a terminal keeps its real
``s'`` (D4RL reads the next row, which is already the next episode's first observation) and nothing else
than the timed-out steps is dropped (D4RL also drops the dataset's very last row, having no ``s'`` for it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worldmodels.data.store import EpisodeStore
from worldmodels.io import atomic_write_text, fsync_dir

ENVS: dict[str, str] = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5"}
TIERS: tuple[str, ...] = ("random", "medium", "medium-replay", "medium-expert", "expert")

#: D4RL's reference returns ``(random, expert)`` for normalised scores (d4rl/infos.py, old env versions)
REF_RETURNS: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
}

#: transitions of D4RL's tiers (``None``: the replay buffer up to the medium policy, whatever its size)
D4RL_TRANSITIONS: dict[str, int | None] = {
    "random": 1_000_000,
    "medium": 1_000_000,
    "medium-replay": None,
    "medium-expert": 2_000_000,
    "expert": 1_000_000,
}

#: seed offsets of each kind of episode (``seed * 10**7 + offset + i``; SAC training uses ``+ i``)
SEED_OFFSETS: dict[str, int] = {
    "random": 1_000_000,
    "medium": 2_000_000,
    "expert": 3_000_000,
    "reference": 8_000_000,
}
CARD_NAME = "d4rl.json"


def check_env(env: str) -> str:
    """The Gymnasium id of a D4RL env name; ``ValueError`` naming the allowed names otherwise."""
    if env not in ENVS:
        raise ValueError(f"env={env!r} is not a D4RL locomotion env; allowed values: {sorted(ENVS)}")
    return ENVS[env]


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise ValueError(f"tier={tier!r} is not a D4RL tier; allowed values: {list(TIERS)}")
    return tier


def default_sac_config(env: str, seed: int = 0, total_steps: int = 1_000_000):
    """The SAC run behind an env's medium/expert tiers: CleanRL's defaults, evaluated every 5000 steps
    (the granularity of the medium snapshot)."""
    from worldmodels.rl.sac import SACConfig

    return SACConfig(env_id=check_env(env), seed=seed, total_steps=total_steps, eval_every=5_000)


# ------------------------------------------------------------------------------------ normalised score
def normalized_score(
    env: str,
    returns: float | np.ndarray,
    reference: str = "d4rl",
    ours: tuple[float, float] | str | os.PathLike | None = None,
) -> float | np.ndarray:
    """``100 * (returns - random) / (expert - random)``, elementwise.

    Args:
        env: ``halfcheetah``, ``hopper`` or ``walker2d``.
        returns: undiscounted episode returns (a number or an array).
        reference: ``"d4rl"`` (:data:`REF_RETURNS`) or ``"ours"`` (our ``-v5`` random and expert returns).
        ours: with ``reference="ours"``: ``(random, expert)``, or a built dataset directory whose card holds
            them.
    """
    check_env(env)
    if reference == "d4rl":
        lo, hi = REF_RETURNS[env]
    elif reference == "ours":
        if ours is None:
            raise ValueError("reference='ours' needs ours=(random, expert) or a built dataset directory")
        if isinstance(ours, str | os.PathLike):
            refs = read_card(ours).get("references", {}).get("ours")
            if refs is None:
                raise ValueError(f"{Path(ours) / CARD_NAME}: key 'references.ours' is missing")
            lo, hi = refs
        else:
            lo, hi = ours
    else:
        raise ValueError(f"reference={reference!r}; allowed values: ['d4rl', 'ours']")
    out = 100.0 * (np.asarray(returns, dtype=np.float64) - lo) / (hi - lo)
    return float(out) if out.ndim == 0 else out


def read_card(root: str | os.PathLike) -> dict[str, Any]:
    """The ``d4rl.json`` card of a built tier."""
    path = Path(root) / CARD_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no dataset card (not a finished build-d4rl dataset)")
    return json.loads(path.read_text())


# -------------------------------------------------------------------------------------- transitions
def qlearning_dataset(
    store_or_dir: EpisodeStore | str | os.PathLike,
    drop_timeouts: bool = True,
    obs_key: str | None = None,
    infos: bool = False,
) -> dict[str, np.ndarray]:
    """D4RL's flat transition view of a store (``N`` transitions, episode after episode).

    Keys: ``observations``/``next_observations`` float32 ``(N, O)``, ``actions`` float32 ``(N, A)``,
    ``rewards`` float32 ``(N,)``, ``terminals``/``timeouts`` bool ``(N,)``; with ``infos``, also
    ``infos/qpos`` ``(N, nq)`` and ``infos/qvel`` ``(N, nv)``: the simulator state before each transition.

    Args:
        store_or_dir: a store or its directory.
        drop_timeouts: drop the last step of every episode cut by a time limit (``timeouts``), as
            ``d4rl.qlearning_dataset`` does by default (``terminate_on_end=False``); ``timeouts`` is then
            all False. ``False`` keeps them (their ``next_observations`` are real here) with
            ``timeouts=True``, for learners that bootstrap through time limits.
        obs_key: the frame key read as the observation (default ``observation``, else ``proprio``).
        infos: include ``infos/qpos`` and ``infos/qvel``.
    """
    store = store_or_dir if isinstance(store_or_dir, EpisodeStore) else EpisodeStore.open(store_or_dir)
    if obs_key is None:
        obs_key = next((k for k in ("observation", "proprio") if k in store.keys), None)
    if obs_key is None or obs_key not in store.keys:
        raise ValueError(f"{store.root}: obs_key {obs_key!r} is not in the dataset's keys {store.keys}")
    if infos and not {"qpos", "qvel"} <= set(store.keys):
        raise ValueError(
            f"{store.root}: infos=True needs keys 'qpos' and 'qvel'; the dataset has {store.keys}"
        )
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "rewards",
                                                        "next_observations", "terminals", "timeouts")}  # fmt: skip
    if infos:
        cols |= {"infos/qpos": [], "infos/qvel": []}
    for i in range(len(store)):
        ep = store.episode(i)
        keep = ~np.asarray(ep["truncated"]) if drop_timeouts else np.ones(len(ep["action"]), dtype=bool)
        obs = np.asarray(ep[obs_key], dtype=np.float32)
        cols["observations"].append(obs[:-1][keep])
        cols["next_observations"].append(obs[1:][keep])
        cols["actions"].append(np.asarray(ep["action"], dtype=np.float32)[keep])
        cols["rewards"].append(np.asarray(ep["reward"], dtype=np.float32)[keep])
        cols["terminals"].append(np.asarray(ep["terminated"], dtype=bool)[keep])
        cols["timeouts"].append(np.asarray(ep["truncated"], dtype=bool)[keep])
        if infos:
            cols["infos/qpos"].append(np.asarray(ep["qpos"])[:-1][keep])
            cols["infos/qvel"].append(np.asarray(ep["qvel"])[:-1][keep])
    return {k: np.concatenate(v) for k, v in cols.items()}


# ---------------------------------------------------------------------------------- restore fidelity
def check_restore(
    store: EpisodeStore, samples: int = 64, seed: int = 0, atol: float = 1e-5, rtol: float = 1e-5
) -> dict[str, Any]:
    """Restore ``samples`` random stored states (``qpos``/``qvel`` of frame ``t``) in the simulator, step the
    stored ``action[t]``, and compare with the stored frame ``t + 1`` and ``reward[t]``.

    Returns ``{"samples", "max_obs_error", "max_reward_error"}``; raises ``ValueError`` naming the episode,
    step and error when a restored state does not reproduce the data (observations are stored as float32,
    hence the tolerances).
    """
    import gymnasium as gym

    if not {"qpos", "qvel"} <= set(store.keys):
        raise ValueError(f"{store.root}: no 'qpos'/'qvel' keys to restore; keys: {store.keys}")
    env = gym.make(store.env_id, **store.manifest["env_kwargs"])
    env.reset(seed=seed)
    sim = env.unwrapped
    lengths = store.episode_lengths
    rng = np.random.default_rng(seed)
    flat = rng.choice(int(lengths.sum()), size=min(samples, int(lengths.sum())), replace=False)
    ends = np.cumsum(lengths)
    max_obs, max_rew = 0.0, 0.0
    for j in np.sort(flat):
        e = int(np.searchsorted(ends, j, side="right"))
        t = int(j - (ends[e - 1] if e else 0))
        sim.set_state(np.asarray(store.read(e, "qpos", t)), np.asarray(store.read(e, "qvel", t)))
        obs, reward, terminated, _, _ = sim.step(np.asarray(store.read(e, "action", t)))
        want_obs = np.asarray(store.read(e, "observation", t + 1), dtype=np.float64)
        want_reward = float(store.read(e, "reward", t))
        obs_abs, rew_abs = float(np.max(np.abs(obs - want_obs))), abs(reward - want_reward)
        obs_bad = np.any(np.abs(obs - want_obs) > atol + rtol * np.abs(want_obs))
        rew_bad = rew_abs > atol + rtol * abs(want_reward)
        if obs_bad or rew_bad or bool(terminated) != bool(store.read(e, "terminated", t)):
            env.close()
            raise ValueError(
                f"{store.root}: episode {e} step {t}: restoring qpos/qvel and stepping the stored action does "
                f"not reproduce the next observation/reward (max error {max(obs_abs, rew_abs):.3g}, "
                f"atol {atol}, rtol {rtol}; terminated {bool(terminated)}); the dataset is rejected"
            )
        max_obs, max_rew = max(max_obs, obs_abs), max(max_rew, rew_abs)
    env.close()
    return {"samples": len(flat), "max_obs_error": max_obs, "max_reward_error": max_rew}


# ------------------------------------------------------------------------------------------ policies
class UniformPolicy:
    """Uniform random actions from a per-episode ``np.random.Generator`` (``reset(seed)``); its
    ``last_log_prob`` is the uniform density's ``-sum(log(high - low))``, as D4RL's random datasets record."""

    def __init__(self, action_space) -> None:
        self.low = np.asarray(action_space.low, dtype=np.float32)
        self.high = np.asarray(action_space.high, dtype=np.float32)
        self.last_log_prob = -float(np.sum(np.log(self.high.astype(np.float64) - self.low)))
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def __call__(self, obs=None) -> np.ndarray:
        return self.rng.uniform(self.low, self.high).astype(np.float32)


@dataclass
class BuildConfig:
    """Settings of ``worldmodels data build-d4rl`` (shared by the command line and :func:`build_tier`)."""

    env: str = field(metadata={"help": "halfcheetah | hopper | walker2d"})
    tier: str = field(metadata={"help": "random | medium | medium-replay | medium-expert | expert"})
    out: str = field(metadata={"help": "dataset directory"})
    seed: int = field(default=0, metadata={"help": "seed of the SAC run and of every collected episode"})
    transitions: int | None = field(
        default=None,
        metadata={"help": "transitions per collected policy (default D4RL's 1M; medium-expert gets twice)"},
    )
    sac_dir: str | None = field(
        default=None, metadata={"help": "the SAC run (default <out>/../sac/<env>-seed<seed>)"}
    )
    medium_fraction: float = field(
        default=1 / 3,
        metadata={"help": "medium = first snapshot reaching this fraction of the expert's return"},
    )
    medium_step: int | None = field(
        default=None, metadata={"help": "use the snapshot at this SAC step as the medium policy instead"}
    )
    reference_episodes: int = field(
        default=10, metadata={"help": "episodes of uniform random actions for our random reference return"}
    )
    restore_samples: int = field(default=64, metadata={"help": "transitions checked by restoring qpos/qvel"})

    def __post_init__(self) -> None:
        check_env(self.env)
        check_tier(self.tier)
        if self.transitions is not None and self.transitions < 1:
            raise ValueError(f"transitions={self.transitions} must be >= 1")
        if not 0.0 < self.medium_fraction < 1.0:
            raise ValueError(f"medium_fraction={self.medium_fraction} must be in (0, 1)")

    @property
    def sac_root(self) -> Path:
        if self.sac_dir is not None:
            return Path(self.sac_dir)
        return Path(self.out).resolve().parent / "sac" / f"{self.env}-seed{self.seed}"

    @property
    def per_policy(self) -> int:
        return self.transitions if self.transitions is not None else 1_000_000


def _select_policies(cfg: BuildConfig, run) -> dict[str, dict[str, Any]]:
    """The medium and expert snapshots of a finished SAC run, with their evaluated returns."""
    evals = run.evals
    final = run.final_step
    by_step = {e["step"]: e for e in evals}
    expert = by_step[final]
    target = cfg.medium_fraction * expert["return_mean"]
    if cfg.medium_step is not None:
        if cfg.medium_step not in by_step:
            raise ValueError(
                f"medium_step={cfg.medium_step}: no snapshot at that step in {run.root}; "
                f"snapshots: {sorted(by_step)[:5]}... every {evals[0]['step']} steps"
            )
        medium = by_step[cfg.medium_step]
    else:
        medium = next((e for e in evals if e["return_mean"] >= target), None)
        if medium is None or medium["step"] == final:
            raise ValueError(
                f"{run.root}: no snapshot before the final one reaches {target:.1f} (a {cfg.medium_fraction:.3g} of the expert's {expert['return_mean']:.1f})"
            )
    out = {}
    for name, e in (("medium", medium), ("expert", expert)):
        src = run.root / "actor" if name == "expert" else run.snapshot(e["step"])
        out[name] = {"source": str(src), "sac_step": e["step"], "eval_return_mean": e["return_mean"],
                     "eval_return_std": e["return_std"], "eval_episodes": len(e["returns"]),
                     "sampling": "stochastic"}  # fmt: skip
    out["medium"]["target_return"] = target
    out["medium"]["fraction_of_expert"] = medium["return_mean"] / expert["return_mean"]
    return out


def _copy_policy(src: str | Path, dst: Path) -> None:
    if (dst / "config.json").exists():
        return
    tmp = dst.parent / f".tmp-{dst.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def _random_reference(env_id: str, env_kwargs: dict[str, Any], seed: int, episodes: int) -> float:
    """Mean return of uniform random actions over ``episodes`` episodes (our ``random`` reference)."""
    import gymnasium as gym

    from worldmodels.data.collect import rollout_episode

    env = gym.make(env_id, **env_kwargs)
    policy = UniformPolicy(env.action_space)
    base = seed * 10**7 + SEED_OFFSETS["reference"]
    returns = [float(rollout_episode(env, policy, base + k)["reward"].sum()) for k in range(episodes)]
    env.close()
    return float(np.mean(returns))


#: the behaviour policies (besides uniform random) of each tier
TIER_POLICIES: dict[str, list[str]] = {"random": [], "medium": ["medium"], "medium-replay": ["medium"],
                                       "medium-expert": ["medium", "expert"], "expert": ["expert"]}  # fmt: skip


def _segments(cfg: BuildConfig, policies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What a tier is made of, in order: collected segments (a policy, the seed of its first episode, a
    transition budget) or, for medium-replay, the SAC training episodes up to the medium snapshot."""
    base = cfg.seed * 10**7
    if cfg.tier == "random":
        return [
            {"policy": "random", "seed_base": base + SEED_OFFSETS["random"], "transitions": cfg.per_policy}
        ]
    if cfg.tier == "medium-replay":
        return [{"policy": "sac-training", "up_to_step": policies["medium"]["sac_step"]}]
    return [{"policy": n, "seed_base": base + SEED_OFFSETS[n], "transitions": cfg.per_policy,
             "sac_step": policies[n]["sac_step"]} for n in TIER_POLICIES[cfg.tier]]  # fmt: skip


def _sibling(
    cfg: BuildConfig, seg: dict[str, Any], env_kwargs: dict[str, Any], sac_config
) -> EpisodeStore | None:
    """A finished sibling tier ``<out>/../<env>-<policy>`` made of exactly this segment (same SAC run and
    policy step, seeds, budget, env settings): medium-expert copies its episodes instead of simulating them
    again (they are the same episodes)."""
    root = Path(cfg.out).resolve().parent / f"{cfg.env}-{seg['policy']}"
    if not (root / CARD_NAME).exists():
        return None
    card = read_card(root)
    sac = card.get("sac") or {}
    if sac.get("run_dir") != str(cfg.sac_root.resolve()) or sac.get("config") != sac_config.to_dict():
        return None
    store = EpisodeStore.open(root, verify=False)
    same = store.manifest["extra"].get("segments") == [seg] and store.manifest["env_kwargs"] == env_kwargs
    return store if same else None


def build_tier(cfg: BuildConfig, sac_config=None, progress: bool = True) -> dict[str, Any]:
    """Build (or resume) one tier; returns its card (also written to ``<out>/d4rl.json``).

    Args:
        cfg: what to build (see :class:`BuildConfig`).
        sac_config: the SAC run's :class:`~worldmodels.rl.sac.SACConfig` (default
            :func:`default_sac_config`); trained or resumed in ``cfg.sac_root`` when the tier needs it.
        progress: show progress bars.
    """
    import gymnasium as gym
    from tqdm.auto import tqdm

    from worldmodels.data.collect import _space_json, rollout_episode
    from worldmodels.pretrained import load_pretrained
    from worldmodels.rl.sac import SACRun, check_config, train_sac

    t0 = time.perf_counter()
    env_id = check_env(cfg.env)
    out = Path(cfg.out)
    sac_config = sac_config or default_sac_config(cfg.env, cfg.seed)
    if sac_config.env_id != env_id or sac_config.seed != cfg.seed:
        raise ValueError(
            f"sac_config env_id={sac_config.env_id!r} seed={sac_config.seed} differ from the build's "
            f"env={cfg.env!r} ({env_id}) seed={cfg.seed}"
        )
    run = SACRun(cfg.sac_root)
    if cfg.tier != "random":
        train_sac(sac_config, cfg.sac_root, progress=progress)  # trains, resumes, or checks a finished run
    elif (run.root / "config.json").exists():
        check_config(run.root, sac_config)  # random data needs no SAC; a finished run gives our references
    policies = _select_policies(cfg, run) if run.finished else {}
    env_kwargs = (
        {} if sac_config.max_episode_steps is None else {"max_episode_steps": sac_config.max_episode_steps}
    )
    env = gym.make(env_id, **env_kwargs)
    segments = _segments(cfg, policies)
    store = EpisodeStore.create(
        out, env_id=env_id, env_kwargs=env_kwargs, behaviour_policy=f"d4rl-{cfg.tier}",
        observation_space=_space_json(env.observation_space), action_space=_space_json(env.action_space),
        extra={"tier": cfg.tier, "seed": cfg.seed, "segments": segments},
    )  # fmt: skip
    if (out / CARD_NAME).exists() and ("ours" in read_card(out)["references"] or not policies):
        env.close()
        return read_card(out)  # finished (a random tier built before its SAC run gets our references later)
    for name in TIER_POLICIES[cfg.tier]:
        _copy_policy(policies[name]["source"], out / "policies" / name)

    if cfg.tier == "medium-replay":  # the SAC run's training episodes up to the medium snapshot
        exp = run.experience
        count = int(np.searchsorted(np.cumsum(exp.episode_lengths), segments[0]["up_to_step"], side="right"))
        for i in tqdm(
            range(len(store), count), desc=f"{cfg.env}-{cfg.tier}", unit="ep", disable=not progress
        ):
            store.append_episode({k: np.asarray(v) for k, v in exp.episode(i).items()},
                                 seed=exp.manifest["episodes"][i]["seed"])  # fmt: skip
    for seg in segments if cfg.tier != "medium-replay" else []:
        mine = [i for i, e in enumerate(store.manifest["episodes"])
                if seg["seed_base"] <= e["seed"] < seg["seed_base"] + 10**6]  # fmt: skip
        steps = int(store.episode_lengths[mine].sum()) if mine else 0
        bar = tqdm(total=seg["transitions"], initial=steps, desc=f"{cfg.env}-{cfg.tier} {seg['policy']}",
                   unit="step", disable=not progress)  # fmt: skip
        sibling = _sibling(cfg, seg, env_kwargs, sac_config) if cfg.tier == "medium-expert" else None
        if seg["policy"] == "random":
            policy = UniformPolicy(env.action_space)
        else:
            policy = load_pretrained(out / "policies" / seg["policy"]).as_env_policy(env, stochastic=True)
        k = len(mine)
        while steps < seg["transitions"]:
            if sibling is not None:  # the same episode, already simulated by the sibling tier
                ep = {key: np.asarray(v) for key, v in sibling.episode(k).items()}
            else:
                ep = rollout_episode(env, policy, seg["seed_base"] + k, max_steps=seg["transitions"] - steps,
                                     record_log_prob=True)  # fmt: skip
            store.append_episode(ep, seed=seg["seed_base"] + k)
            steps += len(ep["action"])
            k += 1
            bar.update(len(ep["action"]))
        bar.close()
    env.close()

    restore = check_restore(store, samples=cfg.restore_samples, seed=cfg.seed)
    references = {"d4rl": list(REF_RETURNS[cfg.env])}
    if policies:
        random_return = _random_reference(env_id, env_kwargs, cfg.seed, cfg.reference_episodes)
        references["ours"] = [random_return, policies["expert"]["eval_return_mean"]]
    card = _card(store, cfg, policies, references, restore, sac_config, run)
    card["build_time_s"] = round(time.perf_counter() - t0, 1)
    store.stats()
    atomic_write_text(out / CARD_NAME, json.dumps(card, indent=1))
    return card


def episode_returns(store: EpisodeStore, complete_only: bool = True) -> np.ndarray:
    """Returns of the store's episodes; ``complete_only`` skips episodes cut by the size budget (neither
    terminated nor at the env's time limit)."""
    returns = np.asarray([e["return"] for e in store.manifest["episodes"]], dtype=np.float64)
    if not complete_only:
        return returns
    limit = store.manifest["env_kwargs"].get("max_episode_steps", 1000)
    keep = [
        bool(store.read(i, "terminated")[-1]) or int(n) == limit for i, n in enumerate(store.episode_lengths)
    ]
    return returns[np.asarray(keep, dtype=bool)]


def _stats(x: np.ndarray) -> dict[str, float]:
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}


def _card(store, cfg, policies, references, restore, sac_config, run) -> dict[str, Any]:
    import gymnasium as gym
    import mujoco

    returns = episode_returns(store)
    d4rl_size = D4RL_TRANSITIONS[cfg.tier]
    n = int(store.episode_lengths.sum())
    card = {
        "name": f"{cfg.env}-{cfg.tier}",
        "env": cfg.env,
        "tier": cfg.tier,
        "env_id": store.env_id,
        "env_kwargs": store.manifest["env_kwargs"],
        "versions": {"gymnasium": gym.__version__, "mujoco": mujoco.__version__},
        "seed": cfg.seed,
        "transitions": n,
        "episodes": len(store),
        "complete_episodes": len(returns),
        "d4rl_transitions": d4rl_size,
        "smaller_than_d4rl": d4rl_size is not None and n < d4rl_size,
        "returns": _stats(returns),
        "normalized": {"d4rl": _stats(normalized_score(cfg.env, returns))},
        "references": references,
        "policies": {
            k: {kk: vv for kk, vv in policies[k].items() if kk != "source"} | {"path": f"policies/{k}"}
            for k in TIER_POLICIES[cfg.tier]
        },
        "restore_check": restore,
        "sac": None,
    }
    if "ours" in references:
        card["normalized"]["ours"] = _stats(
            normalized_score(cfg.env, returns, "ours", tuple(references["ours"]))
        )
    if policies:
        card["sac"] = {"run_dir": str(run.root.resolve()), "config": sac_config.to_dict(), "final_step": run.final_step,
                       "expert_return": policies["expert"]["eval_return_mean"],
                       "medium_step": policies["medium"]["sac_step"],
                       "medium_return": policies["medium"]["eval_return_mean"],
                       "medium_fraction": cfg.medium_fraction}  # fmt: skip
    if card["smaller_than_d4rl"]:
        card["note"] = f"{n} transitions, smaller than D4RL's {d4rl_size} (CPU budget)"
    return card
