"""``synth experiment``: does TD3+BC learn as well from SynthER's transitions as from the real ones?

For each dataset (``<data-root>/<env>-medium``, a ``worldmodels data build-d4rl`` tier) and seed, TD3+BC
(:mod:`worldmodels.rl.td3bc`) is trained for ``--td3-steps`` updates on

* ``real``: the real transitions;
* ``synthetic``: as many synthetic transitions as real ones (``--synthetic`` times; 1 by default), from a
  SynthER trained on the real data;
* ``real+synthetic``: both, concatenated;
* ``subset``: a random 10% of the real transitions (``--subset``);
* ``subset+upsampled``: that subset plus synthetic transitions from a SynthER trained on the subset only
  (as many as the full dataset has, SynthER's upsampling setting),

and evaluated on the simulator (``--eval-episodes`` episodes, deterministic policy; D4RL-normalised score).
Every stage is kept on disk (``--out``): SynthER models (``<env>/<full|subset>/fit/model``), samples
(``<env>/<full|subset>/samples``), and one JSON line per run in ``results.jsonl``; a rerun skips what exists.
The table printed at the end has one row per dataset and condition (mean and each seed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

CONDITIONS = ("real", "synthetic", "real+synthetic", "subset", "subset+upsampled")


def _fit(
    cfg_path: str, data_root: Path, out: Path, steps: int, subset: float, width: int, blocks: int
) -> Path:
    model = out / "fit" / "model"
    if (model / "config.json").exists():
        return model
    from worldmodels.training.cli import lightning_main

    lightning_main(["fit", "-c", cfg_path, "--data.root", str(data_root), "--data.subset", str(subset),
                    "--trainer.max_steps", str(steps), "--trainer.max_time", "null",
                    "--trainer.val_check_interval", str(max(1, steps // 4)),
                    "--trainer.default_root_dir", str(out / "fit"), "--trainer.enable_progress_bar", "false",
                    "--model.width", str(width), "--model.blocks", str(blocks)])  # fmt: skip
    return model


def _samples(model: Path, out: Path, num: int, sampler: str, seed: int) -> dict[str, np.ndarray]:
    from synth.data import load_transitions
    from synth.generate import GenerateConfig, generate

    generate(GenerateConfig(model=str(model), num=num, out=str(out), format="npz", seed=seed, sampler=sampler,
                            shard_size=25_000, batch_size=5_000, progress=False))  # fmt: skip
    return load_transitions(out)


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    keys = ("observations", "actions", "rewards", "next_observations", "terminals")
    return {k: np.concatenate([a[k], b[k]]) for k in keys}


def run_td3bc(data: dict[str, np.ndarray], env_id: str, steps: int, episodes: int, seed: int) -> dict:
    """Train TD3+BC on ``data`` for ``steps`` updates and evaluate it: returns, mean, seconds."""
    from worldmodels.rl.td3bc import TD3BC, evaluate_policy

    torch.manual_seed(seed)
    import gymnasium as gym

    space = gym.make(env_id).action_space
    agent = TD3BC(data["observations"].shape[1], data["actions"].shape[1], space.low, space.high)
    t0 = time.time()
    agent.train_offline(data, steps, torch.Generator().manual_seed(seed))
    train_s = time.time() - t0
    returns = evaluate_policy(agent, env_id, episodes, seed=10_000 + 100 * seed)
    return {"returns": returns.tolist(), "return": float(returns.mean()), "train_s": train_s}


def table(results: list[dict]) -> str:
    """Markdown table: dataset, condition, transitions, normalised score mean (per-seed values)."""
    rows = ["| dataset | condition | transitions | D4RL-normalised score, mean | per seed |",
            "|---|---|---:|---:|---|"]  # fmt: skip
    keyed: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        keyed.setdefault((r["env"], r["condition"]), []).append(r)
    for (env, cond), rs in sorted(keyed.items(), key=lambda kv: (kv[0][0], CONDITIONS.index(kv[0][1]))):
        scores = [r["score"] for r in sorted(rs, key=lambda r: r["seed"])]
        rows.append(f"| {env}-medium | {cond} | {rs[0]['transitions']} | {np.mean(scores):.1f} | "
                    f"{', '.join(f'{s:.1f}' for s in scores)} |")  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="synth experiment", description=__doc__.split("\n")[0])
    p.add_argument("--data-root", required=True, help="folder holding <env>-medium datasets")
    p.add_argument("--envs", nargs="+", default=["halfcheetah", "hopper", "walker2d"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="TD3+BC seeds")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--out", required=True, help="working directory (models, samples, results.jsonl)")
    p.add_argument("--fit-steps", type=int, default=4000, help="SynthER training steps (full data)")
    p.add_argument("--subset-fit-steps", type=int, default=2000, help="SynthER training steps (subset)")
    p.add_argument("--width", type=int, default=512, help="SynthER denoiser width")
    p.add_argument("--blocks", type=int, default=4, help="SynthER residual blocks")
    p.add_argument("--synthetic", type=float, default=1.0, help="synthetic transitions per real transition")
    p.add_argument("--subset", type=float, default=0.1, help="fraction of real data in the subset setting")
    p.add_argument("--sampler", default="steps=16,solver=heun,s_churn=0", help="sampler for generation")
    p.add_argument("--td3-steps", type=int, default=5000, help="TD3+BC updates per run")
    p.add_argument("--eval-episodes", type=int, default=5)
    args = p.parse_args(argv)
    from synth.data import dataset_env_id, load_transitions
    from worldmodels.data.d4rl import check_env, normalized_score

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    results = (
        [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    )
    done = {(r["env"], r["condition"], r["seed"]) for r in results}
    for env in args.envs:
        check_env(env)
        root = Path(args.data_root) / f"{env}-medium"
        if not (root / "manifest.json").exists():
            raise ValueError(f"{root}: no dataset (build it with worldmodels data build-d4rl)")
        env_id = dataset_env_id(root)
        real = load_transitions(root)
        n = len(real["actions"])
        cfg = f"configs/synth/{env}.yaml"
        need = {c for c in args.conditions if any((env, c, s) not in done for s in args.seeds)}
        data: dict[str, dict[str, np.ndarray]] = {}
        if need & {"synthetic", "real+synthetic"}:
            model = _fit(cfg, root, out / env / "full", args.fit_steps, 1.0, args.width, args.blocks)
            syn = _samples(model, out / env / "full" / "samples", round(args.synthetic * n), args.sampler, 0)
            data["synthetic"], data["real+synthetic"] = syn, _concat(real, syn)
        if need & {"subset", "subset+upsampled"}:
            sub = load_transitions(root, subset=args.subset, seed=0)
            data["subset"] = sub
            if "subset+upsampled" in need:
                model = _fit(cfg, root, out / env / "subset", args.subset_fit_steps, args.subset, args.width,
                             args.blocks)  # fmt: skip
                up = _samples(model, out / env / "subset" / "samples", n, args.sampler, 0)
                data["subset+upsampled"] = _concat(sub, up)
        data["real"] = real
        for seed in args.seeds:
            for cond in args.conditions:
                if (env, cond, seed) in done:
                    continue
                r = run_td3bc(data[cond], env_id, args.td3_steps, args.eval_episodes, seed)
                r |= {"env": env, "condition": cond, "seed": seed, "transitions": len(data[cond]["actions"]),
                      "score": float(normalized_score(env, r["return"])), "td3_steps": args.td3_steps,
                      "fit_steps": args.fit_steps, "subset_fit_steps": args.subset_fit_steps,
                      "width": args.width, "blocks": args.blocks, "sampler": args.sampler}  # fmt: skip
                results.append(r)
                with open(results_path, "a") as f:
                    f.write(json.dumps(r) + "\n")
                print(f"{env} {cond} seed {seed}: score {r['score']:.1f} ({r['train_s']:.0f} s)", flush=True)
    print(table([r for r in results if r["env"] in args.envs]))
    return 0
