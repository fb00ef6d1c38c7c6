"""Online Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications"), in one
file in CleanRL's spirit: the config, the replay buffer, the agent's three losses and the training loop read
top to bottom.

Algorithm (equation numbers of the 2018 "Algorithms and Applications" paper):

* critics: ``N`` Q-networks in one :class:`~worldmodels.rl.networks.VectorizedCritic` regress to
  ``y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s'))`` with ``a' ~ pi(.|s')`` and
  target critics ``Q'`` (eq. 5-6; the min over the ensemble is clipped double Q at ``N = 2`` and SAC-N at
  ``N = 10``). A time-limit truncation bootstraps (only ``terminated`` cuts the return).
* actor: minimise ``E[alpha log pi(a|s) - min_i Q_i(s, a)]`` with the reparameterised ``a`` (eq. 7, 11).
* temperature: minimise ``E[-alpha (log pi(a|s) + H_target)]`` with ``H_target = -action_dim`` (eq. 18),
  learning ``log alpha``.
* target critics: Polyak averaging ``Q' <- (1 - tau) Q' + tau Q``.

Schedule as CleanRL's ``sac_continuous_action.py``: uniform random actions for ``learning_starts`` steps,
then one critic update per env step; every ``policy_frequency`` steps, ``policy_frequency`` actor (and
temperature) updates on the same batch (the delayed update of TD3, compensated). Departure: the temperature
loss reuses the actor step's ``log pi`` (detached) instead of drawing a fresh sample.

Run directory (everything written atomically; a killed run resumes exactly)::

    <run>/config.json            the SACConfig (a resumed run must ask for the same one)
    <run>/checkpoint.pt          agent, optimisers, generator, step and episode counters, evaluation history
                                 (written at the end of an episode, every ``checkpoint_every`` steps)
    <run>/experience/            every completed training episode, an EpisodeStore with qpos/qvel: the
                                 replay buffer is rebuilt from it on resume, and D4RL's medium-replay tier
                                 is its prefix
    <run>/snapshots/step_XXXXXXXX/   the actor at each evaluation (a TanhGaussianActor directory)
    <run>/actor/                 the final actor
    <run>/finished.json          the final step and the total_steps it reached (a finished run)
    <run>/evals.json             the evaluation history (return vs env steps)

Exact resume: training episode ``i`` resets the env with seed ``seed * 10**7 + i``; all other randomness
(exploration, minibatch indices, reparameterisation noise) comes from one ``torch.Generator`` saved in the
checkpoint; checkpoints fall on episode boundaries and the replay buffer is rebuilt from the committed
episodes, so a run resumed from its checkpoint computes exactly what the uninterrupted run computes (same
thread count, same device).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from worldmodels.io import atomic_path, atomic_write_text
from worldmodels.rl.networks import TanhGaussianActor, VectorizedCritic

EVAL_SEED_OFFSET = 9_000_000


@dataclass
class SACConfig:
    """Every setting of a SAC run (CleanRL's defaults). Shared by the Python API and the command line."""

    env_id: str = field(default="HalfCheetah-v5", metadata={"help": "Gymnasium id of the environment"})
    total_steps: int = field(default=1_000_000, metadata={"help": "env steps to train for"})
    seed: int = field(default=0, metadata={"help": "seed of the networks, the env resets and the sampling"})
    max_episode_steps: int | None = field(
        default=None, metadata={"help": "time limit of an episode (default: the env's own, 1000)"}
    )
    num_critics: int = field(default=2, metadata={"help": "Q-networks in the ensemble (2: clipped double Q)"})
    hidden: tuple[int, ...] = field(
        default=(256, 256), metadata={"help": "hidden widths of actor and critics"}
    )
    batch_size: int = field(default=256, metadata={"help": "minibatch size of every update"})
    buffer_size: int = field(default=1_000_000, metadata={"help": "replay buffer capacity (transitions)"})
    learning_starts: int = field(
        default=5_000, metadata={"help": "uniform random steps before updates begin"}
    )
    gamma: float = field(default=0.99, metadata={"help": "discount"})
    tau: float = field(default=0.005, metadata={"help": "Polyak rate of the target critics"})
    policy_lr: float = field(default=3e-4, metadata={"help": "Adam learning rate of the actor"})
    q_lr: float = field(default=1e-3, metadata={"help": "Adam learning rate of the critics and temperature"})
    policy_frequency: int = field(default=2, metadata={"help": "delayed actor updates (TD3-style)"})
    target_network_frequency: int = field(default=1, metadata={"help": "steps between target updates"})
    alpha: float = field(default=0.2, metadata={"help": "entropy temperature (initial value if autotune)"})
    autotune: bool = field(default=True, metadata={"help": "learn alpha toward entropy -action_dim"})
    eval_every: int = field(default=10_000, metadata={"help": "env steps between evaluations + snapshots"})
    eval_episodes: int = field(default=10, metadata={"help": "episodes per evaluation (mean action)"})
    checkpoint_every: int = field(default=10_000, metadata={"help": "env steps between checkpoints"})
    device: str = field(default="cpu", metadata={"help": "torch device of the networks"})

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        positive = ("total_steps", "num_critics", "batch_size", "buffer_size", "policy_frequency",
                    "target_network_frequency", "eval_every", "eval_episodes", "checkpoint_every")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"SACConfig.{name}={getattr(self, name)!r} must be >= 1")
        if self.learning_starts < 0:
            raise ValueError(f"SACConfig.learning_starts={self.learning_starts!r} must be >= 0")
        if not 0.0 < self.gamma <= 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError(f"SACConfig: gamma={self.gamma!r} and tau={self.tau!r} must be in (0, 1]")
        if not self.alpha > 0:
            raise ValueError(f"SACConfig.alpha={self.alpha!r} must be > 0")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"SACConfig.max_episode_steps={self.max_episode_steps!r} must be >= 1 or None")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "SACConfig") -> SACConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"{source}: unknown field {unknown[0]!r}; SACConfig's fields are {sorted(names)}"
            )
        return cls(**d)

    @classmethod
    def add_arguments(
        cls, parser: argparse.ArgumentParser, prefix: str = "sac-", skip: tuple[str, ...] = ()
    ) -> None:
        """One ``--<prefix><field>`` option per field not in ``skip`` (default ``None``: keep the config's
        value)."""
        group = parser.add_argument_group("SAC", "settings of the SAC run (SACConfig)")
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            flag = f"--{prefix}{f.name.replace('_', '-')}"
            if f.name == "hidden":
                group.add_argument(flag, type=int, nargs="+", default=None, help=f.metadata["help"])
            elif f.type in ("bool",):
                group.add_argument(flag, choices=("true", "false"), default=None, help=f.metadata["help"])
            else:
                kind = {"int": int, "float": float, "str": str, "int | None": int}[f.type]
                group.add_argument(flag, type=kind, default=None, help=f.metadata["help"])

    def override(self, args: argparse.Namespace, prefix: str = "sac-") -> SACConfig:
        """A copy with the fields given on the command line (see :meth:`add_arguments`) replaced."""
        changes = {}
        for f in dataclasses.fields(self):
            value = getattr(args, (prefix + f.name).replace("-", "_"), None)
            if value is not None:
                changes[f.name] = (value == "true") if f.type == "bool" else value
        return dataclasses.replace(self, **changes)


def make_env(config: SACConfig):
    """``gymnasium.make(config.env_id)`` with ``config.max_episode_steps`` when set."""
    import gymnasium as gym

    kwargs = {} if config.max_episode_steps is None else {"max_episode_steps": config.max_episode_steps}
    return gym.make(config.env_id, **kwargs)


# --------------------------------------------------------------------------------------------- replay
class ReplayBuffer:
    """A ring of ``capacity`` transitions in preallocated tensors (float32; ``terminated`` as 0/1).

    Shapes of :meth:`sample`: ``obs``/``next_obs`` ``(B, obs_dim)``, ``action`` ``(B, action_dim)``,
    ``reward``/``terminated`` ``(B,)``.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: str | torch.device = "cpu"):
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.device = torch.device(device)
        z = lambda *shape: torch.zeros(capacity, *shape, device=self.device)  # noqa: E731
        self.data = {"obs": z(obs_dim), "action": z(action_dim), "reward": z(), "next_obs": z(obs_dim),
                     "terminated": z()}  # fmt: skip

    def add(self, **rows: np.ndarray) -> None:
        """Append ``n`` transitions: each keyword an array with ``n`` leading rows (wrapping at capacity)."""
        n = len(rows["reward"])
        idx = (self.pos + torch.arange(n)) % self.capacity
        for key, value in rows.items():
            self.data[key][idx] = torch.as_tensor(np.array(value, dtype=np.float32), device=self.device)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        idx = torch.randint(self.size, (batch_size,), generator=generator, device=generator.device)
        idx = idx.to(self.device)
        return {k: v[idx] for k, v in self.data.items()}


# ---------------------------------------------------------------------------------------------- agent
class ActorCriticAlpha(nn.Module):
    """The parts every SAC-style agent here holds: a :class:`TanhGaussianActor`, ``num_critics`` critics
    (:class:`VectorizedCritic`) with their target copy, the log-temperature, and an Adam optimiser for each;
    subclasses add the update rules (online :class:`SAC`, offline ``worldmodels.rl.mbrl.SACN``)."""

    def __init__(self, obs_dim: int, action_dim: int, action_low, action_high, *, hidden, num_critics: int,
                 alpha: float, autotune: bool, actor_lr: float, critic_lr: float, alpha_lr: float) -> None:  # fmt: skip
        super().__init__()
        self.actor = TanhGaussianActor(obs_dim, action_dim, hidden, list(map(float, action_low)),
                                       list(map(float, action_high)))  # fmt: skip
        self.critic = VectorizedCritic(obs_dim, action_dim, num_critics, hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha)), requires_grad=autotune)
        self.target_entropy = -float(action_dim)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=critic_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=alpha_lr)

    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.detach().exp()

    def actor_step(self, obs: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One actor step on ``min_i Q_i(s, a~pi) - alpha log pi(a|s)``; returns the loss and ``log pi``."""
        action, log_prob = self.actor.sample(obs, generator)
        self.critic.requires_grad_(False)  # gradients flow through the critics to the action only
        q = self.critic(obs, action).min(0).values
        actor_loss = (self.alpha * log_prob - q).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.critic.requires_grad_(True)
        self.actor_optimizer.step()
        return actor_loss, log_prob

    def optimizer_states(self) -> dict[str, Any]:
        return {n: getattr(self, f"{n}_optimizer").state_dict() for n in ("actor", "critic", "alpha")}

    def load_optimizer_states(self, states: dict[str, Any]) -> None:
        for n, state in states.items():
            getattr(self, f"{n}_optimizer").load_state_dict(state)


class SAC(ActorCriticAlpha):
    """Online SAC: :class:`ActorCriticAlpha` with CleanRL's update rules.

    Args:
        obs_dim: observation size.
        action_dim: action size.
        action_low / action_high: bounds of the env's action box.
        config: the run's :class:`SACConfig` (network sizes, learning rates, gamma, tau, alpha).
    """

    def __init__(self, obs_dim: int, action_dim: int, action_low, action_high, config: SACConfig) -> None:
        super().__init__(obs_dim, action_dim, action_low, action_high, hidden=config.hidden,
                         num_critics=config.num_critics, alpha=config.alpha, autotune=config.autotune,
                         actor_lr=config.policy_lr, critic_lr=config.q_lr, alpha_lr=config.q_lr)  # fmt: skip
        self.config = config

    def update_critic(self, batch: dict[str, Tensor], generator: torch.Generator) -> dict[str, float]:
        """One step on ``sum_i mean_B (Q_i(s, a) - y)^2`` (eq. 5-6)."""
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch["next_obs"], generator)
            q_next = self.critic_target(batch["next_obs"], next_action).min(0).values
            soft_v_next = q_next - self.alpha * next_log_prob
            y = batch["reward"] + self.config.gamma * (1.0 - batch["terminated"]) * soft_v_next
        q = self.critic(batch["obs"], batch["action"])  # (N, B)
        q_loss = F.mse_loss(q, y.expand_as(q), reduction="none").mean(1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_optimizer.step()
        return {"q_loss": q_loss.item(), "q_mean": q.detach().mean().item()}

    def update_actor(self, batch: dict[str, Tensor], generator: torch.Generator) -> dict[str, float]:
        """One step on the actor (eq. 7) and, with ``autotune``, on ``log alpha`` (eq. 18)."""
        actor_loss, log_prob = self.actor_step(batch["obs"], generator)
        metrics = {"actor_loss": actor_loss.item(), "entropy": -log_prob.detach().mean().item()}
        if self.config.autotune:
            alpha_loss = (-self.log_alpha.exp() * (log_prob.detach() + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_optimizer.step()
        metrics["alpha"] = self.alpha.item()
        return metrics

    @torch.no_grad()
    def update_target(self) -> None:
        """Polyak averaging ``Q' <- (1 - tau) Q' + tau Q``."""
        torch._foreach_lerp_(
            list(self.critic_target.parameters()), list(self.critic.parameters()), self.config.tau
        )


# ---------------------------------------------------------------------------------------- evaluation
@torch.inference_mode()
def evaluate(actor: TanhGaussianActor, env, episodes: int, seed: int) -> np.ndarray:
    """Returns ``(episodes,)`` of the deterministic (mean-action) policy; episode ``k`` resets with
    ``seed + k``."""
    p = next(actor.parameters())
    returns = np.zeros(episodes)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=p.device)[None]
            obs, reward, terminated, truncated, _ = env.step(actor.act(x)[0].cpu().numpy())
            returns[k] += float(reward)
            done = terminated or truncated
    return returns


# ---------------------------------------------------------------------------------------- the run
@dataclass
class SACRun:
    """What :func:`train_sac` leaves in its run directory (see the module docstring)."""

    root: Path

    @property
    def evals(self) -> list[dict[str, Any]]:
        path = self.root / "evals.json"
        return json.loads(path.read_text()) if path.exists() else []

    @property
    def finished(self) -> bool:
        """Whether the run reached its configured ``total_steps`` (an extended run is not finished)."""
        path = self.root / "finished.json"
        if not path.exists():
            return False
        done = json.loads(path.read_text())
        return done["total_steps"] >= json.loads((self.root / "config.json").read_text())["total_steps"]

    @property
    def final_step(self) -> int:
        """Env steps of the final actor (``total_steps``, or a little more: a run ends with an episode)."""
        if not self.finished:
            raise ValueError(
                f"{self.root}: the SAC run is not finished (no finished.json for its total_steps)"
            )
        return int(json.loads((self.root / "finished.json").read_text())["step"])

    def snapshot(self, step: int) -> Path:
        """The directory of the actor saved at ``step`` (a :class:`TanhGaussianActor`)."""
        return self.root / "snapshots" / f"step_{step:08d}"

    @property
    def experience(self):
        """The training episodes, an :class:`~worldmodels.data.store.EpisodeStore`."""
        from worldmodels.data.store import EpisodeStore

        return EpisodeStore.open(self.root / "experience", verify=False)


def check_config(run_dir: str | os.PathLike, config: SACConfig, write: bool = False) -> None:
    """Check ``<run_dir>/config.json`` against ``config`` (``ValueError`` naming the first differing field);
    only ``total_steps`` may differ (a run extended to more steps trains exactly as an uninterrupted longer
    run would, because every run ends at an episode end). ``write``: then record ``config``."""
    path = Path(run_dir) / "config.json"
    if path.exists():
        have = json.loads(path.read_text())
        for key, want in config.to_dict().items():
            if key != "total_steps" and have.get(key) != want:
                raise ValueError(f"{path}: field {key!r} is {have.get(key)!r}, this run asks for {want!r}")
    if write:
        atomic_write_text(path, json.dumps(config.to_dict(), indent=1))


def train_sac(
    config: SACConfig, run_dir: str | os.PathLike, *, progress: bool = True, stop_after: int | None = None
) -> SACRun:
    """Train (or resume, or extend) a SAC run in ``run_dir``; returns the :class:`SACRun`.

    Training stops at the first episode end at or after ``config.total_steps`` env steps, so every
    checkpoint falls on an episode boundary and a run with a larger ``total_steps`` extends this one exactly.

    Args:
        config: the settings; a directory holding another config is an error naming the field (except
            ``total_steps``, which may grow).
        run_dir: where the run lives (layout in the module docstring).
        progress: show a tqdm bar.
        stop_after: stop once this many env steps are done, without writing anything more (what a kill
            at that point leaves behind; for tests of the resume).
    """
    from worldmodels.data.collect import _space_json, sim_state
    from worldmodels.data.store import EpisodeStore

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_config(run_dir, config, write=True)
    run = SACRun(run_dir)
    env, eval_env = make_env(config), make_env(config)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high
    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]):  # initial weights from the seed only, global RNG untouched
        torch.manual_seed(config.seed)
        agent = SAC(obs_dim, action_dim, low, high, config).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    store = EpisodeStore.create(
        run_dir / "experience", env_id=config.env_id, env_kwargs=_env_kwargs(config),
        behaviour_policy="sac-training", observation_space=_space_json(env.observation_space),
        action_space=_space_json(env.action_space), extra={"seed": config.seed},
    )  # fmt: skip

    # ---- resume: restore the checkpoint, drop episodes committed after it, refill the replay buffer
    step, updates, train_time, evals, metrics = 0, 0, 0.0, [], {}
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        agent.load_state_dict(ckpt["agent"])
        agent.load_optimizer_states(ckpt["optimizers"])
        generator.set_state(ckpt["generator"])
        step, updates, train_time = ckpt["step"], ckpt["updates"], ckpt["train_time_s"]
        evals, metrics = ckpt["evals"], ckpt["metrics"]
        store.truncate(ckpt["episodes"])
    else:
        store.truncate(0)
    rb = ReplayBuffer(config.buffer_size, obs_dim, action_dim, device)
    for i in range(len(store)):
        ep = store.episode(i)
        rb.add(obs=ep["observation"][:-1], action=ep["action"], reward=ep["reward"],
               next_obs=ep["observation"][1:], terminated=ep["terminated"])  # fmt: skip

    def checkpoint() -> None:
        state = {"agent": agent.state_dict(), "optimizers": agent.optimizer_states(),
                 "generator": generator.get_state(), "step": step, "episodes": len(store), "updates": updates,
                 "train_time_s": train_time + time.perf_counter() - t0, "evals": evals, "metrics": metrics}  # fmt: skip
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)

    def evaluate_and_snapshot() -> None:
        returns = evaluate(
            agent.actor, eval_env, config.eval_episodes, config.seed * 10**7 + EVAL_SEED_OFFSET
        )
        evals.append({"step": step, "return_mean": float(returns.mean()), "return_std": float(returns.std()),
                      "returns": returns.tolist(), "episodes": len(store), "updates": updates,
                      "time_s": round(train_time + time.perf_counter() - t0, 1), **metrics})  # fmt: skip
        agent.actor.save_pretrained(run.snapshot(step))
        atomic_write_text(run_dir / "evals.json", json.dumps(evals, indent=1))
        bar.set_postfix(eval=f"{returns.mean():.0f}", alpha=f"{metrics.get('alpha', config.alpha):.3f}")

    def new_episode() -> tuple[np.ndarray, dict[str, list]]:
        obs, _ = env.reset(seed=config.seed * 10**7 + len(store))
        obs = np.asarray(obs, dtype=np.float32)
        frames = {k: [v] for k, v in sim_state(env).items()} | {"observation": [obs]}
        return obs, frames | {"action": [], "reward": [], "terminated": [], "truncated": []}

    t0 = time.perf_counter()
    bar = tqdm(total=config.total_steps, initial=step, desc=f"SAC {config.env_id}", unit="step",
               disable=not progress, mininterval=1.0)  # fmt: skip
    start_step = last_checkpoint = step
    if step < config.total_steps:
        (run_dir / "finished.json").unlink(missing_ok=True)
    obs, episode = new_episode()
    low_t, high_t = torch.as_tensor(low, device=device), torch.as_tensor(high, device=device)
    while step < config.total_steps or episode["action"]:
        if stop_after is not None and step >= stop_after:
            bar.close()
            return run
        # ---- act: uniform random before learning_starts, then a sample of the policy
        if step < config.learning_starts:
            u = torch.rand(action_dim, generator=generator, device=device)
            action = (low_t + (high_t - low_t) * u).float().cpu().numpy()
        else:
            with torch.no_grad():
                action = agent.actor.sample(torch.as_tensor(obs, device=device)[None], generator)[0]
            action = action[0].cpu().numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        next_obs = np.asarray(next_obs, dtype=np.float32)
        rb.add(obs=obs[None], action=action[None], reward=np.float32([reward]), next_obs=next_obs[None],
               terminated=np.float32([terminated]))  # fmt: skip
        for key, value in sim_state(env).items():
            episode[key].append(value)
        episode["observation"].append(next_obs)
        episode["action"].append(action)
        episode["reward"].append(np.float32(reward))
        episode["terminated"].append(bool(terminated))
        episode["truncated"].append(bool(truncated))
        obs = next_obs

        # ---- learn: critics every step; every policy_frequency steps, that many actor (+ alpha) updates
        if step >= config.learning_starts:
            batch = rb.sample(config.batch_size, generator)
            metrics.update(agent.update_critic(batch, generator))
            if step % config.policy_frequency == 0:
                for _ in range(config.policy_frequency):
                    metrics.update(agent.update_actor(batch, generator))
            if step % config.target_network_frequency == 0:
                agent.update_target()
            updates += 1
        step += 1
        bar.update()

        if step % config.eval_every == 0:
            evaluate_and_snapshot()
        if terminated or truncated:
            arrays = {k: np.stack(v) for k, v in episode.items()}
            store.append_episode(arrays, seed=config.seed * 10**7 + len(store))
            if step - last_checkpoint >= config.checkpoint_every:
                checkpoint()
                last_checkpoint = step
            obs, episode = new_episode()
    if not evals or evals[-1]["step"] != step:
        evaluate_and_snapshot()
    if step > start_step or not ckpt_path.exists():
        checkpoint()
    agent.actor.save_pretrained(run_dir / "actor")
    atomic_write_text(
        run_dir / "finished.json", json.dumps({"step": step, "total_steps": config.total_steps})
    )
    bar.close()
    env.close()
    eval_env.close()
    return run


def _env_kwargs(config: SACConfig) -> dict[str, Any]:
    return {} if config.max_episode_steps is None else {"max_episode_steps": config.max_episode_steps}
