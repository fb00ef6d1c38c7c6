"""The ``synth`` command: SynthER's user paths, one module per sub-command.

synth fit -c configs/synth/halfcheetah.yaml        train (forwards to ``worldmodels fit``)
synth generate --model DIR --num N --out DIR [--format npz|d4rl|minari|store] [--overwrite]
synth evaluate --model DIR --data DIR [--out DIR]   fidelity against the simulator
synth experiment ...                                TD3+BC on real / synthetic / mixed data
"""

from __future__ import annotations

import importlib
import sys

#: sub-command -> (module, function, one-line help); each function takes the remaining argv
COMMANDS: dict[str, tuple[str, str, str]] = {
    "fit": ("synth.cli", "fit_main", "train SynthER (the Lightning CLI of `worldmodels fit`)"),
    "generate": ("synth.generate", "main", "write synthetic transitions in shards (resumable)"),
    "evaluate": ("synth.evaluate", "main", "fidelity of a model's samples against the real simulator"),
    "experiment": ("synth.experiment", "main", "TD3+BC on real vs synthetic vs mixed data (a table)"),
    "latent": ("synth.latent", "main", "latent SynthER on a pixel dataset's features + world-model check"),
}


def fit_main(argv: list[str]) -> int:
    """``synth fit ...`` = ``worldmodels fit ...``: one training convention across the project."""
    from worldmodels.training.cli import lightning_main

    return lightning_main(["fit", *argv])


def usage() -> str:
    lines = [f"  {name:<11} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "usage: synth <command> [args]\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``synth`` script; ``argv`` excludes the program name. A user error prints one
    line, ``synth <verb>: error: ...`` (``--debug`` or ``WORLDMODELS_DEBUG=1``: the traceback)."""
    from worldmodels.errors import run_command

    return run_command("synth", sys.argv[1:] if argv is None else argv, _dispatch, depth=1)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"synth: unknown command {argv[0]!r}; expected one of {sorted(COMMANDS)}", file=sys.stderr)
        return 2
    module, func, _ = COMMANDS[argv[0]]
    return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
