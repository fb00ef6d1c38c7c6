"""benchmarks/cpu_kernels_ab.py at tiny shapes: both A/Bs run, check their arms agree and write the JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import worldmodels.models.latent_predictor as lp

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_kernels_ab.py"


def test_tiny_run_writes_both_tables(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("cpu_kernels_ab", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sdpa = lp._sdpa
    out = tmp_path / "r.json"
    args = ["--rounds", "1", "--depth", "1", "--batch", "1", "--samples", "2", "--patches", "4",
            "--visual-dim", "8", "--width", "16", "--heads", "2", "--mlp", "32", "--out", str(out)]  # fmt: skip
    assert mod.main(args) == 0
    assert lp._sdpa is sdpa  # the dropout A/B restores the predictor's attention
    res = json.loads(out.read_text())
    assert set(res["dropout"]["median_s"]) == {"torch", "ours"}
    assert [r["own_keys"] for r in res["attention"]] == [4, 12, 20]
    text = capsys.readouterr().out
    assert "| training step, dropout 0.1 |" in text and "shared history, flash + merge" in text
