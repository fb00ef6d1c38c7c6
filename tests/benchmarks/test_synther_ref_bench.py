"""benchmarks/synther_ref_bench.py: its code path runs at tiny sizes without the reference, its import shim
loads a reference-shaped checkout with the decoration modules missing, and (when ``SYNTHER_REF_SRC`` names a
checkout of conglu1997/SynthER) it times the reference beside ours."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "synther_ref_bench.py"
TINY = ["--width", "16", "--blocks", "1", "--batch", "8", "--reps", "2", "--warmup", "1", "--eval-batch", "8",
        "--eval-reps", "2", "--sampler-steps", "2", "--sampler-batch", "4", "--sampler-reps", "1"]  # fmt: skip


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("synther_ref_bench", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def clean_modules():
    """Drop the modules a test imported (stubs, a fake ``synther`` package) afterwards."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_runs_without_the_reference(bench, tmp_path):
    out = tmp_path / "r.json"
    result = bench.main([*TINY, "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["reference_src"] is None and saved["stubbed"] == []
    for part in ("train_step", "network_eval", "sampler"):
        assert list(saved[part]["median_s"]) == ["ours"]
        assert saved[part]["ours_over_reference"] == {}
        assert all(t > 0 for t in saved[part]["times_s"]["ours"])
    assert len(saved["train_step"]["times_s"]["ours"]) == 2
    assert saved["sampler"]["nfe"] == 3  # Heun, 2 steps
    assert saved["parameters"]["ours"]["parameters"] > 0
    assert "| ours |" in bench.table(result)


FAKE = {
    "denoiser_network.py": "import gin\n\n@gin.configurable\nclass ResidualMLPDenoiser:\n    pass\n",
    "elucidated_diffusion.py": (
        "import gin\nimport wandb\nfrom accelerate import Accelerator\nfrom ema_pytorch import EMA\n"
        "from redq.algos.core import ReplayBuffer\nfrom torchdiffeq import odeint\n"
        "from synther.online.utils import make_inputs_from_replay_buffer\n\n"
        "@gin.configurable\nclass ElucidatedDiffusion:\n    pass\n"
    ),
    "norm.py": "class Normalizer:\n    pass\n",
    "__init__.py": "",
}


def test_shim_loads_a_reference_checkout_with_its_decoration_missing(bench, tmp_path, clean_modules):
    diff = tmp_path / "synther" / "diffusion"
    diff.mkdir(parents=True)
    for name, text in FAKE.items():
        (diff / name).write_text(text)
    (tmp_path / "synther" / "online").mkdir()
    (tmp_path / "synther" / "online" / "utils.py").write_text("raise ImportError('needs gym, d4rl, ...')\n")
    ref = bench.load_reference(tmp_path)
    assert (
        ref["diffusion"].ElucidatedDiffusion.__name__ == "ElucidatedDiffusion"
    )  # gin.configurable: identity
    assert ref["denoiser"].ResidualMLPDenoiser.__module__ == "synther.diffusion.denoiser_network"
    assert "synther.online.utils" in ref["stubbed"]
    with pytest.raises(RuntimeError, match="stub"):
        ref["diffusion"].odeint()
    assert str(tmp_path) not in sys.path


def test_refuses_a_folder_without_the_reference(bench, tmp_path):
    with pytest.raises(ValueError, match=r"elucidated_diffusion\.py"):
        bench.load_reference(tmp_path)


@pytest.mark.skipif(
    not os.environ.get("SYNTHER_REF_SRC"), reason="SYNTHER_REF_SRC names no reference checkout"
)
def test_times_the_reference_beside_ours(bench, tmp_path, clean_modules):
    result = bench.main(
        [*TINY, "--reference-src", os.environ["SYNTHER_REF_SRC"], "--out", str(tmp_path / "r.json")]
    )
    names = ["ours", "reference (layer_norm False)", "reference (layer_norm True)"]
    assert list(result["train_step"]["median_s"]) == names
    assert set(result["train_step"]["ours_over_reference"]) == set(names[1:])
    # equal width: the reference with layer norms has our layers; ours differs only in the time embedding's
    # input (16 random frequencies -> 33 features; the reference's 16 features are 8 frequencies -> 17)
    p = {k: v["parameters"] for k, v in result["parameters"].items()}
    assert p["ours"] - p["reference (layer_norm True)"] == (33 - 17) * 128 - 8


def test_interleave_alternates_the_order_and_drops_warmup():
    from worldmodels.benchmarking import interleave

    calls = []
    times = interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert [len(v) for v in times.values()] == [3, 3] and all(t >= 0 for v in times.values() for t in v)
    with pytest.raises(ValueError, match="reps=0"):
        interleave({"a": lambda: None}, reps=0)
