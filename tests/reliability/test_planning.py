"""``planners eval`` with a broken model directory, a model that does not fit the env, bad flag values, and a
user's own env (issue 18, cases 5, 7 and 9): one line naming the file, field or flag, nothing written; an
env outside the package that keeps the contract is planned with, its budget read from the env."""

from __future__ import annotations

import json
import shutil

import pytest
from reliability_testing import error_line, run_main, snapshot, tiny_latent_model
from safetensors.torch import load_file, save_file

from planners.cli import main as planners_main

EVAL = ["eval", "--planner", "cem", "--pairs", "1", "--samples", "4", "--topk", "2", "--iters", "1", "--horizon", "1",
        "--no-progress", "--videos", "0"]  # fmt: skip
WALL = "worldmodels/Wall-v0"


@pytest.fixture(scope="module")
def wall_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("models") / "wall"
    tiny_latent_model(env_id=WALL).save_pretrained(d)
    return d


def _config(edit):
    def apply(d):
        cfg = json.loads((d / "config.json").read_text())
        edit(cfg)
        (d / "config.json").write_text(json.dumps(cfg))

    return apply


def _truncate(d):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])


def _drop_tensor(d):
    tensors = load_file(d / "model.safetensors")
    del tensors["predictor.action_emb.weight"]
    save_file(tensors, d / "model.safetensors")


def _set(key, value):
    return _config(lambda c: c.update({key: value}))


BROKEN = {
    "truncated-weights": (_truncate, "model.safetensors: not a readable safetensors file"),
    "missing-tensor": (_drop_tensor, "model.safetensors: tensor 'predictor.action_emb.weight' is missing"),
    "wider-predictor": (
        _config(lambda c: c["predictor"].update(width=32)),
        "model.safetensors: tensor 'predictor.time_pos' has shape (4, 1, 16), the architecture in config.json expects",
    ),
    "extra-field": (_set("bogus", 1), "config.json: unknown field 'bogus' for LatentWorldModel"),
    "missing-field": (_config(lambda c: c.pop("encoder")), "config.json: field 'encoder' is missing"),
    "mistyped-field": (_set("frameskip", "abc"), "config.json: field 'frameskip' is 'abc', expected int"),
    "wrong-frameskip": (
        _set("frameskip", 3),
        "config.json: predictor.action_dim=10 is not a multiple of frameskip=3",
    ),
    "wrong-frameskip-divisor": (
        _set("frameskip", 2),
        "config.json: env_action_low has 2 values, predictor.action_dim=10",
    ),
    "wrong-img-size": (_set("img_size", 32), "config.json: img_size=32 gives 16 patches with the encoder"),
    "predictor-typo": (
        _config(lambda c: c["predictor"].update(widht=3)),
        "config.json: unknown field 'predictor.widht'",
    ),
    "not-json": (lambda d: (d / "config.json").write_text("{"), "config.json: not valid JSON"),
    "unknown-type": (_set("type", "Nope"), "config.json: type 'Nope' is not known"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_model_directory_is_one_line_naming_file_and_field(case, wall_model, tmp_path, capsys):
    edit, message = BROKEN[case]
    d = tmp_path / "model"
    shutil.copytree(wall_model, d)
    edit(d)
    before = snapshot(d)
    code, err = run_main(
        planners_main, [*EVAL, "--model", str(d), "--env", WALL, "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2
    assert f"{d}/{message}" in error_line(err, "planners eval: error: ")
    assert snapshot(d) == before and not (tmp_path / "o").exists()


def test_a_model_is_checked_against_the_evaluation_env_before_planning(wall_model, tmp_path, capsys):
    """A Wall model (2-dim actions, 2-dim proprio) on PointMaze (2-dim actions, 4-dim proprio)."""
    args = [
        *EVAL,
        "--model",
        str(wall_model),
        "--env",
        "worldmodels/PointMazeUMaze-v0",
        "--out",
        str(tmp_path / "o"),
    ]
    code, err = run_main(planners_main, args, capsys)
    assert code == 2
    line = error_line(err, "planners eval: error: ")
    assert line.endswith(
        f"{wall_model}: trained on {WALL}, its sizes do not fit --env worldmodels/PointMazeUMaze-v0 "
        "(proprio 2 vs 4; model vs env)"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget", "0"], "budget=0 must be >= 1"),
        (["--budget", "-5"], "budget=-5 must be >= 1"),
        (["--threads", "-1"], "argument --threads: -1 must be >= 1"),
        (["--threads", "0"], "argument --threads: 0 must be >= 1"),
        (["--pairs", "0"], "pairs=0 must be >= 1"),
        (["--horizon", "0"], "horizon=0 must be >= 1"),
        (["--workers", "0"], "workers=0 must be >= 1"),
        (["--chunk-size", "0"], "chunk_size=0 must be >= 1"),
        (["--videos", "-1"], "videos=-1 must be >= 0"),
    ],
)
def test_bad_flag_values_are_one_line(flags, message, tmp_path, capsys):
    code, err = run_main(
        planners_main,
        [*EVAL, "--model", "oracle", "--env", WALL, "--out", str(tmp_path / "o"), *flags],
        capsys,
    )
    assert code == 2
    assert message in error_line(err, "planners eval: error: ")
    assert not (tmp_path / "o").exists()


def test_a_users_own_env_is_planned_with_its_own_budget(tmp_path, capsys):
    """``module:id`` from outside the package; ``planning_budget`` (12) read from the env class."""
    env_id = "reliability_envs:reliability/Dot-v0"
    model = tmp_path / "dot_model"
    tiny_latent_model(frameskip=1, env_id=env_id).save_pretrained(model)
    code, err = run_main(
        planners_main, [*EVAL, "--model", str(model), "--env", env_id, "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0, err[-2000:]
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["config"]["env_id"] == env_id and saved["config"]["budget"] == 12
    assert len(saved["pairs"]) == 1


def test_a_users_env_without_the_contracts_budget_is_named(tmp_path, capsys):
    model = tmp_path / "dot_model"
    tiny_latent_model(frameskip=1).save_pretrained(model)
    env_id = "reliability_envs:reliability/NoBudgetDot-v0"
    code, err = run_main(planners_main, [*EVAL, "--model", str(model), "--env", env_id], capsys)
    assert code == 2
    assert f"env_id={env_id!r}: the env has no planning_budget" in error_line(err, "planners eval: error: ")
    code, err = run_main(
        planners_main, [*EVAL, "--model", str(model), "--env", env_id, "--budget", "5"], capsys
    )
    assert code == 0, err[-2000:]


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        (
            "nosuchmodule:reliability/Dot-v0",
            "env_id='nosuchmodule:reliability/Dot-v0': cannot import module 'nosuchmodule'",
        ),
        ("worldmodels/Nope-v0", "env_id='worldmodels/Nope-v0' is not registered"),
    ],
)
def test_an_unknown_env_is_one_line(env_id, message, wall_model, capsys):
    code, err = run_main(planners_main, [*EVAL, "--model", str(wall_model), "--env", env_id], capsys)
    assert code == 2
    assert message in error_line(err, "planners eval: error: ")


def test_planning_budget_reads_the_env_itself():
    from worldmodels.envs import planning_budget

    assert planning_budget("reliability_envs:reliability/Dot-v0") == 12
    assert planning_budget("worldmodels/PointMazeUMaze-v0") == 150


def test_the_module_env_form_works_in_every_command_that_takes_an_env(tmp_path, capsys):
    """``data collect`` and ``envs rollout`` (``planners eval``: above) with ``module:id``."""
    from worldmodels.cli import main as wm
    from worldmodels.data.store import EpisodeStore

    env_id = "reliability_envs:reliability/Dot-v0"
    args = [
        "data",
        "collect",
        "--env",
        env_id,
        "--policy",
        "noisy-expert",
        "--episodes",
        "2",
        "--out",
        str(tmp_path / "d"),
    ]
    code, err = run_main(wm, args, capsys)
    assert code == 0, err[-2000:]
    assert EpisodeStore.open(tmp_path / "d").env_id == env_id
    code, err = run_main(wm, ["envs", "rollout", "--env", env_id, "--out", str(tmp_path / "v")], capsys)
    assert code == 0, err[-2000:]
    assert (tmp_path / "v" / "Dot-v0.mp4").stat().st_size > 0
