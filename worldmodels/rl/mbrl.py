"""Model-based offline RL: MBPO, MOPO and RAVL over any :class:`~worldmodels.api.SteppableModel` (the learned
:class:`~worldmodels.models.ensemble_dynamics.EnsembleDynamics` or the simulator itself,
:class:`~worldmodels.models.true_dynamics.TrueDynamics`), in one file.

Algorithm (one loop for the three presets, :data:`PRESETS`):

* every ``rollout_every`` updates: ``rollout_batch_size`` start states drawn from the dataset, the current
  policy rolled through the model for ``rollout_length`` steps (MBPO's truncated branched rollouts; a row
  stops at a predicted termination), each transition ``(s, a, r - lambda u, s', done)`` pushed into the model
  buffer (a ring holding ``model_retain_epochs`` rollout rounds); ``u`` is the MOPO penalty named by
  ``penalty`` (:data:`~worldmodels.models.ensemble_dynamics.PENALTIES`) and ``lambda`` is ``penalty_coef``;
* every update: a batch of ``batch_size`` transitions, a fraction ``real_ratio`` from the dataset and the rest
  from the model buffer, and one SAC-N step (Haarnoja et al. 2018; An et al. 2021): the ``N`` critics regress
  to ``r + gamma (1 - done) (min_i Q'_i(s', a') - alpha log pi(a'|s'))``; with ``eta > 0`` plus EDAC's
  diversity term ``eta / (N - 1) * sum_{i != j} <g_i, g_j>`` over the normalised action gradients
  ``g_i = grad_a Q_i(s, a) / ||grad_a Q_i(s, a)||`` (An et al. 2021, eq. 6); the actor minimises
  ``alpha log pi(a|s) - min_i Q_i(s, a)``; the temperature is tuned towards entropy ``-action_dim``;
  the target critics follow by Polyak averaging with ``tau``.

Presets: ``mbpo`` (N = 2, no penalty), ``mopo`` (N = 2, ``aleatoric`` penalty, lambda 1), ``ravl`` (N = 10,
eta = 1, no penalty): RAVL's claim is that the large EDAC ensemble alone keeps values at the edge of reach
in check, where MBPO diverges and MOPO only survives through its penalty (zero for a perfect model).

Divergence guard: every update checks the mean Q of the model-buffer part of the batch against
``r_max / (1 - gamma)`` (``r_max`` the largest |reward| of the dataset: no discounted return can exceed it) and
the losses for NaN. ``divergence="stop"`` ends the run with a one-line :class:`DivergenceError` naming the
update and keeps the last good checkpoint; ``"record"`` (the edge-of-reach experiment) writes the first
divergence to ``diverged.json`` and trains on (a NaN still stops).

Run directory (atomic writes; a killed run resumes exactly, same device and thread count)::

    <run>/config.json      the MBRLConfig (a resumed run must ask for the same one; total_updates may grow)
    <run>/checkpoint.pt    agent, optimisers, generator, model buffer, update counter, logs
    <run>/log.jsonl        every log_every updates: losses, alpha, mean Q on dataset and on rollout states
    <run>/evals.json       real-env evaluations: return, D4RL normalised score
    <run>/actor/           the final policy (a TanhGaussianActor: `worldmodels data collect --policy`)
    <run>/finished.json    the update count reached
    <run>/diverged.json    with divergence="record": the first update at which Q left the bound
"""

from __future__ import annotations

import argparse
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
from torch import Tensor
from tqdm.auto import tqdm

from worldmodels.io import atomic_path, atomic_write_text
from worldmodels.rl.sac import ActorCriticAlpha

#: algo -> settings it fixes unless given explicitly
PRESETS: dict[str, dict[str, Any]] = {
    "mbpo": {"num_critics": 2, "eta": 0.0, "penalty": "none", "penalty_coef": 0.0},
    "mopo": {"num_critics": 2, "eta": 0.0, "penalty": "aleatoric", "penalty_coef": 1.0},
    "ravl": {"num_critics": 10, "eta": 1.0, "penalty": "none", "penalty_coef": 0.0},
}
EVAL_SEED = 9_000_000
TRUE_DYNAMICS = "true-dynamics"


class DivergenceError(RuntimeError):
    """Q on rollout states left the bound or turned NaN (``divergence="stop"``)."""


@dataclass
class MBRLConfig:
    """Every setting of an offline model-based RL run; shared by :func:`train_mbrl` and ``worldmodels rl train``.
    ``None`` fields take the value of the ``algo`` preset (:data:`PRESETS`)."""

    algo: str = field(default="ravl", metadata={"help": "preset: mbpo | mopo | ravl"})
    data: str = field(default="", metadata={"help": "dataset directory (D4RL-style EpisodeStore)"})
    model: str = field(default=TRUE_DYNAMICS, metadata={"help": "dynamics directory, or 'true-dynamics'"})
    total_updates: int = field(default=100_000, metadata={"help": "gradient updates of the agent"})
    seed: int = field(default=0, metadata={"help": "seed of the networks and of all sampling"})
    num_critics: int | None = field(default=None, metadata={"help": "Q-networks N (preset: 2 or 10)"})
    eta: float | None = field(default=None, metadata={"help": "EDAC diversity weight (ravl: 1)"})
    penalty: str | None = field(
        default=None,
        metadata={"help": "MOPO penalty: none | aleatoric | ensemble_std | max_pairwise | ll_var"},
    )
    penalty_coef: float | None = field(default=None, metadata={"help": "MOPO lambda"})
    rollout_length: int = field(default=5, metadata={"help": "model rollout length k"})
    rollout_batch_size: int = field(default=50_000, metadata={"help": "start states per rollout round"})
    rollout_every: int = field(default=1000, metadata={"help": "updates between rollout rounds"})
    model_retain_epochs: int = field(default=5, metadata={"help": "rollout rounds the model buffer holds"})
    real_ratio: float = field(default=0.05, metadata={"help": "fraction of each batch from the dataset"})
    batch_size: int = field(default=256, metadata={"help": "minibatch size"})
    hidden: tuple[int, ...] = field(
        default=(256, 256, 256), metadata={"help": "hidden widths of actor/critics"}
    )
    gamma: float = field(default=0.99, metadata={"help": "discount"})
    tau: float = field(default=5e-3, metadata={"help": "Polyak rate of the target critics"})
    actor_lr: float = field(default=3e-4, metadata={"help": "Adam learning rate of the actor"})
    critic_lr: float = field(default=3e-4, metadata={"help": "Adam learning rate of the critics"})
    alpha_lr: float = field(default=3e-4, metadata={"help": "Adam learning rate of log alpha"})
    alpha_init: float = field(default=1.0, metadata={"help": "initial entropy temperature"})
    eval_every: int = field(default=5000, metadata={"help": "updates between real-env evaluations"})
    eval_episodes: int = field(default=5, metadata={"help": "episodes per evaluation (mean action)"})
    max_episode_steps: int | None = field(default=None, metadata={"help": "eval episode limit (env default)"})
    log_every: int = field(default=500, metadata={"help": "updates between Q-statistics rows"})
    stats_batch: int = field(default=1024, metadata={"help": "states per Q statistic"})
    checkpoint_every: int = field(default=5000, metadata={"help": "updates between checkpoints"})
    divergence: str = field(default="stop", metadata={"help": "stop | record (on Q beyond r_max/(1-gamma))"})
    device: str = field(default="cpu", metadata={"help": "torch device"})

    def __post_init__(self) -> None:
        if self.algo not in PRESETS:
            raise ValueError(f"algo={self.algo!r}; allowed values: {sorted(PRESETS)}")
        for key, value in PRESETS[self.algo].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        self.hidden = tuple(int(h) for h in self.hidden)
        from worldmodels.models.ensemble_dynamics import PENALTIES

        if self.penalty not in ("none", *PENALTIES):
            raise ValueError(f"penalty={self.penalty!r}; allowed values: {['none', *PENALTIES]}")
        positive = ("total_updates", "num_critics", "rollout_length", "rollout_batch_size", "rollout_every",
                    "model_retain_epochs", "batch_size", "eval_every", "eval_episodes", "log_every",
                    "stats_batch", "checkpoint_every")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"MBRLConfig.{name}={getattr(self, name)!r} must be >= 1")
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError(f"real_ratio={self.real_ratio} must be in [0, 1]")
        if self.eta < 0 or self.penalty_coef < 0:
            raise ValueError(f"eta={self.eta} and penalty_coef={self.penalty_coef} must be >= 0")
        if self.eta > 0 and self.num_critics < 2:
            raise ValueError(f"eta={self.eta} needs num_critics >= 2 (got {self.num_critics})")
        if not 0.0 < self.gamma < 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError(f"gamma={self.gamma} must be in (0, 1) and tau={self.tau} in (0, 1]")
        if self.divergence not in ("stop", "record"):
            raise ValueError(f"divergence={self.divergence!r}; allowed values: ['stop', 'record']")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One ``--<field>`` option per field (``--total-updates``, ...)."""
        for f in dataclasses.fields(cls):
            flag = f"--{f.name.replace('_', '-')}"
            if f.name == "hidden":
                parser.add_argument(flag, type=int, nargs="+", default=None, help=f.metadata["help"])
            else:
                base = f.type.split(" |")[0]
                kind = {"int": int, "float": float, "str": str}[base]
                parser.add_argument(flag, type=kind, default=None, help=f.metadata["help"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> MBRLConfig:
        given = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(cls)
            if getattr(args, f.name) is not None
        }
        return cls(**given)


# ---------------------------------------------------------------------------------------------- agent
def edac_diversity(grads: Tensor) -> Tensor:
    """EDAC's ensemble-similarity term (An et al. 2021, eq. 6) from per-critic action gradients
    ``grads (N, B, A)``: ``mean_B 1/(N-1) sum_{i != j} <g_i, g_j>`` with ``g`` normalised to unit length."""
    n = grads.shape[0]
    g = grads / (grads.norm(dim=-1, keepdim=True) + 1e-10)
    g = g.transpose(0, 1)  # (B, N, A)
    cos = g @ g.transpose(1, 2)  # (B, N, N)
    off_diagonal = cos.sum((1, 2)) - torch.diagonal(cos, dim1=1, dim2=2).sum(-1)
    return off_diagonal.mean() / (n - 1)


class SACN(ActorCriticAlpha):
    """SAC with ``N`` critics and EDAC's diversity term (``eta = 0``: plain SAC-N; ``N = 2``: SAC).

    Args:
        obs_dim / action_dim: sizes.
        action_low / action_high: the env's action box.
        config: the run's :class:`MBRLConfig`.
    """

    def __init__(self, obs_dim: int, action_dim: int, action_low, action_high, config: MBRLConfig) -> None:
        super().__init__(obs_dim, action_dim, action_low, action_high, hidden=config.hidden,
                         num_critics=config.num_critics, alpha=config.alpha_init, autotune=True,
                         actor_lr=config.actor_lr, critic_lr=config.critic_lr, alpha_lr=config.alpha_lr)  # fmt: skip
        self.config = config

    def update(self, batch: dict[str, Tensor], generator: torch.Generator) -> tuple[dict[str, float], Tensor]:
        """One critic, actor, temperature and target step; returns the metrics and ``Q (N, B)`` of the batch
        (detached) for the divergence guard."""
        cfg = self.config
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch["next_obs"], generator)
            q_next = self.critic_target(batch["next_obs"], next_action).min(0).values
            y = batch["reward"] + cfg.gamma * (1.0 - batch["terminated"]) * (
                q_next - self.alpha * next_log_prob
            )
        action = batch["action"]
        if cfg.eta > 0:  # one action copy per critic, so grad gives each critic's own action gradient
            action = action.unsqueeze(0).expand(cfg.num_critics, *action.shape).clone().requires_grad_(True)
        q = self.critic(batch["obs"], action)  # (N, B)
        critic_loss = (q - y).pow(2).mean(1).sum()
        metrics = {}
        if cfg.eta > 0:
            (grads,) = torch.autograd.grad(q.sum(), action, create_graph=True)
            diversity = edac_diversity(grads)
            critic_loss = critic_loss + cfg.eta * diversity
            metrics["diversity"] = diversity.item()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        actor_loss, log_prob = self.actor_step(batch["obs"], generator)
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(
                list(self.critic_target.parameters()), list(self.critic.parameters()), cfg.tau
            )
        metrics |= {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "alpha": self.alpha.item(),
                    "entropy": -log_prob.detach().mean().item()}  # fmt: skip
        return metrics, q.detach()


# --------------------------------------------------------------------------------------------- buffers
KEYS = ("obs", "action", "reward", "next_obs", "terminated")


class ModelBuffer:
    """A ring of model transitions (float32 tensors; ``terminated`` 0/1); saved whole in the checkpoint."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: torch.device) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        dims = {
            "obs": (obs_dim,),
            "action": (action_dim,),
            "reward": (),
            "next_obs": (obs_dim,),
            "terminated": (),
        }
        self.data = {k: torch.zeros(capacity, *d, device=device) for k, d in dims.items()}

    def add(self, rows: dict[str, Tensor]) -> None:
        n = len(rows["reward"])
        idx = (self.pos + torch.arange(n, device=rows["reward"].device)) % self.capacity
        for key in KEYS:
            self.data[key][idx] = rows[key].float()
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        idx = torch.randint(self.size, (n,), generator=generator, device=generator.device)
        return {k: v[idx] for k, v in self.data.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "pos": self.pos,
            **{k: v[: self.size].clone() for k, v in self.data.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.pos = state["size"], state["pos"]
        for key in KEYS:
            self.data[key][: self.size] = state[key]


def load_dataset(root: str | os.PathLike, device: torch.device) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The dataset's transitions as tensors keyed like :data:`KEYS` (NaN or inf: an error naming the key) and
    its manifest."""
    from worldmodels.data.d4rl import qlearning_dataset
    from worldmodels.data.store import EpisodeStore

    root = Path(root)
    if not (root / "manifest.json").exists():
        raise ValueError(f"--data {root}: not a dataset directory (no manifest.json)")
    store = EpisodeStore.open(root, verify=False)
    d = qlearning_dataset(store)
    names = {"obs": "observations", "action": "actions", "reward": "rewards", "next_obs": "next_observations",
             "terminated": "terminals"}  # fmt: skip
    out = {k: torch.as_tensor(np.asarray(d[v], dtype=np.float32), device=device) for k, v in names.items()}
    for key, value in out.items():
        if not torch.isfinite(value).all():
            raise ValueError(f"--data {root}: key {names[key]!r} holds NaN or inf values")
    return out, store.manifest


def load_model(spec: str, env_id: str, obs_dim: int, action_dim: int, data: str, device: torch.device):
    """``true-dynamics`` or a saved dynamics directory, checked against the dataset (env and sizes)."""
    if spec == TRUE_DYNAMICS:
        from worldmodels.models.true_dynamics import TrueDynamics

        model = TrueDynamics(env_id)
        where = f"true-dynamics ({env_id})"
    else:
        from worldmodels.api import SteppableModel
        from worldmodels.pretrained import load_pretrained

        model = load_pretrained(spec, map_location=device)
        if not isinstance(model, SteppableModel):
            raise ValueError(
                f"--model {spec}: a {type(model).__name__} has no step role (not a dynamics model)"
            )
        model_env = getattr(model, "env_id", None)
        if model_env is not None and model_env != env_id:
            raise ValueError(f"--model {spec} was trained on {model_env}, but --data {data} is {env_id}")
        where = f"--model {spec}"
    if (model.state_dim, model.action_dim) != (obs_dim, action_dim):
        raise ValueError(
            f"{where} has obs/action dims {model.state_dim}/{model.action_dim}, but --data {data} has "
            f"{obs_dim}/{action_dim}"
        )
    return model


# ------------------------------------------------------------------------------------------------- run
def check_config(run_dir: Path, config: MBRLConfig) -> None:
    """``config.json`` of an existing run must match (``total_updates`` may differ); then write ``config``."""
    path = run_dir / "config.json"
    if path.exists():
        have = json.loads(path.read_text())
        for key, want in config.to_dict().items():
            if key != "total_updates" and have.get(key) != want:
                raise ValueError(f"{path}: field {key!r} is {have.get(key)!r}, this run asks for {want!r}")
    atomic_write_text(path, json.dumps(config.to_dict(), indent=1))


@torch.no_grad()
def rollout_round(agent: SACN, model, starts: Tensor, config: MBRLConfig, generator: torch.Generator):
    """Roll the policy through ``model`` from ``starts (S, O)`` for ``rollout_length`` steps; returns the
    transitions (penalised rewards) as a dict of ``(M, ...)`` tensors and the mean penalty."""
    rows: dict[str, list[Tensor]] = {k: [] for k in KEYS}
    s, pens = starts, []
    for h in range(config.rollout_length):
        a, _ = agent.actor.sample(s, generator)
        out = model.step(s, a, generator=generator)
        r = out.reward
        if config.penalty != "none":
            u = (out.info or {}).get("penalties", {}).get(config.penalty, out.uncertainty)
            if u is None:
                raise ValueError(f"penalty={config.penalty!r}: the model ({type(model).__name__}) gives none")
            r = r - config.penalty_coef * u
            pens.append(u.mean().item())
        bad = ~(torch.isfinite(out.next_state).all(-1) & torch.isfinite(r))
        if bad.any():
            raise DivergenceError(
                f"NaN/inf in the model rollout ({type(model).__name__}) at rollout step {h}"
            )
        for key, value in zip(KEYS, (s, a, r, out.next_state, out.terminated.float())):
            rows[key].append(value)
        s = out.next_state[~out.terminated]
        if len(s) == 0:
            break
    return {k: torch.cat(v) for k, v in rows.items()}, (float(np.mean(pens)) if pens else 0.0)


def train_mbrl(
    config: MBRLConfig, run_dir: str | os.PathLike, *, progress: bool = True, stop_after: int | None = None
) -> Path:
    """Train (or resume, or extend) a run in ``run_dir`` (layout in the module docstring); returns it.

    ``stop_after``: return once this many updates are done without writing anything more (what a kill at
    that point leaves; for resume tests).
    """
    import gymnasium as gym

    from worldmodels.data.d4rl import ENVS, normalized_score
    from worldmodels.rl.sac import evaluate

    run_dir = Path(run_dir)
    device = torch.device(config.device)
    data, manifest = load_dataset(config.data, device)
    env_id = manifest["env_id"]
    obs_dim, action_dim = data["obs"].shape[1], data["action"].shape[1]
    model = load_model(config.model, env_id, obs_dim, action_dim, config.data, device)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_config(run_dir, config)
    env_name = {v: k for k, v in ENVS.items()}.get(env_id)
    eval_env = gym.make(
        env_id,
        **({} if config.max_episode_steps is None else {"max_episode_steps": config.max_episode_steps}),
    )
    low, high = eval_env.action_space.low, eval_env.action_space.high
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        agent = SACN(obs_dim, action_dim, low, high, config).to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    capacity = config.rollout_batch_size * config.rollout_length * config.model_retain_epochs
    buffer = ModelBuffer(capacity, obs_dim, action_dim, device)
    r_max = data["reward"].abs().max().item()
    q_bound = r_max / (1.0 - config.gamma)
    n_real = round(config.real_ratio * config.batch_size)
    n_data = len(data["reward"])

    update, log, evals, diverged, train_time = 0, [], [], None, 0.0
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        agent.load_state_dict(ckpt["agent"])
        agent.load_optimizer_states(ckpt["optimizers"])
        generator.set_state(ckpt["generator"])
        buffer.load_state_dict(ckpt["buffer"])
        update, log, evals = ckpt["update"], ckpt["log"], ckpt["evals"]
        diverged, train_time = ckpt["diverged"], ckpt["train_time_s"]
    last_good = update if ckpt_path.exists() else None

    def checkpoint() -> None:
        state = {"agent": agent.state_dict(), "optimizers": agent.optimizer_states(),
                 "generator": generator.get_state(), "buffer": buffer.state_dict(), "update": update, "log": log,
                 "evals": evals, "diverged": diverged, "train_time_s": train_time + time.perf_counter() - t0}  # fmt: skip
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)

    @torch.no_grad()
    def q_stats() -> dict[str, float]:
        g = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + update)
        out = {}
        for name, states in (
            (
                "dataset",
                data["obs"][torch.randint(n_data, (config.stats_batch,), generator=g, device=device)],
            ),
            ("rollout", buffer.sample(config.stats_batch, g)["obs"] if buffer.size else None),
        ):
            if states is None:
                continue
            a, _ = agent.actor.sample(states, g)
            q = agent.critic(states, a)
            out |= {f"q_{name}": q.mean().item(), f"q_{name}_min": q.min(0).values.mean().item(),
                    f"q_{name}_max": q.max().item()}  # fmt: skip
        return out

    def evaluation() -> None:
        returns = evaluate(agent.actor, eval_env, config.eval_episodes, config.seed * 10**7 + EVAL_SEED)
        row = {"update": update, "return_mean": float(returns.mean()), "return_std": float(returns.std()),
               "returns": returns.tolist()}  # fmt: skip
        if env_name is not None:
            row["normalized_score"] = float(normalized_score(env_name, returns).mean())
        evals.append(row)
        atomic_write_text(run_dir / "evals.json", json.dumps(evals, indent=1))
        bar.set_postfix(score=f"{row.get('normalized_score', row['return_mean']):.1f}")

    t0 = time.perf_counter()
    if update < config.total_updates:
        (run_dir / "finished.json").unlink(missing_ok=True)
    bar = tqdm(total=config.total_updates, initial=update, desc=f"{config.algo} {env_id}", unit="upd",
               disable=not progress, mininterval=1.0)  # fmt: skip
    metrics: dict[str, float] = {}
    while update < config.total_updates:
        if stop_after is not None and update >= stop_after:
            bar.close()
            return run_dir
        if update % config.rollout_every == 0:
            starts = data["obs"][
                torch.randint(n_data, (config.rollout_batch_size,), generator=generator, device=device)
            ]
            rows, mean_pen = rollout_round(agent, model, starts, config, generator)
            buffer.add(rows)
            metrics["rollout_penalty"] = mean_pen
        idx = torch.randint(n_data, (n_real,), generator=generator, device=device)
        real = {k: v[idx] for k, v in data.items()}
        fake = buffer.sample(config.batch_size - n_real, generator)
        batch = {k: torch.cat([real[k], fake[k]]) for k in KEYS}
        step_metrics, q = agent.update(batch, generator)
        metrics |= step_metrics
        update += 1
        bar.update()
        q_model = q[:, n_real:].mean().item() if config.batch_size > n_real else q.mean().item()
        if not all(math.isfinite(v) for v in (*step_metrics.values(), q_model)):
            bad = next(k for k, v in {**step_metrics, "q_rollout": q_model}.items() if not math.isfinite(v))
            raise DivergenceError(
                f"divergence at update {update}: {bad} is NaN/inf; the last good checkpoint "
                f"(update {last_good}) is kept in {ckpt_path}"
            )
        if q_model > q_bound and diverged is None:
            message = (f"divergence at update {update}: mean Q on rollout states {q_model:.4g} exceeds "
                       f"r_max/(1-gamma) = {q_bound:.4g}")  # fmt: skip
            if config.divergence == "stop":
                bar.close()
                raise DivergenceError(
                    f"{message}; the last good checkpoint (update {last_good}) is kept in {ckpt_path}"
                )
            diverged = {"update": update, "q_rollout": q_model, "bound": q_bound}
            atomic_write_text(run_dir / "diverged.json", json.dumps(diverged, indent=1))
        if update % config.log_every == 0 or update == config.total_updates:
            row = {"update": update, **metrics, **q_stats(), "q_bound": q_bound,
                   "time_s": round(train_time + time.perf_counter() - t0, 1)}  # fmt: skip
            log.append(row)
            with atomic_path(run_dir / "log.jsonl") as tmp:
                tmp.write_text("".join(json.dumps(r) + "\n" for r in log))
        if update % config.eval_every == 0 or update == config.total_updates:
            evaluation()
        if update % config.checkpoint_every == 0 or update == config.total_updates:
            checkpoint()
            last_good = update
    bar.close()
    if not ckpt_path.exists():
        checkpoint()
    agent.actor.save_pretrained(run_dir / "actor")
    atomic_write_text(
        run_dir / "finished.json", json.dumps({"update": update, "total_updates": config.total_updates})
    )
    eval_env.close()
    return run_dir
