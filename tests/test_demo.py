"""The demo's stage commands (no stage is run: ``_run`` is replaced by a recorder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from worldmodels import demo


@pytest.mark.parametrize("encoder", ["conv_ae", "state_ae"])
def test_encoder_choice_reaches_pretraining_and_fit(tmp_path, monkeypatch, encoder):
    calls: list[list[str]] = []

    def record(argv, module):
        calls.append(argv)
        if argv[:2] == ["planners", "eval"]:  # the plan stage reads the results it wrote
            out = tmp_path / "o" / "plan"
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps({"success_rate": 0.5}))

    monkeypatch.setattr(demo, "_run", record)
    args = ["--out", str(tmp_path / "o"), "--stages", "encoder,fit,plan", "--encoder", encoder]
    assert demo.main(args) == 0
    pretrain, fit, plan = calls
    assert pretrain[pretrain.index("--encoder") + 1] == encoder
    assert fit[fit.index("--model.encoder") + 1] == encoder
    assert fit[fit.index("--model.encoder_path") + 1] == str(tmp_path / "o" / "encoder")
    assert plan[:2] == ["planners", "eval"]


def test_unknown_encoder_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        demo.main(["--out", str(tmp_path / "o"), "--encoder", "dinov2"])


def test_defaults_are_the_measured_recipe(tmp_path, monkeypatch):
    """Without options: state_ae with 4 x 4 tokens, the demo config, MPC+iCEM with env-time noise."""
    calls: list[list[str]] = []

    def record(argv, module):
        calls.append(argv)
        if argv[:2] == ["planners", "eval"]:
            out = tmp_path / "o" / "plan"
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps({"success_rate": 0.8}))

    monkeypatch.setattr(demo, "_run", record)
    assert demo.main(["--out", str(tmp_path / "o"), "--stages", "encoder,fit,plan"]) == 0
    pretrain, fit, plan = calls
    assert pretrain[pretrain.index("--encoder") + 1] == "state_ae"
    assert pretrain[pretrain.index("--num-down") + 1] == "4"
    assert fit[fit.index("-c") + 1].endswith("configs/latent/wall_demo.yaml")
    assert plan[plan.index("--planner") + 1] == "icem" and plan[plan.index("--substeps") + 1] == "5"
    config = yaml.safe_load(Path(fit[fit.index("-c") + 1]).read_text())
    trainer = config["trainer"]
    assert trainer["max_epochs"] == 4 and trainer["max_steps"] == -1 and trainer["max_time"] == "00:00:12:00"
    assert config["model"]["init_args"]["rollout_passes"] == 2
    assert config["model"]["init_args"]["lr_schedule"] == "cosine_time"
