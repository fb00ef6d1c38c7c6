"""The README's main job: data -> world model -> plan -> success rate + video, on the embedded default.

    python -m worldmodels.demo --out runs/demo        # what `make demo` runs

Stages (each skipped when its output already exists, so an interrupted demo resumes where it stopped):

1. ``envs``: roll out each environment's scripted controller and write one mp4 per env.
2. ``data``: collect a Wall dataset, episodes alternating between the noisy scripted controller (through the
   door) and held random actions (into the walls), on both cores.
3. ``encoder``: pre-train the offline ``state_ae`` encoder on the dataset's own frames (16-pixel patches:
   4 x 4 tokens per frame, so training and planning are cheap).
4. ``fit``: train the latent world model (``configs/latent/wall_demo.yaml``: 4 epochs, 1416 steps, with the
   push-forward loss) through the Lightning CLI.
5. ``plan``: MPC + iCEM (noise coloured along env time) toward goal images on start/goal pairs; prints the
   success rate, writes videos.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from worldmodels.io import atomic_write_text

STAGES = ("envs", "data", "encoder", "fit", "plan")
DEMO_ENV = "worldmodels/Wall-v0"
#: behaviour policy of the demo data (as ``configs/latent/wall.yaml``'s): the expert alone never pushes into
#: the wall, and a model that never saw it block walks through it in imagination
DEMO_POLICY = "noisy-expert+sticky-random"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], module: str) -> None:
    """Run one stage's command in its own process (a stage that renders with EGL never shares a process
    with one that trains), echoing the command first."""
    print(f"\n$ {' '.join(argv)}", flush=True)
    code = subprocess.run([sys.executable, "-m", module, *argv[1:]]).returncode
    if code:
        raise SystemExit(f"demo: stage command failed with exit code {code}: {' '.join(argv)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="worldmodels demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    p.add_argument("--episodes", type=int, default=600, help="Wall episodes to collect (default: 600)")
    p.add_argument("--pairs", type=int, default=10, help="start/goal pairs to plan for (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, training and planning (default: 0)")
    p.add_argument("--config", default="configs/latent/wall_demo.yaml", help="world-model config")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument(
        "--fit-args", default="", help="extra Lightning CLI arguments for the fit stage (one string)"
    )
    p.add_argument(
        "--encoder",
        default="state_ae",
        choices=("conv_ae", "state_ae"),
        help="offline encoder pre-trained on the demo's frames (default: state_ae)",
    )
    p.add_argument(
        "--encoder-args",
        default="--steps 300 --batch-size 32 --num-down 4",
        help="extra arguments for pretrain-encoder (one string; default: 300 steps, 4 x 4 tokens)",
    )
    p.add_argument(
        "--planner", default="icem", choices=("cem", "icem", "mppi"), help="MPC planner (default: icem)"
    )
    p.add_argument(
        "--plan-args",
        default="--samples 100 --topk 10 --iters 5 --execute 2 --substeps 5 --workers 2",
        help="extra arguments for `planners eval` (one string; default: a CPU-sized iCEM, noise coloured "
        "along env time)",
    )
    args = p.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        p.error(f"--stages: unknown stage(s) {bad}; allowed: {list(STAGES)}")

    wm = "worldmodels.cli"
    config = Path(args.config)
    if not config.exists() and (REPO_ROOT / config).exists():
        config = REPO_ROOT / config  # relative to the checkout, wherever the demo is started from
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, encoder, fit, plan = out / "data", out / "encoder", out / "fit", out / "plan"
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    if "envs" in stages:
        t0 = time.perf_counter()
        _run(["worldmodels", "envs", "rollout", "--all", "--episodes", "1", "--out", str(out / "envs")], wm)
        timings["envs"] = time.perf_counter() - t0
    if "data" in stages:
        t0 = time.perf_counter()
        _run(
            ["worldmodels", "data", "collect", "--env", DEMO_ENV, "--policy", DEMO_POLICY, "--noise-std", "1.0",
             "--episodes", str(args.episodes), "--out", str(data), "--workers", "2", "--seed", str(args.seed)],
            wm,
        )  # fmt: skip
        timings["data"] = time.perf_counter() - t0
    if "encoder" in stages:
        t0 = time.perf_counter()
        if (encoder / "config.json").exists():
            print(f"\nencoder: {encoder} exists, skipping pre-training")
        else:
            _run(["worldmodels", "pretrain-encoder", "--data", str(data), "--encoder", args.encoder,
                  "--out", str(encoder), "--seed", str(args.seed), *shlex.split(args.encoder_args)], wm)  # fmt: skip
        timings["encoder"] = time.perf_counter() - t0
    model_dir = fit / "model"
    if "fit" in stages:
        t0 = time.perf_counter()
        if (model_dir / "config.json").exists():
            print(f"\nfit: {model_dir} exists, skipping training")
        else:
            _run(["worldmodels", "fit", "-c", str(config), "--data.root", str(data),
                  "--model.encoder", args.encoder, "--model.encoder_path", str(encoder), "--trainer.default_root_dir", str(fit),
                  "--seed_everything", str(args.seed), *shlex.split(args.fit_args)], wm)  # fmt: skip
        timings["fit"] = time.perf_counter() - t0
    if "plan" in stages:
        t0 = time.perf_counter()
        _run(["planners", "eval", "--model", str(model_dir), "--env", DEMO_ENV, "--planner", args.planner,
              "--mpc", "--pairs", str(args.pairs), "--seed", str(args.seed), "--out", str(plan), *shlex.split(args.plan_args)],
             "planners.cli")  # fmt: skip
        timings["plan"] = time.perf_counter() - t0
        result = json.loads((plan / "results.json").read_text())
        name = f"MPC+{args.planner.upper()}"
        print(f"\n{name} on {DEMO_ENV}: success rate {result['success_rate']:.2f} over {args.pairs} pairs")
        print(f"videos: {plan}")
    timings["total"] = time.perf_counter() - t_start
    print("\nstage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    atomic_write_text(out / "timings.json", json.dumps(timings, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
