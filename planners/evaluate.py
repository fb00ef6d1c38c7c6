"""Goal-reaching evaluation (DINO-WM's protocol) of a planner over any world model.

For pair ``i`` of ``pairs``: ``start, goal = env.unwrapped.sample_start_goal(seed + i)``; the goal is given
as an image (``obs_from_state(goal)``: pixels + proprio, encoded once by the model); the env starts from
``reset(options={"state": start, "goal_state": goal})``; the planner minimises
:class:`~planners.objectives.GoalDistance` through ``model.rollout`` and the plan is executed either open
loop (plan ``horizon`` model steps once, execute them all) or with MPC (execute ``execute`` model steps =
``execute * frameskip`` env steps, re-plan with a warm start) within the env's ``planning_budget`` env
steps. Success is ``env.unwrapped.is_success`` (the env also terminates the episode on success).

Outputs under ``out``: ``results.json`` (success rate with its 95 % Wilson interval, per-pair success,
final distance, planning time, the config), one ``pair_XXX.mp4`` per pair (the real frames beside the
decoded imagined frames when the model can ``decode``, and the goal image) and ``plot.png`` (success per
pair and cost per planner iteration).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from einops import rearrange
from torch import Tensor
from tqdm.auto import tqdm

from planners import PLANNERS, build_planner
from planners.base import Planner
from planners.mpc import MPC, MPCResult
from planners.objectives import GoalDistance, amp_dtype, make_cost_fn
from worldmodels.api import WorldModel


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % for the default ``z``); ``(0, 1)`` if ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class PairResult:
    """One start/goal pair.

    Attributes:
        index: pair number; the env's ``sample_start_goal`` seed is ``seed + index``.
        success: the env's ``is_success`` held at some step (the episode then terminates).
        env_steps: env steps executed.
        final_distance: Euclidean distance between the final and the goal proprio, in env units (Wall: the
            agent position; PointMaze: position and velocity, the goal at rest).
        plan_calls: planner calls (1 open loop; one per re-plan with MPC).
        plan_time: total seconds spent in the planner.
        final_plan_cost: the planner's cost of its last plan.
        costs: per-iteration ``cost`` trace of the first plan (for plots).
        video: path of the episode's mp4 (or ``None``).
    """

    index: int
    success: bool
    env_steps: int
    final_distance: float
    plan_calls: int
    plan_time: float
    final_plan_cost: float
    costs: list[float] = field(default_factory=list)
    video: str | None = None


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate`: success rate with its 95 % Wilson interval, per-pair results, mean
    planning time per planner call (s), the config, and the output directory."""

    success_rate: float
    ci95: tuple[float, float]
    plan_time_per_step_s: float
    pairs: list[PairResult]
    config: dict[str, Any]
    out: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (what ``results.json`` holds)."""
        return {
            "success_rate": self.success_rate,
            "ci95": list(self.ci95),
            "plan_time_per_step_s": self.plan_time_per_step_s,
            "config": self.config,
            "pairs": [asdict(p) for p in self.pairs],
        }


def _model_device(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device
        for b in model.buffers():
            return b.device
    return torch.device("cpu")


def to_model_obs(frames: list[Mapping[str, np.ndarray]], device: torch.device) -> dict[str, Tensor]:
    """``T`` env observations -> ``pixels`` uint8 ``(1, T, 3, S, S)`` and ``proprio`` float ``(1, T, P)``."""
    pixels = torch.as_tensor(np.stack([f["pixels"] for f in frames]), device=device)
    proprio = torch.as_tensor(np.stack([f["proprio"] for f in frames]), device=device, dtype=torch.float32)
    return {"pixels": rearrange(pixels, "t h w c -> 1 t c h w"), "proprio": proprio[None]}


def _upscale(img: np.ndarray, min_size: int = 128) -> np.ndarray:
    k = max(1, math.ceil(min_size / img.shape[0]))
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import imageio.v2 as imageio

    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=16)
    os.replace(tmp, path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _write_plot(path: Path, result: EvalResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(9, 3.2))
    idx = [p.index for p in result.pairs]
    ax_s.bar(idx, [float(p.success) for p in result.pairs], color="tab:green")
    lo, hi = result.ci95
    ax_s.axhline(
        result.success_rate, color="k", lw=1, label=f"rate {result.success_rate:.2f} [{lo:.2f}, {hi:.2f}]"
    )
    ax_s.set(xlabel="pair", ylabel="success", ylim=(0, 1.05), title="success per pair")
    ax_s.legend(loc="lower right", fontsize=8)
    for p in result.pairs:
        if p.costs:
            ax_c.plot(range(1, len(p.costs) + 1), p.costs, alpha=0.5)
    ax_c.set(xlabel="planner iteration", ylabel="cost", title="first plan: best cost per iteration")
    if any(c > 0 for p in result.pairs for c in p.costs):
        ax_c.set_yscale("log")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


class _Episode:
    """One pair's episode: the callbacks :class:`MPC` drives, plus what the video needs."""

    def __init__(self, model: Any, env: gym.Env, goal: np.ndarray, objective: GoalDistance, *,
                 chunk_size: int | None, differentiable: bool, device: torch.device, video: bool,
                 amp: str | None = None):  # fmt: skip
        self.model, self.env, self.goal, self.objective = model, env, goal, objective
        self.chunk_size, self.differentiable, self.device, self.video = (
            chunk_size,
            differentiable,
            device,
            video,
        )
        self.amp = amp
        self.frameskip = int(getattr(model, "frameskip", 1))
        self.num_hist = max(1, int(getattr(model, "num_hist", 1)))
        self.takes_past = "past_actions" in inspect.signature(model.encode).parameters
        self.history: list[Mapping[str, np.ndarray]] = []  # observations at model-step boundaries
        self.past_actions: list[Tensor] = []  # planning actions between them
        self.state: Any = None
        self.real: list[np.ndarray] = []
        self.imagined: list[np.ndarray | None] = []
        self.env_steps, self.success = 0, False
        self.last_obs: Mapping[str, np.ndarray] | None = None

    def start(self, obs: Mapping[str, np.ndarray]) -> None:
        self.history, self.last_obs = [obs], obs
        self.real, self.imagined = [obs["pixels"]], [None]

    def observe(self) -> Any:
        frames = self.history[-self.num_hist :]
        obs = to_model_obs(frames, self.device)
        with torch.no_grad():  # not inference_mode: gradient planners back-propagate from this state
            if self.takes_past and len(frames) > 1:
                past = torch.stack(self.past_actions[-(len(frames) - 1) :])[None]
                state = self.model.encode(obs, past_actions=past)
            else:
                state = self.model.encode(obs)
        self.state = state
        return state

    def make_cost_fn(self, state: Any):
        return make_cost_fn(self.model, state, self.objective, chunk_size=self.chunk_size,
                            differentiable=self.differentiable, amp=self.amp)  # fmt: skip

    def _imagine(self, actions: Tensor) -> list[np.ndarray] | None:
        decode = getattr(self.model, "decode", None)
        if not self.video or decode is None:
            return None
        with torch.inference_mode():
            images = decode(self.model.rollout(self.state, actions[None]))
        if images is None:
            return None
        images = rearrange(images[0].float().clamp(0, 1) * 255, "t c h w -> t h w c")
        return list(images.round().to(torch.uint8).cpu().numpy())

    def step(self, actions: Tensor) -> bool:
        """Execute ``(k, action_dim)`` planning actions (``k * frameskip`` env steps); True when done."""
        imagined = self._imagine(actions)
        env_actions = self.model.to_env_actions(actions).detach().cpu().numpy().astype(np.float32)
        for j, a in enumerate(env_actions):
            obs, _, terminated, truncated, info = self.env.step(a)
            self.env_steps += 1
            self.last_obs = obs
            self.real.append(obs["pixels"])
            self.imagined.append(None if imagined is None else imagined[j // self.frameskip])
            success = bool(info.get("is_success", False)) or self.env.unwrapped.is_success(
                self.env.unwrapped.get_state(), self.goal
            )
            self.success = self.success or success
            if (j + 1) % self.frameskip == 0:
                self.history.append(obs)
                self.past_actions.append(actions[j // self.frameskip].detach())
            if terminated or truncated or self.success:
                return True
        return False

    def frames(self, goal_pixels: np.ndarray) -> list[np.ndarray]:
        """Video frames: real | imagined (when decoded; black before the first plan) | goal."""
        out = []
        has_imagined = any(im is not None for im in self.imagined)
        for real, im in zip(self.real, self.imagined, strict=True):
            panels = [real]
            if has_imagined:
                panels.append(np.zeros_like(real) if im is None else _resize_like(im, real))
            panels.append(goal_pixels)
            out.append(_upscale(np.concatenate(panels, axis=1)))
        return out


def _resize_like(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if img.shape == ref.shape:
        return img
    t = rearrange(torch.as_tensor(img), "h w c -> 1 c h w").float()
    t = torch.nn.functional.interpolate(t, size=ref.shape[:2], mode="nearest")
    return rearrange(t[0], "c h w -> h w c").to(torch.uint8).numpy()


def _fingerprint(model: Any) -> str:
    """CRC32 over the model's parameters and buffers (``nn.Module``), so saved pairs are only reused for the
    same weights; other models: their class name."""
    if not isinstance(model, torch.nn.Module):
        return type(model).__name__
    crc = 0
    for name, t in sorted(model.state_dict().items()):
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes(), crc)
    return f"{type(model).__name__}:{crc:08x}"


def _json_safe(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


@dataclass
class _PairJob:
    """Everything needed to evaluate one start/goal pair (picklable, sent once to each worker process)."""

    model: Any
    env_id: str
    env_kwargs: dict[str, Any]
    planner: Planner
    controller: MPC
    seed: int
    alpha: float
    objective_mode: str
    discount: float
    chunk_size: int | None
    out_dir: Path | None
    videos: int | None
    amp: str | None = None

    def make_env(self) -> gym.Env:
        import worldmodels.envs  # noqa: F401  (registers the environments)

        return gym.make(self.env_id, **self.env_kwargs)

    def run_pair(self, env: gym.Env, i: int) -> PairResult:
        model = self.model
        device = _model_device(model)
        low, high = (b.to(device) for b in model.action_bounds())
        start, goal = env.unwrapped.sample_start_goal(self.seed + i)
        goal_obs = env.unwrapped.obs_from_state(goal)
        with torch.no_grad():
            goal_state = model.encode(to_model_obs([goal_obs], device))
        with_video = self.out_dir is not None and (self.videos is None or i < self.videos)
        objective = GoalDistance(
            goal_state, alpha=self.alpha, mode=self.objective_mode, discount=self.discount
        )
        episode = _Episode(
            model, env, goal, objective, chunk_size=self.chunk_size, differentiable=self.planner.differentiable,
            device=device, video=with_video, amp=self.amp,
        )  # fmt: skip
        obs, _ = env.reset(seed=self.seed + i, options={"state": start, "goal_state": goal})
        episode.start(obs)
        gen = torch.Generator(device=device).manual_seed(self.seed + i)
        run: MPCResult = self.controller.run(
            episode.observe, episode.make_cost_fn, episode.step, low=low, high=high, generator=gen
        )
        final = np.asarray(episode.last_obs["proprio"], dtype=np.float64)
        pair = PairResult(
            index=i,
            success=episode.success,
            env_steps=episode.env_steps,
            final_distance=float(np.linalg.norm(final - np.asarray(goal_obs["proprio"], dtype=np.float64))),
            plan_calls=len(run.plans),
            plan_time=float(sum(run.plan_times)),
            final_plan_cost=float(run.plans[-1].cost),
            costs=[float(c) for c in run.plans[0].info.get("cost", [])],
        )
        if with_video:
            path = self.out_dir / f"pair_{i:03d}.mp4"
            _write_video(path, episode.frames(goal_obs["pixels"]))
            pair.video = path.name
        return pair


_WORKER: dict[str, Any] = {}


def _worker_init(job: _PairJob) -> None:
    torch.set_num_threads(1)
    _WORKER["job"], _WORKER["env"] = job, job.make_env()


def _worker_pair(i: int) -> PairResult:
    return _WORKER["job"].run_pair(_WORKER["env"], i)


def evaluate(
    model: WorldModel,
    env_id: str,
    planner: str | Planner,
    *,
    pairs: int = 50,
    seed: int = 0,
    mpc: bool = False,
    out: str | os.PathLike | None = None,
    horizon: int = 5,
    execute: int = 1,
    planner_kwargs: dict[str, Any] | None = None,
    chunk_size: int | None = 32,
    alpha: float = 1.0,
    objective_mode: Literal["last", "all"] = "last",
    discount: float = 0.9,
    budget: int | None = None,
    videos: int | None = None,
    progress: bool = True,
    workers: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    amp: str | None = None,
) -> EvalResult:
    """Run DINO-WM's goal-reaching evaluation (see the module docstring).

    Args:
        model: any :class:`worldmodels.api.WorldModel` (optional attributes used when present:
            ``frameskip``, ``num_hist``, ``img_size``, ``decode``).
        env_id: a registered env with the planning contract (``worldmodels/Wall-v0``, ...).
        planner: a planner or its name (``cem``, ``icem``, ``mppi``, ``gd``) built with ``planner_kwargs``.
        pairs: start/goal pairs (DINO-WM: 50).
        seed: pair ``i`` uses ``sample_start_goal(seed + i)`` and a planner generator seeded ``seed + i``.
        mpc: re-plan every ``execute`` model steps (warm start) until success or the budget; otherwise
            open loop: plan ``horizon`` steps once and execute them all.
        out: directory for ``results.json``, videos and ``plot.png`` (``None``: write nothing).
        horizon: planning horizon in model steps (DINO-WM: 5).
        execute: model steps executed per MPC re-plan.
        planner_kwargs: constructor arguments when ``planner`` is a name.
        chunk_size: candidates per model call in the cost function (bounds memory: at DINO-WM's shapes, 32
            keeps a CEM step within 8 GiB on CPU, see ``benchmarks/planning_bench.py``).
        alpha: weight of the proprio term of the goal distance (DINO-WM: 1 Wall/PushT, 0 PointMaze).
        objective_mode: goal distance on the ``"last"`` predicted frame or on ``"all"`` frames (discounted).
        discount: frame discount of ``objective_mode="all"``.
        budget: env steps per episode (default: the env's ``planning_budget``).
        videos: write an mp4 for the first ``videos`` pairs (``None``: every pair; needs ``out``).
        progress: show a progress bar.
        workers: evaluate pairs in this many processes (spawned, one torch thread each; the model is sent
            to each once). Results do not depend on ``workers``: pair ``i`` always uses seed ``seed + i``.
        env_kwargs: extra ``gym.make`` arguments of the env (a protocol variant, e.g. ``{"max_step": 5.0}``
            for ``worldmodels/Wall-v0``); recorded in the results' config.
        amp: ``"bf16"`` / ``"fp16"``: model rollouts under ``torch.autocast`` (see
            :func:`planners.objectives.make_cost_fn`); recorded in the results' config.

    With ``out``, each finished pair is saved to ``out/pairs/pair_XXX.json`` (atomically); a re-run with the
    same config skips the pairs already done, so an interrupted evaluation loses nothing finished.
    """
    import worldmodels.envs  # registers the environments

    if pairs < 1:
        raise ValueError(f"pairs={pairs} must be >= 1")
    if isinstance(planner, str):
        if planner not in PLANNERS:
            raise ValueError(f"planner={planner!r}; allowed values: {PLANNERS}")
        planner_name = planner
        planner = build_planner(planner, **(planner_kwargs or {}))
    else:
        planner_name = type(planner).__name__
    if env_id not in gym.registry:
        raise ValueError(
            f"env_id={env_id!r} is not registered; known worldmodels ids: {worldmodels.envs.ENV_IDS}"
        )
    budget = budget or int(worldmodels.envs.planning_budget(env_id))
    frameskip = int(getattr(model, "frameskip", 1))
    variant = dict(env_kwargs or {})
    reserved = {"max_episode_steps", "img_size"} & variant.keys()
    if reserved:
        raise ValueError(
            f"env_kwargs: {sorted(reserved)} are set by the evaluation (budget, the model's img_size)"
        )
    env_kwargs = {"max_episode_steps": budget, **variant}
    if getattr(model, "img_size", None):
        env_kwargs["img_size"] = int(model.img_size)
    model_steps = math.ceil(budget / frameskip)
    controller = (
        MPC(planner, horizon=horizon, execute=execute, max_steps=model_steps)
        if mpc
        else MPC(planner, horizon=horizon, execute=horizon, max_steps=min(horizon, model_steps))
    )
    config = {
        "env_id": env_id, "planner": planner_name, "planner_kwargs": dict(planner_kwargs or {}), "mpc": mpc,
        "pairs": pairs, "seed": seed, "horizon": horizon, "execute": execute if mpc else horizon,
        "chunk_size": chunk_size, "alpha": alpha, "objective_mode": objective_mode, "discount": discount,
        "budget": budget, "frameskip": frameskip, "model": str(getattr(model, "name_or_path", type(model).__name__)),
    }  # fmt: skip
    if variant:
        config["env_kwargs"] = variant
    if amp_dtype(amp) is not None:  # checks the name before any pair runs
        config["amp"] = amp
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    job = _PairJob(
        model=model, env_id=env_id, env_kwargs=env_kwargs, planner=planner, controller=controller, seed=seed,
        alpha=alpha, objective_mode=objective_mode, discount=discount, chunk_size=chunk_size, out_dir=out_dir,
        videos=videos, amp=amp,
    )  # fmt: skip
    done: dict[int, PairResult] = {}
    resume_key: Any = None
    if out_dir is not None:  # resume: pairs finished by an earlier run with the same config are kept
        (out_dir / "pairs").mkdir(exist_ok=True)
        resume_key = _json_safe(
            {k: v for k, v in config.items() if k != "pairs"} | {"weights": _fingerprint(model)}
        )
        for i in range(pairs):
            path = out_dir / "pairs" / f"pair_{i:03d}.json"
            if path.exists():
                saved = json.loads(path.read_text())
                if saved.get("config") == resume_key:
                    done[i] = PairResult(**saved["result"])
    todo = [i for i in range(pairs) if i not in done]
    bar = tqdm(total=pairs, initial=len(done), desc=f"{planner_name}{'+mpc' if mpc else ''} on {env_id}",
               disable=not progress)  # fmt: skip

    def record(pair: PairResult) -> None:
        done[pair.index] = pair
        if out_dir is not None:
            _write_json(out_dir / "pairs" / f"pair_{pair.index:03d}.json",
                        {"config": resume_key, "result": asdict(pair)})  # fmt: skip
        bar.update()
        bar.set_postfix(success=f"{sum(p.success for p in done.values())}/{len(done)}")

    if workers == 1 or len(todo) <= 1:
        env = job.make_env()
        for i in todo:
            record(job.run_pair(env, i))
        env.close()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(min(workers, len(todo)), initializer=_worker_init, initargs=(job,)) as pool:
            for pair in pool.imap_unordered(_worker_pair, todo):
                record(pair)
    bar.close()
    results = [done[i] for i in range(pairs)]
    n_success = sum(p.success for p in results)
    calls = sum(p.plan_calls for p in results)
    result = EvalResult(
        success_rate=n_success / pairs,
        ci95=wilson_interval(n_success, pairs),
        plan_time_per_step_s=sum(p.plan_time for p in results) / max(calls, 1),
        pairs=results,
        config=config,
        out=out_dir,
    )
    if out_dir is not None:
        _write_json(out_dir / "results.json", result.to_dict())
        _write_plot(out_dir / "plot.png", result)
    return result
