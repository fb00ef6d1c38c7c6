"""Files the tools write get the mode a plain ``open(path, "w")`` gives (``0o666 & ~umask``, not a temp
file's private ``0o600``) and their directory is fsync'd after the rename (issue 18, case 10): exported
HDF5, rendered GIF, saved weights, plots, videos, results."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

import worldmodels.io
from planners.cli import main as planners_main
from worldmodels.data.adapters import export_d4rl
from worldmodels.data.cli import plot_returns, render
from worldmodels.data.store import EpisodeStore
from worldmodels.encoders.conv_ae import ConvAEEncoder
from worldmodels.evaluate_rollouts import write_plot, write_videos


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o666 & ~0o027
    os.umask(old)


def test_every_writer_gives_plain_modes_and_fsyncs_the_directory(wall_data, tmp_path, umask_027, monkeypatch):
    synced: list[Path] = []
    real_fsync_dir = worldmodels.io.fsync_dir

    def spy(directory):
        synced.append(Path(directory).resolve())
        real_fsync_dir(directory)

    monkeypatch.setattr(worldmodels.io, "fsync_dir", spy)
    store = EpisodeStore.open(wall_data)
    written = [
        export_d4rl(store, tmp_path / "d4rl.hdf5"),
        render(str(wall_data), 0, str(tmp_path / "ep.gif")),
    ]
    written.append(plot_returns(str(wall_data), str(tmp_path / "returns.png")))
    ConvAEEncoder(embed_dim=8, width=8).save_pretrained(tmp_path / "enc")
    written += [tmp_path / "enc" / "model.safetensors", tmp_path / "enc" / "config.json"]
    result = {"frameskip": 1, "per_step": [{"step": 1, "video_psnr": 20.0, "copy_last_psnr": 19.0}]}
    write_plot(tmp_path / "rollouts.png", result)
    write_videos(tmp_path / "videos", torch.rand(1, 2, 3, 8, 8), torch.rand(1, 2, 3, 8, 8), {})
    written += [tmp_path / "rollouts.png", tmp_path / "videos" / "episode_000.mp4"]
    args = ["eval", "--model", "oracle", "--env", "worldmodels/Wall-v0", "--pairs", "1", "--samples", "8", "--topk",
            "2", "--iters", "1", "--horizon", "1", "--no-progress", "--out", str(tmp_path / "eval")]  # fmt: skip
    assert planners_main(args) == 0
    written += [tmp_path / "eval" / name for name in ("results.json", "plot.png", "pair_000.mp4")]
    for path in map(Path, written):
        assert stat.S_IMODE(path.stat().st_mode) == umask_027, f"{path}: mode {oct(path.stat().st_mode)}"
        assert path.parent.resolve() in synced, f"{path.parent} was not fsync'd after {path.name} was renamed"
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert not leftovers
