"""The ``synth`` command. Sub-commands (train, generate, export) arrive with the SynthER issue."""

from __future__ import annotations

import sys

COMMANDS: dict[str, str] = {}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``synth`` script; ``argv`` excludes the program name. A user error prints one
    line, ``synth <verb>: error: ...`` (``--debug`` or ``WORLDMODELS_DEBUG=1``: the traceback)."""
    from worldmodels.errors import run_command

    return run_command("synth", sys.argv[1:] if argv is None else argv, _dispatch, depth=1)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: synth <command> [args]\n\ncommands: none yet (SynthER is not built yet)")
        return 0
    print(f"synth: unknown command {argv[0]!r}; expected one of {sorted(COMMANDS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
