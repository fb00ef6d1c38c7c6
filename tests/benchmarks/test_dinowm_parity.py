"""benchmarks/dinowm_parity.py: its analytic FLOP counts match what PyTorch executes, and it runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from worldmodels.models.latent_world_model import LatentState

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "dinowm_parity.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dinowm_parity", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dinowm_parity"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def counted(fn) -> int:
    """FLOPs PyTorch executes (attention through the math backend, whose matmuls the counter sees; it does
    not count the CPU's fused attention kernels)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        fn()
    return counter.get_total_flops()


def test_analytic_flops_match_the_flop_counter(bench):
    s = bench.Shapes(patches=4, visual_dim=12, depth=2, heads=2, head_dim=4, mlp_dim=16, hist=3, horizon=4)
    g = torch.Generator().manual_seed(0)
    vis = torch.randn(1, s.hist, s.patches, s.visual_dim, generator=g)
    prop = torch.randn(1, s.hist, s.proprio_dim, generator=g)
    past = torch.randn(1, s.hist - 1, s.action_dim, generator=g)
    actions = torch.randn(5, s.horizon, s.action_dim, generator=g)
    dw = bench.DinoWMPredictor(s).eval()
    z = dw.tokens(vis, prop, torch.cat([past, actions[:1, :1]], 1))
    # the embeddings are counted per predict; the forward itself exactly
    emb = 2 * s.hist * (s.proprio_dim + s.action_dim) * s.emb_dim
    assert counted(lambda: dw.predict(z)) == bench.dinowm_forward_flops(1, s.hist, s) - emb
    rollout = counted(lambda: dw.rollout(vis, prop, past, actions))
    assert rollout == pytest.approx(bench.dinowm_rollout_flops(5, s), rel=0.01)
    ours = bench.our_model(s).eval()
    state = LatentState(vis, prop, past)
    assert counted(lambda: ours.rollout(state, actions)) == pytest.approx(
        bench.ours_rollout_flops(5, s), rel=0.01
    )
    assert counted(lambda: ours.predictor(vis, prop, torch.cat([past, actions[:1, :1]], 1))) == pytest.approx(
        bench.ours_forward_flops(1, s.hist, 0, s), rel=0.01
    )


def test_small_profile_runs_and_writes_the_table(bench, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench.main(["--scale", "small", "--reps", "1", "--samples", "4", "--batch", "2", "--matmul-size", "256",
                       "--out", str(out)]) == 0  # fmt: skip
    res = json.loads(out.read_text())
    assert {(r["task"], r["side"]) for r in res["rows"]} == {
        ("train", "dinowm"),
        ("train", "ours"),
        ("cem", "dinowm"),
        ("cem", "ours"),
    }
    assert all(r["median_s"] > 0 and r["pct_of_peak"] > 0 for r in res["rows"])
    assert res["matmul_peak_gflop_s"]["1_thread"] > 0 and "flags" in res["machine"]
    assert "| CEM plan, 4 x 2, horizon 5, fp32 |" in capsys.readouterr().out
