"""Runs notebooks/zero_shot_planning.ipynb end to end with smoke parameters (the CI end-to-end check):
collect a small Wall dataset, pre-train the encoder, fit briefly, plan with MPC+CEM, embed the video."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "zero_shot_planning.ipynb"


def _with_parameters(nb, **params):
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
    return nb


@pytest.mark.slow
@pytest.mark.e2e
def test_notebook_plans_to_a_goal_and_shows_the_video(tmp_path, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    nb = _with_parameters(
        nbformat.read(NOTEBOOK, as_version=4),
        out=str(tmp_path / "nb"),
        episodes=40,
        fit_args="--trainer.max_epochs 1 --trainer.limit_val_batches 2",
        encoder_args="--steps 50",
        pairs=1,
    )
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "MPC+CEM success rate on 1 pairs:" in text
    html = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.get("data", {})]
    assert any("<video" in o["data"]["text/html"] and "base64" in o["data"]["text/html"] for o in html)
    results = json.loads((tmp_path / "nb" / "plan" / "results.json").read_text())
    assert len(results["pairs"]) == 1
