"""Offline model-based RL: the dynamics fit through `worldmodels fit`, EDAC's diversity term, MOPO-penalised
rollouts, exact resume, the divergence guard, the `worldmodels rl train` command and its bad-input errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from worldmodels import load_pretrained
from worldmodels.api import StepResult
from worldmodels.cli import main as wm
from worldmodels.models.ensemble_dynamics import EnsembleDynamics
from worldmodels.rl.mbrl import SACN, DivergenceError, MBRLConfig, edac_diversity, rollout_round, train_mbrl
from worldmodels.rl.networks import TanhGaussianActor

TINY = dict(total_updates=40, rollout_batch_size=16, rollout_every=10, rollout_length=3, batch_size=32,
            hidden=(16, 16), eval_every=20, eval_episodes=1, max_episode_steps=20, log_every=10,
            checkpoint_every=20, stats_batch=32)  # fmt: skip


def _fit(data, out, *extra) -> int:
    args = ["fit", "-c", "configs/dynamics/halfcheetah-medium.yaml", "--data.root", str(data),
            "--trainer.default_root_dir", str(out), "--model.hidden", "[16,16]", "--model.weight_decay",
            "[1e-5,1e-5,1e-5]", "--model.num_members", "3", "--model.num_elites", "2", "--data.batch_size", "64",
            "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip
    return wm(args)


@pytest.fixture(scope="module")
def dynamics(cheetah_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("dyn")
    assert _fit(cheetah_data, out, "--trainer.max_epochs", "4") == 0
    return out / "model"


def test_dynamics_fit_saves_a_steppable_model_with_elites(dynamics, cheetah_data):
    model = load_pretrained(dynamics)
    assert isinstance(model, EnsembleDynamics) and model.env_id == "HalfCheetah-v5"
    assert model.elites.tolist() == sorted(set(model.elites.tolist())) and len(model.elites) == 2
    metrics = json.loads((dynamics / "metrics.json").read_text())
    assert metrics["global_step"] == 4 * 13  # 999 rows - 199 held out = 800 / 64 per batch: 13, 4 epochs
    out = model.step(torch.zeros(4, 17), torch.zeros(4, 6), generator=torch.Generator().manual_seed(0))
    assert out.next_state.shape == (4, 17) and not out.terminated.any()


def test_dynamics_early_stopping_stops_after_patience(cheetah_data, tmp_path):
    # improvement 0.99: the first epoch improves on infinity, then no epoch improves by 99 %
    assert _fit(cheetah_data, tmp_path, "--trainer.max_epochs", "20", "--model.patience", "2",
                "--model.improvement", "0.99") == 0  # fmt: skip
    # epoch 1 improves, epochs 2 and 3 do not: stop after 3 of the 20 epochs
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["global_step"] == 3 * 13


def test_a_dynamics_checkpoint_of_another_architecture_names_the_field(dynamics, tmp_path):
    shutil.copytree(dynamics, tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "hidden": [16, 32]}))
    with pytest.raises(
        ValueError, match=r"tensor 'layers.1.weight' has shape \(3, 16, 16\).*expects \(3, 16, 32\)"
    ):
        load_pretrained(tmp_path / "m")


def test_edac_diversity_equals_a_loop_over_pairs():
    g = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    unit = g / g.norm(dim=-1, keepdim=True)
    want = sum((unit[i] * unit[j]).sum(-1) for i in range(4) for j in range(4) if i != j).mean() / 3
    torch.testing.assert_close(edac_diversity(g), want)
    same = torch.ones(3, 2, 2)  # identical gradients: cosine 1 for every pair -> N(N-1)/(N-1) = N
    assert edac_diversity(same).item() == pytest.approx(3.0)


class _ConstantModel:
    """A SteppableModel stub: s' = s + 1, reward 1, fixed penalties (or NaN states)."""

    state_dim, action_dim = 3, 2

    def __init__(self, nan: bool = False):
        self.nan = nan

    def step(self, state, action, *, generator=None):
        b = len(state)
        nxt = state + (float("nan") if self.nan else 1.0)
        pens = {"aleatoric": torch.full((b,), 0.5), "ensemble_std": torch.full((b,), 2.0),
                "max_pairwise": torch.full((b,), 3.0), "ll_var": torch.full((b,), 4.0)}  # fmt: skip
        return StepResult(nxt, torch.ones(b), torch.zeros(b, dtype=torch.bool), pens["aleatoric"],
                          {"penalties": pens})  # fmt: skip


@pytest.mark.parametrize(("penalty", "value"), [("aleatoric", 0.5), ("ensemble_std", 2.0), ("max_pairwise", 3.0),
                                                 ("ll_var", 4.0), ("none", 0.0)])  # fmt: skip
def test_rollouts_penalise_rewards_by_the_named_penalty(penalty, value):
    cfg = MBRLConfig(algo="mopo", penalty=penalty, penalty_coef=0.5, rollout_length=3, hidden=(8,))
    agent = SACN(3, 2, [-1, -1], [1, 1], cfg)
    rows, mean_pen = rollout_round(
        agent, _ConstantModel(), torch.zeros(4, 3), cfg, torch.Generator().manual_seed(0)
    )
    assert rows["obs"].shape == (12, 3) and mean_pen == value
    torch.testing.assert_close(rows["reward"], torch.full((12,), 1.0 - 0.5 * value))
    torch.testing.assert_close(rows["next_obs"] - rows["obs"], torch.ones(12, 3))


def test_nan_in_a_model_rollout_stops_naming_the_model():
    cfg = MBRLConfig(algo="mbpo", hidden=(8,))
    agent = SACN(3, 2, [-1, -1], [1, 1], cfg)
    with pytest.raises(DivergenceError, match="NaN/inf in the model rollout \\(_ConstantModel\\)"):
        rollout_round(agent, _ConstantModel(nan=True), torch.zeros(4, 3), cfg, torch.Generator())


def test_presets_and_bad_settings():
    assert (MBRLConfig(algo="ravl").num_critics, MBRLConfig(algo="ravl").eta) == (10, 1.0)
    assert MBRLConfig(algo="mopo").penalty == "aleatoric" and MBRLConfig(algo="mbpo").penalty == "none"
    assert MBRLConfig(algo="ravl", num_critics=4).num_critics == 4
    with pytest.raises(ValueError, match="algo='sac'"):
        MBRLConfig(algo="sac")
    with pytest.raises(ValueError, match="penalty='std'"):
        MBRLConfig(algo="mopo", penalty="std")


def test_resume_is_exact(cheetah_data, tmp_path):
    cfg = MBRLConfig(algo="ravl", data=str(cheetah_data), num_critics=3, **TINY)
    train_mbrl(cfg, tmp_path / "full", progress=False)
    train_mbrl(cfg, tmp_path / "cut", progress=False, stop_after=30)  # killed after 30: checkpoint at 20
    assert json.loads((tmp_path / "cut" / "evals.json").read_text())[-1]["update"] == 20
    train_mbrl(cfg, tmp_path / "cut", progress=False)
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert full["update"] == cut["update"] == 40
    for key, value in full["agent"].items():
        assert torch.equal(value, cut["agent"][key]), key
    assert full["log"] == [{**r, "time_s": f["time_s"]} for r, f in zip(cut["log"], full["log"])]
    assert (tmp_path / "full" / "log.jsonl").read_text().count("\n") == 4
    actor = load_pretrained(tmp_path / "cut" / "actor")
    assert isinstance(actor, TanhGaussianActor)
    evals = json.loads((tmp_path / "full" / "evals.json").read_text())
    assert [e["update"] for e in evals] == [20, 40] and all(np.isfinite(e["normalized_score"]) for e in evals)


def test_the_divergence_guard_stops_and_keeps_the_last_good_checkpoint(cheetah_data, tmp_path):
    # a huge critic learning rate makes Q explode within a few updates
    cfg = MBRLConfig(algo="mbpo", data=str(cheetah_data), critic_lr=3.0, **{**TINY, "total_updates": 400,
                                                                            "checkpoint_every": 2, "eval_every": 1000})  # fmt: skip
    with pytest.raises(
        DivergenceError, match=r"divergence at update (\d+): .*last good checkpoint \(update (\d+)\)"
    ) as err:
        train_mbrl(cfg, tmp_path / "stop", progress=False)
    ckpt = torch.load(tmp_path / "stop" / "checkpoint.pt", weights_only=True)
    bad = int(str(err.value).split("update ")[1].split(":")[0])
    assert ckpt["update"] < bad and all(torch.isfinite(v).all() for v in ckpt["agent"].values())

    rec = MBRLConfig(**{**cfg.to_dict(), "divergence": "record", "total_updates": 20})
    try:
        train_mbrl(rec, tmp_path / "record", progress=False)
    except DivergenceError as e:  # Q may go on to NaN, which stops even a recording run
        assert "NaN" in str(e)
    diverged = json.loads((tmp_path / "record" / "diverged.json").read_text())
    assert diverged["q_rollout"] > diverged["bound"] > 0


def test_rl_train_command_and_bad_inputs(cheetah_data, hopper_data, dynamics, tmp_path, capsys):
    args = ["rl", "train", "--algo", "mopo", "--data", str(cheetah_data), "--model", str(dynamics), "--out",
            str(tmp_path / "run"), "--no-progress", "--total-updates", "20", "--rollout-batch-size", "16",
            "--rollout-every", "10", "--batch-size", "32", "--hidden", "16", "16", "--eval-every", "20",
            "--eval-episodes", "1", "--max-episode-steps", "10", "--log-every", "10"]  # fmt: skip
    assert wm(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"q_dataset", "q_rollout", "critic_loss", "rollout_penalty"} <= set(rows[-1])
    assert rows[-1]["rollout_penalty"] > 0  # MOPO's aleatoric penalty of a learned model
    assert isinstance(load_pretrained(tmp_path / "run" / "actor"), TanhGaussianActor)
    with pytest.raises(ValueError, match=f"trained on HalfCheetah-v5, but --data {hopper_data} is Hopper-v5"):
        train_mbrl(MBRLConfig(data=str(hopper_data), model=str(dynamics), **TINY), tmp_path / "x")
    with pytest.raises(ValueError, match=r"field 'algo' is 'mopo', this run asks for 'ravl'"):
        train_mbrl(
            MBRLConfig(algo="ravl", data=str(cheetah_data), model=str(dynamics), **TINY), tmp_path / "run"
        )
    with pytest.raises(ValueError, match="not a dataset directory"):
        train_mbrl(MBRLConfig(data=str(tmp_path)), tmp_path / "y")


def test_nan_in_the_dataset_is_named(cheetah_data, monkeypatch):
    import worldmodels.data.d4rl as d4rl

    real = d4rl.qlearning_dataset

    def corrupt(*a, **k):
        d = real(*a, **k)
        d["rewards"][3] = np.nan
        return d

    monkeypatch.setattr(d4rl, "qlearning_dataset", corrupt)
    from worldmodels.rl.mbrl import load_dataset

    with pytest.raises(ValueError, match="key 'rewards' holds NaN"):
        load_dataset(cheetah_data, torch.device("cpu"))
