"""The goal-reaching harness on worldmodels/Wall-v0 with an oracle model (exact Wall dynamics), a tiny
real LatentWorldModel, and the ``planners eval`` CLI."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from planners_testing import tiny_wall_latent_model

import planners.cli
from planners.cli import main
from planners.evaluate import EvalOptions, evaluate, wilson_interval
from worldmodels.envs.wall import SUCCESS_DISTANCE
from worldmodels.models.oracle import WallOracleModel

ENV = "worldmodels/Wall-v0"
SMALL_CEM = {"samples": 100, "topk": 10, "iterations": 5}


def test_wilson_interval_matches_textbook_values():
    lo, hi = wilson_interval(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mpc_with_an_oracle_model_writes_results_videos_and_plot(tmp_path):
    options = EvalOptions(pairs=2, seed=0, mpc=True, out=tmp_path, planner_kwargs=SMALL_CEM, progress=False)
    res = evaluate(WallOracleModel(), ENV, "cem", options)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["success_rate"] == res.success_rate == sum(p["success"] for p in saved["pairs"]) / 2
    assert res.success_rate > 0  # a perfect model + MPC reaches these goals (both, at this seed)
    assert saved["config"]["mpc"] and saved["config"]["budget"] == 50 and saved["config"]["frameskip"] == 5
    lo, hi = saved["ci95"]
    assert lo <= res.success_rate <= hi
    for p in res.pairs:
        # Wall's proprio is the position: success <=> final distance below the success radius
        assert p.success == (p.final_distance < SUCCESS_DISTANCE)
        assert p.env_steps <= 50 and p.plan_calls == -(-p.env_steps // 5)  # one re-plan per model step
        assert p.plan_time > 0 and len(p.costs) == SMALL_CEM["iterations"]
        frames = np.stack(imageio.mimread(tmp_path / p.video, memtest=False))
        # one frame per env step plus the start; panels real | imagined | goal side by side
        assert frames.shape[0] == p.env_steps + 1 and frames.shape[2] == 3 * frames.shape[1]
    assert (tmp_path / "plot.png").stat().st_size > 0
    assert not list(tmp_path.glob("*.tmp*"))


def test_open_loop_plans_once_and_executes_the_horizon():
    options = EvalOptions(
        pairs=2, seed=3, horizon=3, planner_kwargs={"samples": 50, "iterations": 2}, progress=False
    )
    res = evaluate(WallOracleModel(), ENV, "mppi", options)
    for p in res.pairs:
        assert p.plan_calls == 1
        assert p.env_steps == 15 or p.success  # 3 model steps x frameskip 5, unless the goal came first
    assert res.out is None and res.pairs[0].video is None


def test_evaluate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="planner='nope'"):
        evaluate(WallOracleModel(), ENV, "nope")
    with pytest.raises(ValueError, match="env_id"):
        evaluate(WallOracleModel(), "worldmodels/Nope-v0", "cem")
    for bad, message in [
        ({"pairs": 0}, "pairs=0 must be >= 1"),
        ({"workers": 0}, "workers=0 must be >= 1"),
        ({"execute": 0}, "execute=0 must be >= 1"),
        ({"chunk_size": 0}, "chunk_size=0 must be >= 1, 'auto' or None"),
        ({"videos": -1}, "videos=-1 must be >= 0 or None"),
        ({"objective_mode": "first"}, "objective_mode='first'"),
        ({"env_kwargs": {"img_size": 32}}, r"env_kwargs: \['img_size'\] are set by the evaluation"),
        ({"amp": "int8"}, "amp='int8'"),
    ]:
        with pytest.raises(ValueError, match=message):
            EvalOptions(**bad)


@pytest.mark.parametrize("planner", ["cem", "gd"])
def test_harness_runs_the_real_latent_model_with_history(tmp_path, planner):
    """Integration with LatentWorldModel: pixels in, history with past actions, decoded imagined frames."""
    kwargs = {"cem": {"samples": 16, "topk": 4, "iterations": 2}, "gd": {"steps": 2, "restarts": 2}}[planner]
    options = EvalOptions(pairs=1, seed=0, mpc=True, out=tmp_path, horizon=2, execute=1, planner_kwargs=kwargs,
                          chunk_size=8, budget=10, progress=False)  # fmt: skip
    res = evaluate(tiny_wall_latent_model(), ENV, planner, options)
    p = res.pairs[0]
    assert p.plan_calls == 2 or p.success  # 10 env steps / frameskip 5
    frames = np.stack(imageio.mimread(tmp_path / p.video, memtest=False))
    assert frames.shape[2] == 3 * frames.shape[1]  # the model decodes, so the imagined panel is there


def test_cli_eval_runs_and_prints_the_success_rate(tmp_path, monkeypatch, capsys):
    model_dir = tmp_path / "model"
    tiny_wall_latent_model().save_pretrained(model_dir)
    out = tmp_path / "eval"
    code = main(["eval", "--model", str(model_dir), "--env", ENV, "--planner", "cem", "--mpc", "--pairs", "1",
                 "--samples", "8", "--topk", "2", "--iters", "1", "--horizon", "2", "--budget", "10", "--out", str(out),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "MPC+CEM on worldmodels/Wall-v0: success rate" in text and "95% CI" in text
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["planner_kwargs"] == {"samples": 8, "topk": 2, "iterations": 1}
    assert saved["config"]["budget"] == 10 and saved["pairs"][0]["env_steps"] <= 10
    assert len(saved["pairs"]) == 1 and (out / "pair_000.mp4").exists()


def test_cli_reports_a_missing_model(tmp_path, capsys):
    assert main(["eval", "--model", str(tmp_path / "none"), "--env", ENV]) == 2
    assert "none: no such model directory" in capsys.readouterr().err


def test_cli_oracle_model_plans_with_the_exact_dynamics(tmp_path, capsys):
    args = ["eval", "--model", "oracle", "--planner", "icem", "--mpc", "--execute", "2", "--pairs", "2",
            "--samples", "100", "--topk", "10", "--iters", "5", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main([*args, "--env", ENV]) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["success_rate"] == 1.0  # exact dynamics: both pairs (seed 0, 1) reach their goal
    capsys.readouterr()
    assert main([*args, "--env", "worldmodels/Reacher-v0"]) == 2
    assert "--model oracle: no oracle model for --env worldmodels/Reacher-v0" in capsys.readouterr().err


def test_cli_planner_kwargs_only_pass_given_flags():
    args = planners.cli._parser().parse_args(
        ["eval", "--model", "m", "--env", ENV, "--planner", "gd", "--iters", "7"]
    )
    assert planners.cli.planner_kwargs("gd", args) == {"steps": 7}
    args = planners.cli._parser().parse_args(["eval", "--model", "m", "--env", ENV, "--temperature", "0.2"])
    assert planners.cli.planner_kwargs("mppi", args) == {"temperature": 0.2}
    assert planners.cli.planner_kwargs("cem", args) == {}
    args = planners.cli._parser().parse_args(
        ["eval", "--model", "m", "--env", ENV, "--beta", "2", "--substeps", "5"]
    )
    assert planners.cli.planner_kwargs("icem", args) == {"beta": 2.0, "substeps": 5}
    assert planners.cli.planner_kwargs("mppi", args) == {"noise_beta": 2.0, "substeps": 5}
    assert planners.cli.planner_kwargs("cem", args) == {"beta": 2.0, "substeps": 5}
    args = planners.cli._parser().parse_args(
        ["eval", "--model", "m", "--env", ENV, "--return-best", "--refit-unclamped"]
    )
    assert planners.cli.planner_kwargs("cem", args) == {"return_best": True, "refit_unclamped": True}
    for other in ("icem", "mppi", "gd"):
        with pytest.raises(
            ValueError, match=f"--return-best, --refit-unclamped: only for --planner cem, not {other}"
        ):
            planners.cli.planner_kwargs(other, args)


def test_workers_give_the_same_results_and_a_rerun_resumes(tmp_path):
    """Pairs evaluated in 2 worker processes equal the sequential run (pair i always uses seed + i); with
    ``out``, a re-run (here extended from 2 to 3 pairs) reuses the saved pairs and evaluates only the rest."""

    def options(**kw) -> EvalOptions:
        return EvalOptions(planner_kwargs={"samples": 40, "topk": 5, "iterations": 2}, mpc=True, horizon=3,
                           progress=False, videos=0, **kw)  # fmt: skip

    seq = evaluate(WallOracleModel(), ENV, "cem", options(pairs=3, seed=5))
    out = tmp_path / "eval"
    first = evaluate(WallOracleModel(), ENV, "cem", options(pairs=2, seed=5, out=out))
    saved = {p.name: p.stat().st_mtime_ns for p in (out / "pairs").glob("pair_*.json")}
    assert sorted(saved) == ["pair_000.json", "pair_001.json"]
    par = evaluate(WallOracleModel(), ENV, "cem", options(pairs=3, seed=5, out=out, workers=2))
    key = [(p.success, p.env_steps, round(p.final_distance, 9), p.costs) for p in seq.pairs]
    assert [(p.success, p.env_steps, round(p.final_distance, 9), p.costs) for p in par.pairs] == key
    assert [p.index for p in par.pairs] == [0, 1, 2] and first.pairs == par.pairs[:2]
    for name, mtime in saved.items():  # reused, not re-evaluated
        assert (out / "pairs" / name).stat().st_mtime_ns == mtime
    other = evaluate(WallOracleModel(), ENV, "cem", options(pairs=1, seed=6, out=out))  # another config
    assert (
        other.pairs[0].index == 0
        and (out / "pairs" / "pair_000.json").stat().st_mtime_ns != saved["pair_000.json"]
    )


def test_saved_pairs_are_not_reused_for_other_weights(tmp_path):
    from planners.evaluate.pool import fingerprint

    a, b = tiny_wall_latent_model(), tiny_wall_latent_model()
    assert fingerprint(a) == fingerprint(b)
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    assert fingerprint(a) != fingerprint(b)


def test_env_variants_are_recorded(tmp_path):
    options = EvalOptions(pairs=1, mpc=True, execute=2, planner_kwargs=SMALL_CEM, env_kwargs={"max_step": 5.0},
                          progress=False)  # fmt: skip
    res = evaluate(WallOracleModel(max_step=5.0), ENV, "cem", options)
    assert res.config["env_kwargs"] == {"max_step": 5.0}
    options = EvalOptions(pairs=1, planner_kwargs=SMALL_CEM, horizon=1, progress=False)
    assert "env_kwargs" not in evaluate(WallOracleModel(), ENV, "cem", options).config


def test_cli_flags_build_the_python_api_options():
    """``planners eval``'s flags and defaults are :class:`EvalOptions`'s."""
    args = planners.cli._parser().parse_args(["eval", "--model", "m", "--env", ENV])
    assert planners.cli.eval_options(args) == EvalOptions()
    args = planners.cli._parser().parse_args(
        ["eval", "--model", "m", "--env", ENV, "--mpc", "--pairs", "7", "--seed", "3", "--execute", "2",
         "--objective", "all", "--budget", "40", "--videos", "0", "--no-progress", "--workers", "2",
         "--samples", "10", "--out", "o"]
    )  # fmt: skip
    assert planners.cli.eval_options(args) == EvalOptions(
        pairs=7, seed=3, mpc=True, out="o", execute=2, planner_kwargs={"samples": 10}, objective_mode="all",
        budget=40, videos=0, progress=False, workers=2,
    )  # fmt: skip
