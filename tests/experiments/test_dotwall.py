"""experiments/dotwall/dotwall_cem.py: our re-implementation of DINO-WM's DotWall rules, checked against
transitions worked out by hand from the rules, and the experiment's run end to end on a few pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def dw(experiment):
    return experiment("dotwall", "dotwall_cem")


@pytest.mark.parametrize(
    ("start", "action", "expected"),
    [
        ((20.0, 10.0), (1.0, 0.0), (22.0, 10.0)),  # free: moves by twice the action
        ((28.0, 10.0), (1.0, 1.0), (28.5, 11.5)),  # into the left face at y=11: back 0.5 in x, +0.5 in y
        ((27.0, 30.0), (4.0, 0.0), (35.0, 30.0)),  # straight through the door
        ((30.0, 30.0), (0.0, -3.0), (30.5, 26.5)),  # inside the door, down across its bottom edge
        ((30.0, 30.0), (0.0, 3.0), (30.5, 33.5)),  # ... and up across its top edge
        ((40.0, 10.0), (-3.0, 1.5), (35.5, 13.0)),  # into the right face at y=12.5, from the right
        ((10.0, 5.0), (0.0, -1.0), (10.5, 4.5)),  # into the top border
        ((58.0, 40.0), (2.0, 0.0), (59.5, 40.5)),  # into the right border
    ],
)
def test_dotwall_step_matches_hand_worked_transitions(dw, start, action, expected):
    out = dw.dotwall_step(
        torch.tensor([start], dtype=torch.float64), torch.tensor([action], dtype=torch.float64)
    )
    torch.testing.assert_close(out[0], torch.tensor(expected, dtype=torch.float64))


def test_dotwall_step_is_batched_row_by_row(dw):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(64, 2, generator=g, dtype=torch.float64) * 48 + 8
    a = torch.randn(64, 2, generator=g, dtype=torch.float64) * 2
    batched = dw.dotwall_step(p, a)
    single = torch.cat([dw.dotwall_step(p[i : i + 1], a[i : i + 1]) for i in range(64)])
    torch.testing.assert_close(batched, single)
    assert torch.isfinite(batched).all()


def test_dotwall_pairs_are_on_opposite_sides_within_dinowm_padding(dw):
    sides = set()
    for seed in range(200):
        start, goal = dw.dotwall_pair(seed)
        assert np.sign(start[0] - dw.DW_WALL_X) == -np.sign(goal[0] - dw.DW_WALL_X)
        for p in (start, goal):
            assert 7.4 - 1e-9 <= p[1] <= 56.6 + 1e-9
            assert 7.4 - 1e-9 <= p[0] <= 25.6 + 1e-9 or 38.4 - 1e-9 <= p[0] <= 56.6 + 1e-9
        sides.add(bool(start[0] < dw.DW_WALL_X))
        np.testing.assert_array_equal(dw.dotwall_pair(seed)[0], start)  # deterministic in the seed
    assert sides == {True, False}  # both travel directions occur


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_experiment_runs_both_worlds_and_resumes(dw, tmp_path):
    """One summary line per row and world in ``--out``; the pairs' first successful steps under ``--runs``."""
    out, runs = tmp_path / "dw.jsonl", tmp_path / "runs"
    args = ["--pairs", "3", "--workers", "1", "--out", str(out), "--runs", str(runs)]
    assert dw.main([*args, "--only", "readme"]) == 0
    rows = read_rows(out)
    assert [(r["world"], r["name"]) for r in rows] == [("wall", "readme"), ("dotwall", "readme")]
    for r in rows:
        assert "first_success_step" not in r
        full = json.loads((runs / f"{r['world']}_readme_pairs3_budget250.json").read_text())
        assert len(full["first_success_step"]) == 3
        hits = [h for h in full["first_success_step"] if h is not None]
        assert all(1 <= h <= 250 for h in hits)
        assert r["success"]["250"]["rate"] == full["success"]["250"]["rate"] == len(hits) / 3
        assert r["success"]["50"]["rate"] <= r["success"]["250"]["rate"]
    # a second row keeps the first one's results
    assert dw.main([*args, "--only", "icem_sub5", "--worlds", "dotwall"]) == 0
    names = [(r["world"], r["name"]) for r in read_rows(out)]
    assert names == [("wall", "readme"), ("dotwall", "readme"), ("dotwall", "icem_sub5")]


def test_experiment_rejects_unknown_rows_worlds_and_budgets(dw, capsys):
    with pytest.raises(SystemExit):
        dw.main(["--only", "nope"])
    assert "unknown rows ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dw.main(["--worlds", "maze"])
    assert "unknown worlds ['maze']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dw.main(["--budget", "52"])
    assert "--budget 52: must be a multiple of 5" in capsys.readouterr().err
