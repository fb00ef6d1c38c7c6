"""experiments/rollout_error/rollout_error.py on a tiny random Wall model: the error table's numbers land
in ``--out``, one entry per model, with the probe's shapes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "planners"))
from planners_testing import tiny_wall_latent_model


@pytest.fixture(scope="module")
def rollout(experiment):
    return experiment("rollout_error", "rollout_error")


def test_errors_of_a_saved_model_are_written(rollout, tmp_path):
    model_dir = tmp_path / "model"
    tiny_wall_latent_model().save_pretrained(model_dir)
    out = tmp_path / "err.json"
    assert rollout.main([str(model_dir), "--starts", "2", "--horizon", "2", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert (saved["starts"], saved["horizon"]) == (2, 2)
    row = saved["models"][str(model_dir)]
    assert len(row["mean_error_per_step"]) == 2 and row["final_mean"] > 0  # an untrained model errs
    assert 0.0 <= row["wall_push_leak_rate"] <= 1.0 and row["wall_push_final_mean"] >= 0.0
