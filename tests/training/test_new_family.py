"""A model family added from outside the package plugs in without touching any CLI: a toy world model class
registered here is trained by `worldmodels fit`, saved, rebuilt by `load_pretrained` and planned with by
`planners eval`."""

import json
from dataclasses import dataclass

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from planners.cli import main as planners_main
from worldmodels import load_pretrained
from worldmodels.api import WorldModel
from worldmodels.cli import main as wm
from worldmodels.pretrained import Pretrained, known_types, register


@dataclass
class ToyState:
    visual: torch.Tensor  # (B, T, 1, P): normalised proprio as a one-token "image"
    proprio: torch.Tensor  # (B, T, P)


@register("ToyLinearWorldModel")
class ToyLinearWorldModel(Pretrained, nn.Module):
    """Linear dynamics on normalised proprio: ``p' = p + W a``; ignores pixels."""

    def __init__(self, proprio_dim: int, action_dim: int, frameskip: int, num_hist: int = 1):
        super().__init__()
        self.config = {"proprio_dim": proprio_dim, "action_dim": action_dim, "frameskip": frameskip,
                       "num_hist": num_hist}  # fmt: skip
        self.action_dim, self.frameskip, self.num_hist = action_dim, frameskip, num_hist
        self.W = nn.Linear(action_dim, proprio_dim, bias=False)
        for key, dim in (("proprio", proprio_dim), ("action", action_dim)):
            self.register_buffer(f"{key}_mean", torch.zeros(dim))
            self.register_buffer(f"{key}_std", torch.ones(dim))

    def encode(self, obs):
        p = (obs["proprio"].float() - self.proprio_mean) / self.proprio_std
        return ToyState(p[:, :, None], p)

    def rollout(self, state, actions):
        p, out = state.proprio[:, -1].expand(actions.shape[0], -1), []
        for h in range(actions.shape[1]):
            p = p + self.W(actions[:, h])
            out.append(p)
        p = torch.stack(out, 1)
        return ToyState(p[:, :, None], p)

    def action_bounds(self):
        low = (-1 - self.action_mean) / self.action_std
        return low, (1 - self.action_mean) / self.action_std

    def to_env_actions(self, actions):
        env = actions * self.action_std + self.action_mean
        return env.reshape(-1, self.action_dim // self.frameskip).clamp(-1, 1)


class ToyModule(L.LightningModule):
    """One-step proprio regression on FrameWindowDataModule batches (normalised by the DataModule)."""

    def __init__(self, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.model: ToyLinearWorldModel | None = None

    def setup(self, stage):
        dm = self.trainer.datamodule
        dm.setup(stage)
        stats = dm.stats
        self.model = ToyLinearWorldModel(
            stats["proprio_mean"].numel(), stats["action_mean"].numel(), dm.frameskip
        )
        for key in ("proprio_mean", "proprio_std", "action_mean", "action_std"):
            getattr(self.model, key).copy_(stats[key])

    def training_step(self, batch, batch_idx):
        p, a = batch["proprio"], batch["action"]
        loss = F.mse_loss(p[:, :-1] + self.model.W(a[:, :-1]), p[:, 1:])
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)


def test_a_registered_toy_family_trains_saves_loads_and_plans(wall_data, tmp_path):
    assert "ToyLinearWorldModel" in known_types()
    fit = tmp_path / "fit"
    args = ["fit", "--model", f"{__name__}.ToyModule", "--data", "worldmodels.data.datamodules.FrameWindowDataModule",
            "--data.root", str(wall_data / "data"), "--data.keys", "[proprio]", "--data.frameskip", "2",
            "--data.num_pred", "1", "--data.batch_size", "16", "--trainer.max_steps", "40",
            "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
            "--trainer.enable_checkpointing", "false", "--trainer.enable_model_summary", "false",
            "--trainer.default_root_dir", str(fit)]  # fmt: skip
    assert wm(args) == 0
    assert json.loads((fit / "model" / "config.json").read_text())["type"] == "ToyLinearWorldModel"

    model = load_pretrained(fit / "model")
    assert type(model) is ToyLinearWorldModel and isinstance(model, WorldModel)
    # Wall moves the agent along the action: the learned map is (close to) diagonal and positive
    w = model.W.weight.detach()[:, :2]  # the first env action of the frameskip group
    assert (torch.diagonal(w) > 0).all() and w.diagonal().abs().min() > 3 * w.fliplr().diagonal().abs().max()

    out = tmp_path / "eval"
    code = planners_main(["eval", "--model", str(fit / "model"), "--env", "worldmodels/Wall-v0", "--planner", "cem",
                          "--mpc", "--pairs", "2", "--samples", "16", "--topk", "4", "--iters", "2", "--videos", "0",
                          "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert len(result["pairs"]) == 2 and 0.0 <= result["success_rate"] <= 1.0
    assert all(p["env_steps"] > 0 for p in result["pairs"])


def test_an_unregistered_type_is_a_one_line_error_naming_the_known_types(tmp_path):
    ToyLinearWorldModel(2, 4, 2).save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, "type": "NoSuchModel"}))
    with pytest.raises(
        ValueError, match=r"type 'NoSuchModel' is not known; known types: .*ToyLinearWorldModel"
    ):
        load_pretrained(tmp_path / "m")
