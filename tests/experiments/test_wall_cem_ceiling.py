"""experiments/wall_cem_ceiling/wall_cem_ceiling.py end to end on two pairs: the summary line per row, the
per-pair results under ``--runs``, and a second row merged beside the first."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def wc(experiment):
    return experiment("wall_cem_ceiling", "wall_cem_ceiling")


def test_rows_are_summarised_and_merged(wc, tmp_path):
    out, runs = tmp_path / "ceiling.jsonl", tmp_path / "runs"
    args = ["--pairs", "2", "--workers", "1", "--out", str(out), "--runs", str(runs)]
    assert wc.main([*args, "--only", "base"]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    pairs = json.loads((runs / "base" / "results.json").read_text())["pairs"]
    assert (row["name"], row["pairs"], row["seed"]) == ("base", 2, 0)
    assert row["success_rate"] == sum(p["success"] for p in pairs) / 2
    assert row["failed_pairs"] == [p["index"] for p in pairs if not p["success"]]
    assert wc.main([*args, "--only", "held"]) == 0
    assert [json.loads(line)["name"] for line in out.read_text().splitlines()] == ["base", "held"]


def test_unknown_rows_are_refused(wc, capsys):
    with pytest.raises(SystemExit):
        wc.main(["--only", "nope"])
    assert "unknown rows ['nope']" in capsys.readouterr().err
