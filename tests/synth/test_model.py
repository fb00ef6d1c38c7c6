"""SynthER's model: normalisation rules, bad input, sampling, and training through `worldmodels fit`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synth.data import load_transitions
from synth.model import REFERENCE_SAMPLER, SynthER, fit_normalization, flatten_transitions, parse_sampler
from worldmodels import load_pretrained


def _flat(n=50, o=3, a=2, seed=0):
    rng = np.random.default_rng(seed)
    flat = rng.normal(size=(n, 2 * o + a + 2)) * 3 + 5
    flat[:, o : o + a] = np.tanh(flat[:, o : o + a])
    flat[:, -1] = rng.random(n) < 0.2
    return flat


def test_normalization_z_scores_columns_and_leaves_terminal_raw():
    flat = _flat()
    flat[:, 1] = 7.0  # a constant observation column
    stats = fit_normalization(flat, 3, 2)
    assert stats["mean"][-1] == 0 and stats["std"][-1] == 1  # terminal: not normalised
    assert stats["constant"][1] and stats["std"][1] == 1 and not stats["constant"][0]
    model = SynthER(3, 2, denoiser={"width": 8, "blocks": 1})
    model.set_normalization(stats)
    z = model.normalize(torch.as_tensor(flat))
    assert torch.allclose(z[:, 0].mean().double(), torch.tensor(0.0, dtype=torch.float64), atol=1e-5)
    back = model.denormalize(z)
    assert torch.allclose(back[:, :-1], torch.as_tensor(flat[:, :-1]), atol=1e-4)
    assert (back[:, 1] == 7.0).all() and set(back[:, -1].tolist()) <= {0.0, 1.0}
    # whatever the model outputs, the constant column stays, actions stay in range, terminals are 0/1
    wild = torch.randn(100, flat.shape[1]) * 10
    out = model.denormalize(wild)
    assert (out[:, 1] == 7.0).all() and set(out[:, -1].tolist()) <= {0.0, 1.0}
    assert (out[:, 3:5] >= model.action_low).all() and (out[:, 3:5] <= model.action_high).all()


@pytest.mark.parametrize("value,kind", [(np.nan, "NaN"), (np.inf, "inf")])
def test_non_finite_data_is_an_error_naming_the_column(value, kind):
    flat = _flat()
    flat[4, 3 + 2 + 1 + 2] = value  # next_observations[2]
    with pytest.raises(ValueError, match=rf"column 'next_observations\[2\]' holds {kind}"):
        fit_normalization(flat, 3, 2, source="d.npz")


def test_bad_terminals_and_missing_keys():
    flat = _flat()
    flat[0, -1] = 0.5
    with pytest.raises(ValueError, match="'terminals' holds values other than 0 and 1"):
        fit_normalization(flat, 3, 2)
    with pytest.raises(ValueError, match="key 'rewards' is missing"):
        flatten_transitions({"observations": np.zeros((2, 3)), "actions": np.zeros((2, 1))}, "x")


def test_parse_sampler():
    base = SynthER(3, 2).sampler
    assert parse_sampler("reference", base) == REFERENCE_SAMPLER and REFERENCE_SAMPLER.nfe == 255
    s = parse_sampler("steps=8,solver=euler,s_churn=1.5", base)
    assert (s.steps, s.solver, s.s_churn) == (8, "euler", 1.5)
    with pytest.raises(ValueError, match="is not FIELD=VALUE"):
        parse_sampler("stepz=3", base)


def test_sample_is_reproducible_and_keyed_like_d4rl(tiny_model, one_torch_thread):
    model = load_pretrained(tiny_model)
    a = model.sample(9, generator=torch.Generator().manual_seed(3), batch_size=4)
    b = model.sample(9, generator=torch.Generator().manual_seed(3), batch_size=4)
    assert a["observations"].shape == (9, 17) and a["actions"].shape == (9, 6) and a["rewards"].shape == (9,)
    for k in a:
        assert a[k].dtype == np.float32 and np.array_equal(a[k], b[k]), k
    c = model.sample(9, generator=torch.Generator().manual_seed(4))
    assert not np.array_equal(a["observations"], c["observations"])


def test_fit_cli_trains_and_saves_the_ema_model(cheetah_store, tmp_path, one_torch_thread):
    from synth.cli import main as synth

    root = tmp_path / "fit"
    rc = synth(["fit", "-c", "configs/synth/halfcheetah.yaml", "--data.root", str(cheetah_store),
                "--trainer.max_steps", "12", "--trainer.val_check_interval", "6", "--trainer.max_time", "null",
                "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                "--model.width", "32", "--model.blocks", "1", "--data.batch_size", "32"])  # fmt: skip
    assert rc == 0
    model = load_pretrained(root / "model")
    assert isinstance(model, SynthER) and model.config["env_id"] == "HalfCheetah-v5"
    metrics = json.loads((root / "model" / "metrics.json").read_text())
    assert metrics["global_step"] == 12 and np.isfinite(metrics["val/loss"])
    flat = flatten_transitions(load_transitions(cheetah_store))
    stats = fit_normalization(flat, 17, 6)
    assert np.allclose(model.mean.numpy(), stats["mean"]) and np.allclose(model.std.numpy(), stats["std"])
    # the saved weights are the EMA, not the last optimiser iterate: they differ from a fresh init
    fresh = SynthER(17, 6, denoiser=model.config["denoiser"])
    assert not torch.equal(fresh.denoiser.inp.weight, model.denoiser.inp.weight)


def test_load_transitions_sources_and_subset(cheetah_store, tmp_path):
    data = load_transitions(cheetah_store)
    np.savez(tmp_path / "d.npz", **data)
    again = load_transitions(tmp_path / "d.npz")
    assert all(np.array_equal(data[k], again[k]) for k in data)
    sub = load_transitions(cheetah_store, subset=0.1, seed=1)
    assert len(sub["actions"]) == 12
    with pytest.raises(ValueError, match="no such dataset"):
        load_transitions(tmp_path / "nope")
    np.savez(tmp_path / "bad.npz", observations=data["observations"])
    with pytest.raises(ValueError, match="key 'actions' is missing"):
        load_transitions(tmp_path / "bad.npz")
