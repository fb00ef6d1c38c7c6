"""`synth evaluate`: restoring observations in the simulator reproduces real transitions; noise is caught."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.cli import main as synth
from synth.data import load_transitions
from synth.evaluate import dynamics_fidelity, marginal_stats


def test_real_transitions_are_reproduced_and_perturbed_ones_are_not(cheetah_store):
    real = load_transitions(cheetah_store)
    exact = dynamics_fidelity(real, "HalfCheetah-v5", real)
    assert exact["dynamics_nmse"] < 1e-8 and exact["reward_mse"] < 1e-8 and exact["terminal_accuracy"] == 1.0
    noisy = dict(real)
    rng = np.random.default_rng(0)
    noisy["next_observations"] = real["next_observations"] + rng.normal(size=real["next_observations"].shape)
    noisy["rewards"] = real["rewards"] + 0.5
    bad = dynamics_fidelity(noisy, "HalfCheetah-v5", real)
    assert bad["dynamics_mse"] == pytest.approx(1.0, rel=0.2) and bad["reward_mse"] == pytest.approx(
        0.25, rel=1e-3
    )
    with pytest.raises(ValueError, match="restoring states from observations needs one of"):
        dynamics_fidelity(real, "Ant-v5", real)


def test_marginals_of_the_real_data_match_themselves(cheetah_store):
    real = load_transitions(cheetah_store)
    same = marginal_stats(real, real)
    assert same["mean_gap"] == 0 and same["w1"] == 0 and same["std_ratio"] == pytest.approx(1.0)
    shifted = dict(real, actions=real["actions"] + real["actions"].std(0))
    assert marginal_stats(shifted, real)["columns"]["actions[0]"]["mean_gap"] == pytest.approx(1.0, rel=1e-3)


def test_evaluate_cli_writes_report_and_plot(tiny_model, cheetah_store, tmp_path, capsys, one_torch_thread):
    rc = synth(["evaluate", "--model", str(tiny_model), "--data", str(cheetah_store), "--num", "20",
                "--out", str(tmp_path / "ev")])  # fmt: skip
    assert rc == 0
    report = json.loads((tmp_path / "ev" / "fidelity.json").read_text())
    assert report["samples"] == 20 and report["real_data_check"]["dynamics_nmse"] < 1e-8
    assert report["dynamics_nmse"] > 0 and 0 <= report["terminal_accuracy"] <= 1
    assert (tmp_path / "ev" / "marginals.png").stat().st_size > 1000
    assert '"dynamics_mse"' in capsys.readouterr().out
