"""The ``worldmodels`` command: one entry point, sub-commands imported lazily.

worldmodels fit|validate|test -c configs/latent/wall.yaml   # Lightning CLI
worldmodels data collect|info|render ...                    # datasets
worldmodels pretrain-encoder ... / cache-features ...       # offline encoders, feature cache
worldmodels envs rollout ...                                # scripted rollouts -> mp4 per env
worldmodels evaluate-rollouts --model DIR --data DIR         # video prediction quality per horizon step
worldmodels rl train --algo ravl --data DIR --model DIR    # offline model-based RL
worldmodels demo                                            # the README's main job

A user error (bad flag value, missing file, unknown env) prints one line, ``worldmodels <verb>: error: ...``,
and exits with status 2; ``--debug`` (or ``WORLDMODELS_DEBUG=1``) shows the traceback (:mod:`worldmodels.errors`).
"""

from __future__ import annotations

import importlib
import sys

from worldmodels.errors import DEBUG_ENV, DEBUG_FLAG, run_command

# sub-command -> (module, function, one-line help); each function takes argv (list[str]) and returns an exit code
COMMANDS: dict[str, tuple[str, str, str]] = {
    "fit": ("worldmodels.training.cli", "lightning_main", "train a world model (Lightning CLI)"),
    "validate": ("worldmodels.training.cli", "lightning_main", "validate a world model (Lightning CLI)"),
    "test": ("worldmodels.training.cli", "lightning_main", "test a world model (Lightning CLI)"),
    "data": ("worldmodels.data.cli", "main", "collect, inspect, render and convert datasets"),
    "pretrain-encoder": ("worldmodels.encoders.cli", "pretrain_main", "pre-train an offline visual encoder"),
    "cache-features": ("worldmodels.encoders.cli", "cache_main", "encode a dataset's frames once"),
    "envs": ("worldmodels.envs.cli", "main", "list environments, roll out scripted controllers"),
    "evaluate-rollouts": (
        "worldmodels.evaluate_rollouts",
        "main",
        "video prediction quality: PSNR/SSIM per step",
    ),
    "rl": ("worldmodels.rl.cli", "main", "offline model-based RL: MBPO, MOPO, RAVL"),
    "demo": ("worldmodels.demo", "main", "the main job: data -> world model -> plan -> success + video"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: worldmodels <command> [args]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", f"{DEBUG_FLAG} (or {DEBUG_ENV}=1): show the full traceback of a user error"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``worldmodels`` script; ``argv`` excludes the program name."""
    return run_command("worldmodels", sys.argv[1:] if argv is None else argv, _dispatch)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"worldmodels: unknown command {name!r}; expected one of {sorted(COMMANDS)}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[name]
    fn = getattr(importlib.import_module(module), func)
    rest = argv if module == "worldmodels.training.cli" else argv[1:]
    return int(fn(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
