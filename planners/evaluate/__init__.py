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

One module per concern: :mod:`~planners.evaluate.options` (:class:`EvalOptions`, shared with
``planners eval``), :mod:`~planners.evaluate.episode` (one pair's episode), :mod:`~planners.evaluate.pool`
(worker processes and resume), :mod:`~planners.evaluate.report` (results, ``results.json``, videos, plot).
"""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from planners import PLANNERS, build_planner
from planners.base import Planner
from planners.evaluate.episode import PairJob, to_model_obs
from planners.evaluate.options import EvalOptions
from planners.evaluate.pool import load_pairs, resume_key, run_pairs, save_pair
from planners.evaluate.report import EvalResult, PairResult, wilson_interval, write_report
from planners.mpc import MPC
from worldmodels.api import WorldModel


def evaluate(
    model: WorldModel, env_id: str, planner: str | Planner, options: EvalOptions | None = None
) -> EvalResult:
    """Run DINO-WM's goal-reaching evaluation (see the module docstring).

    Args:
        model: any :class:`worldmodels.api.WorldModel` (optional attributes used when present:
            ``frameskip``, ``num_hist``, ``img_size``, ``decode``).
        env_id: a registered env with the planning contract (``worldmodels/Wall-v0``, ...), or
            ``module:Env-v0`` for an env registered by the user's own module (see
            :func:`worldmodels.envs.env_spec`); checked against the model's sizes before planning
            (:func:`check_model_env`).
        planner: a planner or its name (``cem``, ``icem``, ``mppi``, ``gd``) built with
            ``options.planner_kwargs``.
        options: pairs, seed, MPC or open loop, objective, outputs, workers (:class:`EvalOptions`; ``None``:
            its defaults).

    With ``options.out``, each finished pair is saved to ``out/pairs/pair_XXX.json`` (atomically); a re-run
    with the same config skips the pairs already done, so an interrupted evaluation loses nothing finished.
    """
    import worldmodels.envs  # registers the environments

    opts = options or EvalOptions()
    if isinstance(planner, str):
        if planner not in PLANNERS:
            raise ValueError(f"planner={planner!r}; allowed values: {PLANNERS}")
        planner_name = planner
        planner = build_planner(planner, **opts.planner_kwargs)
    else:
        planner_name = type(planner).__name__
    worldmodels.envs.env_spec(env_id)  # registered, or importable as module:Env-v0
    budget = opts.budget or worldmodels.envs.planning_budget(env_id)
    frameskip = int(getattr(model, "frameskip", 1))
    env_kwargs = {"max_episode_steps": budget, **opts.env_kwargs}
    if getattr(model, "img_size", None):
        env_kwargs["img_size"] = int(model.img_size)
    check_model_env(model, env_id, env_kwargs)
    model_steps = math.ceil(budget / frameskip)
    horizon = opts.horizon
    controller = (
        MPC(planner, horizon=horizon, execute=opts.execute, max_steps=model_steps)
        if opts.mpc
        else MPC(planner, horizon=horizon, execute=horizon, max_steps=min(horizon, model_steps))
    )
    config = {
        "env_id": env_id, "planner": planner_name, "planner_kwargs": dict(opts.planner_kwargs), "mpc": opts.mpc,
        "pairs": opts.pairs, "seed": opts.seed, "horizon": horizon, "execute": opts.execute if opts.mpc else horizon,
        "chunk_size": opts.chunk_size, "alpha": opts.alpha, "objective_mode": opts.objective_mode,
        "discount": opts.discount, "budget": budget, "frameskip": frameskip,
        "model": str(getattr(model, "name_or_path", type(model).__name__)),
    }  # fmt: skip
    if opts.env_kwargs:
        config["env_kwargs"] = dict(opts.env_kwargs)
    if opts.amp is not None:
        config["amp"] = opts.amp
    out_dir = Path(opts.out) if opts.out is not None else None
    job = PairJob(model, env_id, env_kwargs, planner, controller, opts, out_dir)
    key = None if out_dir is None else resume_key(config, model)
    done = {} if out_dir is None else load_pairs(out_dir, opts.pairs, key)
    bar = tqdm(total=opts.pairs, initial=len(done), desc=f"{planner_name}{'+mpc' if opts.mpc else ''} on {env_id}",
               disable=not opts.progress)  # fmt: skip

    def record(pair: PairResult) -> None:
        done[pair.index] = pair
        if out_dir is not None:
            save_pair(out_dir, pair, key)
        bar.update()
        bar.set_postfix(success=f"{sum(p.success for p in done.values())}/{len(done)}")

    run_pairs(job, [i for i in range(opts.pairs) if i not in done], opts.workers, record)
    bar.close()
    result = EvalResult.from_pairs([done[i] for i in range(opts.pairs)], config, out_dir)
    if out_dir is not None:
        write_report(result)
    return result


#: what the evaluation calls on ``env.unwrapped`` (the planning half of the env contract)
PLANNING_CONTRACT = ("sample_start_goal", "obs_from_state", "is_success", "get_state")


def check_model_env(model: WorldModel, env_id: str, env_kwargs: dict) -> None:
    """Before any planning: the env keeps the planning contract (:data:`PLANNING_CONTRACT`) and its action
    and proprio sizes are those the model was trained with (``env_action_low`` ``(A,)``, ``proprio_mean``
    ``(P,)`` where the model has them); ``ValueError`` naming the model, its training env and the sizes."""
    env = gym.make(env_id, **env_kwargs)
    try:
        missing = [m for m in PLANNING_CONTRACT if not callable(getattr(env.unwrapped, m, None))]
        if missing:
            raise ValueError(
                f"env_id={env_id!r}: the env lacks {missing} of the planning contract (see "
                "docs/bring_your_own_env.md)"
            )
        have: dict[str, int] = {"action": int(np.prod(env.action_space.shape))}
        space = getattr(env.observation_space, "spaces", {})
        if "proprio" in space:
            have["proprio"] = int(np.prod(space["proprio"].shape))
    finally:
        env.close()
    want: dict[str, int] = {}
    if getattr(model, "env_action_low", None) is not None:
        want["action"] = int(model.env_action_low.numel())
    if getattr(model, "proprio_mean", None) is not None and model.proprio_mean.numel():
        want["proprio"] = int(model.proprio_mean.numel())
    bad = [k for k in want if want[k] != have.get(k)]
    if bad:
        name = getattr(model, "pretrained_path", None) or type(model).__name__
        trained = getattr(model, "env_id", "") or "an unrecorded env"
        sizes = ", ".join(f"{k} {want[k]} vs {have.get(k, 'none')}" for k in bad)
        raise ValueError(
            f"{name}: trained on {trained}, its sizes do not fit --env {env_id} ({sizes}; model vs env)"
        )


__all__ = ["EvalOptions", "EvalResult", "PairResult", "evaluate", "to_model_obs", "wilson_interval"]
