"""One way for the ``worldmodels``, ``planners`` and ``synth`` commands to report a user's mistake.

A sub-command reports bad input by raising: ``ValueError`` (or :class:`UserError`, a ``ValueError``) with a
message that names the file, key or argument, ``FileNotFoundError`` / another ``OSError`` for a path, or a
Gymnasium error (unknown env id). :func:`run_command`, wrapped around every top-level ``main``, turns these
into one line on stderr and exit status 2::

    worldmodels data collect: error: episodes=0 must be >= 1

Every other exception (``TypeError``, ``KeyError``, ``AttributeError``, ``RuntimeError``, ...) is a bug and
keeps its traceback. ``--debug`` anywhere on the command line (removed before the sub-command parses its
arguments) or ``WORLDMODELS_DEBUG=1`` in the environment shows the full traceback for user errors too.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence

DEBUG_FLAG = "--debug"
DEBUG_ENV = "WORLDMODELS_DEBUG"
#: exit status of a command stopped by a user error (argparse uses 2 for usage errors too)
EXIT_USER_ERROR = 2


class UserError(ValueError):
    """Bad input from the user (a path, a flag's value, a file's content); the message names the culprit.

    A ``ValueError``, so library callers that catch ``ValueError`` keep working."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types reported as one line: ``ValueError`` (:class:`UserError` included), ``OSError``
    (missing file, permission, disk full) and, when Gymnasium is loaded, ``gymnasium.error.Error`` (unknown
    env id, ...). Not ``KeyError``/``TypeError``/``IndexError``: those are bugs unless converted where the
    input is validated."""
    types: list[type[BaseException]] = [ValueError, OSError]
    gym_error = sys.modules.get("gymnasium.error")
    if gym_error is not None:
        types.append(gym_error.Error)
    return tuple(types)


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` in ``argv`` or ``WORLDMODELS_DEBUG`` set to a true value (``1``, ``true``, ``yes``)."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return DEBUG_FLAG in argv or env in {"1", "true", "yes", "on"}


def one_line(err: BaseException) -> str:
    """The error's message on one line (a multi-line message is joined with ``; ``)."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def command_name(prog: str, argv: Sequence[str], depth: int = 2) -> str:
    """``prog`` plus up to ``depth`` leading command words of ``argv`` (``worldmodels data collect``,
    ``planners eval``): lower-case words, stopping at the first option or existing path."""
    words = [prog]
    for arg in argv[:depth]:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", arg) or os.path.exists(arg):
            break
        words.append(arg)
    return " ".join(words)


def run_command(prog: str, argv: Sequence[str], fn: Callable[[list[str]], int | None], depth: int = 2) -> int:
    """Call ``fn(argv without --debug)`` and return its exit code; a user error (see
    :func:`user_error_types`) prints ``<prog> <verb>: error: <message>`` to stderr and returns
    :data:`EXIT_USER_ERROR`, unless debugging was asked for (then it propagates with its traceback)."""
    argv = list(argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        return int(fn(argv) or 0)
    except user_error_types() as err:
        if debug:
            raise
        print(f"{command_name(prog, argv, depth)}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
