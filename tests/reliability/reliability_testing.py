"""Helpers of the reliability tests (imported by name; ``conftest`` holds the fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

import worldmodels

#: the checkout whose code is under test (also the one subprocesses import)
REPO = Path(worldmodels.__file__).resolve().parents[1]
MODULES = {"worldmodels": "worldmodels.cli", "planners": "planners.cli", "synth": "synth.cli"}


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MUJOCO_GL="egl")
    env.pop("WORLDMODELS_DEBUG", None)
    return env


def command(prog: str, *args: str) -> list[str]:
    """The command line running ``prog`` (``worldmodels``, ``planners``, ``synth``) from this checkout."""
    return [sys.executable, "-m", MODULES[prog], *map(str, args)]


def run(prog: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(prog, *args), env=cli_env(), capture_output=True, text=True, timeout=timeout
    )


def snapshot(root: str | os.PathLike) -> dict[str, tuple]:
    """Every file and directory under ``root``: relative path -> (kind, mode, size, CRC32 of the content)."""
    root = Path(root)
    if not root.exists():
        return {}
    out: dict[str, tuple] = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.stat()
        rel = str(p.relative_to(root))
        if p.is_dir():
            out[rel] = ("dir", st.st_mode)
        else:
            out[rel] = ("file", st.st_mode, st.st_size, zlib.crc32(p.read_bytes()))
    return out


def error_line(err: str, prefix: str) -> str:
    """The one error line of a failed command's stderr: no traceback, exactly one line starting with
    ``prefix`` and containing ``: error: `` (argparse's usage lines may precede it)."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def run_main(
    main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``main(argv)`` in this process: (exit code, stderr); argparse's ``SystemExit`` becomes its code."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    return code, capsys.readouterr().err


def tiny_latent_model(proprio_dim: int = 2, env_action_dim: int = 2, frameskip: int = 5, env_id: str = ""):
    """A random, untrained ``LatentWorldModel`` (64 px, conv_ae encoder, one history frame): enough to load,
    validate and plan with."""
    import torch

    from worldmodels.encoders.conv_ae import ConvAEEncoder
    from worldmodels.models.latent_world_model import LatentWorldModel

    torch.manual_seed(0)
    enc = ConvAEEncoder(embed_dim=8, width=8, num_down=3)
    a = env_action_dim * frameskip
    predictor = {"num_patches": 64, "visual_dim": 8, "proprio_dim": proprio_dim, "action_dim": a, "max_frames": 4,
                 "width": 16, "depth": 1, "heads": 2, "head_dim": 8, "mlp_dim": 16}  # fmt: skip
    stats = {"proprio_mean": torch.full((proprio_dim,), 32.0), "proprio_std": torch.full((proprio_dim,), 16.0),
             "action_mean": torch.zeros(a), "action_std": torch.ones(a)}  # fmt: skip
    return LatentWorldModel(enc, {"name": "conv_ae", "config": enc.config}, predictor, stats, frameskip=frameskip,
                            num_hist=1, img_size=64, env_id=env_id).eval()  # fmt: skip


def run_here(capsys: pytest.CaptureFixture[str], prog: str, *args: str) -> subprocess.CompletedProcess:
    """:func:`run` in this process (the same entry point, without a new interpreter's start-up)."""
    import importlib

    main = importlib.import_module(MODULES[prog]).main
    code, err = run_main(main, list(map(str, args)), capsys)
    return subprocess.CompletedProcess([prog, *args], code, "", err)
