"""``worldmodels data`` CLI smoke tests: collect, info, render, export, import (in process, real Wall env)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from worldmodels.data.cli import main
from worldmodels.data.store import EpisodeStore


def test_collect_info_render_export_import(tmp_path, capsys):
    out = tmp_path / "wall"
    assert main(["collect", "--env", "worldmodels/Wall-v0", "--policy", "random", "--episodes", "2", "--out", str(out),
                 "--img-size", "32", "--seed", "7"]) == 0  # fmt: skip
    assert "2 episodes, 100 steps" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 2 and info["steps"] == 100 and info["env_id"] == "worldmodels/Wall-v0"
    assert info["keys"]["pixels"] == [32, 32, 3, "uint8"] and info["behaviour_policy"] == "random"
    assert set(info["return"]) == {"min", "mean", "max"} and info["size_on_disk_mb"] > 0
    video = tmp_path / "ep.mp4"
    assert main(["render", str(out), "--episode", "1", "--out", str(video), "--fps", "5"]) == 0
    frames = iio.imread(video)
    assert frames.shape[0] == 51 and frames.shape[-1] == 3
    gif = tmp_path / "ep.gif"
    assert main(["render", str(out), "--episode", "0", "--out", str(gif)]) == 0
    assert iio.imread(gif).shape[0] == 51
    assert main(["export", str(out), "--format", "d4rl", "--out", str(tmp_path / "w.hdf5")]) == 0
    assert (
        main(["import", str(tmp_path / "w.hdf5"), "--format", "d4rl", "--out", str(tmp_path / "back")]) == 0
    )
    assert main(["export", str(out), "--format", "minari", "--out", str(tmp_path / "m")]) == 0
    assert main(["import", "worldmodels/wall-v0", "--format", "minari", "--out", str(tmp_path / "mback"),
                 "--minari-root", str(tmp_path / "m")]) == 0  # fmt: skip
    src = EpisodeStore.open(out)
    for back in (EpisodeStore.open(tmp_path / "back"), EpisodeStore.open(tmp_path / "mback")):
        np.testing.assert_array_equal(back.read(1, "pixels"), src.read(1, "pixels"))


def test_render_without_pixels_errors(make_store, tmp_path):
    store = make_store([3], pixels=False)
    with pytest.raises(ValueError, match="key 'pixels' is not in the dataset"):
        main(["render", str(store.root), "--out", str(tmp_path / "x.mp4")])


def test_bad_arguments_exit(tmp_path):
    with pytest.raises(SystemExit):
        main(["collect", "--env", "worldmodels/Wall-v0"])
    with pytest.raises(FileNotFoundError, match=r"manifest\.json"):
        main(["info", str(tmp_path / "none")])
