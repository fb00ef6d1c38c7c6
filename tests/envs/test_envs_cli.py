"""``worldmodels envs``: list and rollout write what they promise."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import pytest

from worldmodels.cli import main as top_main
from worldmodels.envs import ENV_IDS, planning_budget
from worldmodels.envs.cli import main


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in ENV_IDS:
        assert env_id in out


def test_rollout_writes_mp4_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = top_main(
        [
            "envs",
            "rollout",
            "--env",
            "worldmodels/Wall-v0",
            "--env",
            "worldmodels/Reacher-v0",
            "--episodes",
            "2",
            "--out",
            str(tmp_path),
            "--img-size",
            "32",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    for name in ("Wall-v0", "Reacher-v0"):
        video = tmp_path / f"{name}.mp4"
        assert video.stat().st_size > 0 and name in out
        frames = imageio.mimread(video)
        assert frames[0].shape == (32, 64, 3)
        assert 2 < len(frames) <= 2 * (planning_budget(f"worldmodels/{name}") + 1)
    assert not list(tmp_path.glob("tmp*")), "no temp files left behind"


def test_rollout_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["rollout", "--env", "worldmodels/Nope-v0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["rollout", "--all", "--episodes", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["rollout", "--all", "--img-size", "33", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="env_id"):
        planning_budget("worldmodels/Nope-v0")
