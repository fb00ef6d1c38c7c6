"""``worldmodels rl train --algo ravl|mopo|mbpo --data DIR --model DIR|true-dynamics --out RUN [...]``.

Every :class:`~worldmodels.rl.mbrl.MBRLConfig` field is an option (``--total-updates``, ``--num-critics``,
``--penalty``, ...); rerunning the same command resumes the run in ``--out`` exactly.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from worldmodels.rl.mbrl import DivergenceError, MBRLConfig, train_mbrl

    parser = argparse.ArgumentParser(prog="worldmodels rl", description="offline model-based RL")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train MBPO / MOPO / RAVL on a dataset and a dynamics model")
    train.add_argument("--out", required=True, help="run directory (resumed when it exists)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    MBRLConfig.add_arguments(train)
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("--data is required")
    config = MBRLConfig.from_args(args)
    try:
        run = train_mbrl(config, args.out, progress=not args.no_progress)
    except DivergenceError as err:
        print(f"worldmodels rl train: {err}", file=sys.stderr)
        return 1
    print(f"finished: the policy is {run / 'actor'}, evaluations in {run / 'evals.json'}")
    return 0
