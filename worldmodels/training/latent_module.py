"""LightningModule for the latent world model (DINO-WM), fed by :class:`FrameWindowDataModule`.

Shapes and statistics come from the DataModule in ``setup``: the model is built there, so ``fit``,
``validate``, ``test`` and checkpoint resume all work from the same config.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from worldmodels.encoders import build_encoder
from worldmodels.encoders.base import Encoder
from worldmodels.models.latent_world_model import LatentWorldModel
from worldmodels.pretrained import read_config
from worldmodels.training.optim import adamw_with_schedule, check_schedule

ENCODER_CHOICES = ("conv_ae", "state_ae", "dinov2")


class LatentWorldModelModule(L.LightningModule):
    """Teacher-forced next-frame training of the block-causal predictor on frozen encoder tokens.

    Args:
        encoder: ``conv_ae`` / ``state_ae`` (offline, pre-trained by ``worldmodels pretrain-encoder``) or
            ``dinov2``.
        encoder_path: ``conv_ae`` / ``state_ae``: the pre-trained encoder directory (required).
        dinov2_model: ``dinov2``: timm model name.
        dinov2_weights: ``dinov2``: weights file, ``hf-cache``, or ``random`` (explicit random weights).
        encoder_img_size: image size fed to the encoder (DINO-WM: 224; CPU profile: 64).
        use_feature_cache: encode every frame once and train on cached tokens (built on first use).
        width: predictor token width.
        depth: predictor blocks (DINO-WM: 6).
        heads: attention heads (DINO-WM: 16).
        head_dim: dimension per head (DINO-WM: 64).
        mlp_dim: MLP hidden size (DINO-WM: 2048).
        emb_dim: action / proprio embedding size concatenated to every patch (DINO-WM: 10).
        dropout: dropout in the predictor (DINO-WM: 0.1).
        proprio_weight: weight of the proprio term in the loss.
        lr: AdamW learning rate (DINO-WM code: 5e-4).
        weight_decay: AdamW weight decay.
        residual: the predictor outputs the change from the current frame (see :class:`LatentPredictor`).
        lr_schedule: ``constant`` (DINO-WM) or ``cosine``: linear warm-up over ``warmup_steps``, then cosine
            decay to zero at the trainer's last step (``max_steps``, else ``max_epochs`` of batches);
            ``cosine_time``: the same, but the decay also follows the trainer's ``max_time``, so a run its
            time limit stops still ends near zero (the demo's schedule).
        warmup_steps: warm-up length for ``cosine`` / ``cosine_time``.
        rollout_passes: ``0`` trains teacher-forced only (DINO-WM). ``n > 0`` adds the push-forward loss:
            the frames after the history are replaced by the predictor's own predictions (detached; ``n``
            passes, so frame ``k`` carries up to ``min(k, n)`` steps of imagination error) and the
            predictions made from them are scored against the real frames too. Planning rolls the model out
            on its own predictions; teacher forcing never shows it one, so a small error that puts the
            imagined agent inside a wall is never corrected (the model then walks through the wall). Costs
            about ``n + 1`` forward and 2 backward passes per step instead of 1 and 1.
        rollout_weight: weight of the push-forward loss (the teacher-forced loss has weight 1).
    """

    def __init__(
        self,
        encoder: str = "conv_ae",
        encoder_path: str | None = None,
        dinov2_model: str = "vit_small_patch14_dinov2",
        dinov2_weights: str = "hf-cache",
        encoder_img_size: int = 64,
        use_feature_cache: bool = True,
        width: int = 256,
        depth: int = 4,
        heads: int = 8,
        head_dim: int = 32,
        mlp_dim: int = 512,
        emb_dim: int = 10,
        dropout: float = 0.0,
        proprio_weight: float = 1.0,
        lr: float = 5e-4,
        weight_decay: float = 1e-2,
        residual: bool = False,
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        rollout_passes: int = 0,
        rollout_weight: float = 1.0,
    ):
        super().__init__()
        if encoder not in ENCODER_CHOICES:
            raise ValueError(f"encoder={encoder!r}; allowed values: {ENCODER_CHOICES}")
        check_schedule(lr_schedule, warmup_steps)
        if rollout_passes < 0 or not rollout_weight >= 0:
            raise ValueError(
                f"rollout_passes={rollout_passes} and rollout_weight={rollout_weight} must be >= 0"
            )
        if encoder != "dinov2" and not encoder_path:
            raise ValueError(
                f"encoder_path is required for encoder={encoder!r} (run `worldmodels pretrain-encoder`)"
            )
        self.save_hyperparameters()
        self.model: LatentWorldModel | None = None

    def prepare_data(self) -> None:
        """Check the encoder directory before the trainer writes anything (its ``config.yaml``): a missing
        or broken one is a one-line error naming it."""
        if self.hparams.encoder == "conv_ae":
            read_config(self.hparams.encoder_path)

    def _build_encoder(self) -> tuple[Encoder, dict]:
        h = self.hparams
        if h.encoder != "dinov2":
            enc = build_encoder(h.encoder, path=h.encoder_path)
        else:
            enc = build_encoder(
                "dinov2", model_name=h.dinov2_model, weights=h.dinov2_weights, img_size=h.encoder_img_size
            )
        enc.check_size(h.encoder_img_size, h.encoder_img_size)
        return enc, {"name": h.encoder, "config": {k: v for k, v in enc.config.items()}}

    def setup(self, stage: str) -> None:
        if self.model is not None:
            return
        dm = self.trainer.datamodule
        store = dm.store
        if "pixels" not in store.keys:
            raise ValueError(
                f"{store.root}: key 'pixels' is missing; the latent world model needs a visual dataset"
            )
        h = self.hparams
        encoder, enc_cfg = self._build_encoder()
        if h.use_feature_cache:
            from worldmodels.encoders.cache import build_feature_cache

            # on this process's accelerator (the frozen encoder is the expensive part), then back to the
            # CPU: Lightning moves the whole module once setup is done
            key = build_feature_cache(
                store, encoder.to(self.trainer.strategy.root_device), h.encoder_img_size
            )
            encoder.cpu()
            dm.feature_key, dm.keys = key, tuple(k for k in dm.keys if k != "pixels")
        else:
            dm.img_size = h.encoder_img_size
        dm.setup(stage)
        stats = dm.stats
        space = store.manifest.get("action_space", {})
        env_dim = stats["action_mean"].numel() // dm.frameskip
        low = [float(space.get("low", -1.0))] * env_dim
        high = [float(space.get("high", 1.0))] * env_dim
        predictor = {
            "num_patches": encoder.num_patches(h.encoder_img_size, h.encoder_img_size),
            "visual_dim": encoder.embed_dim,
            "proprio_dim": int(stats["proprio_mean"].numel()) if "proprio_mean" in stats else 0,
            "action_dim": int(stats["action_mean"].numel()),
            "max_frames": dm.num_hist + dm.num_pred,
            "width": h.width,
            "depth": h.depth,
            "heads": h.heads,
            "head_dim": h.head_dim,
            "mlp_dim": h.mlp_dim,
            "emb_dim": h.emb_dim,
            "dropout": h.dropout,
            "residual": h.residual,
        }
        stats = {k: stats[k] for k in ("proprio_mean", "proprio_std", "action_mean", "action_std")}
        self.model = LatentWorldModel(
            encoder,
            enc_cfg,
            predictor,
            stats,
            dm.frameskip,
            dm.num_hist,
            h.encoder_img_size,
            store.env_id,
            low,
            high,
        )

    def _latents(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "features" in batch:
            return batch["features"].float()
        with torch.no_grad():
            return self.model.encoder(batch["pixels"])

    def _scored(
        self, name: str, z, p, target_z, target_p, total: str | None = None
    ) -> dict[str, torch.Tensor]:
        """``<name>_visual``, ``<name>_proprio`` (when there is proprio) and their weighted sum under
        ``total`` (default ``<name>_mse``)."""
        out = {f"{name}_visual": F.mse_loss(z.float(), target_z)}
        if p is not None:
            out[f"{name}_proprio"] = F.mse_loss(p.float(), target_p)
        weighted = out[f"{name}_visual"] + self.hparams.proprio_weight * out.get(f"{name}_proprio", 0.0)
        out[total or f"{name}_mse"] = weighted
        return out

    def _pushforward(
        self, z: torch.Tensor, p: torch.Tensor | None, a: torch.Tensor, pred_z: torch.Tensor, pred_p
    ) -> dict[str, torch.Tensor]:
        """Push-forward loss (``rollout_passes``): inputs after the ``num_hist`` history frames are the
        predictor's own detached predictions; scored on the frames predicted from such inputs."""
        hist = self.model.num_hist
        in_z, in_p = z[:, :-1], None if p is None else p[:, :-1]
        for i in range(self.hparams.rollout_passes):
            if i:
                with torch.no_grad():
                    pred_z, pred_p = self.model.predictor(in_z, in_p, a[:, :-1])
            in_z = torch.cat([z[:, :hist], pred_z[:, hist - 1 : -1].detach()], 1)
            if p is not None:
                in_p = torch.cat([p[:, :hist], pred_p[:, hist - 1 : -1].detach()], 1)
        roll_z, roll_p = self.model.predictor(in_z, in_p, a[:, :-1])
        return self._scored(
            "rollout", roll_z[:, hist:], None if roll_p is None else roll_p[:, hist:], z[:, hist + 1 :],
            None if p is None else p[:, hist + 1 :],
        )  # fmt: skip

    def _losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        z = self._latents(batch)
        p = batch.get("proprio")
        a = batch["action"]
        pred_z, pred_p = self.model.predictor(z[:, :-1], None if p is None else p[:, :-1], a[:, :-1])
        target_p = None if p is None else p[:, 1:]
        out = self._scored("mse", pred_z, pred_p, z[:, 1:], target_p, total="mse")
        out |= self._scored("copy_last", z[:, :-1], None if p is None else p[:, :-1], z[:, 1:], target_p)
        out["loss"] = out["mse"]
        if self.hparams.rollout_passes and z.shape[1] - 1 > self.model.num_hist:
            out |= self._pushforward(z, p, a, pred_z, pred_p)
            out["loss"] = out["loss"] + self.hparams.rollout_weight * out["rollout_mse"]
        return out

    def training_step(self, batch, batch_idx):
        out = self._losses(batch)
        bs = batch["action"].shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        self.log("train/mse_visual", out["mse_visual"], batch_size=bs)
        if "rollout_mse" in out:
            self.log("train/rollout_mse", out["rollout_mse"], batch_size=bs)
        return out["loss"]

    def _eval_step(self, batch, prefix: str):
        out = self._losses(batch)
        bs = batch["action"].shape[0]
        for k, v in out.items():
            if k != "loss":
                self.log(
                    f"{prefix}/{k}", v, prog_bar=k in ("mse", "copy_last_mse"), batch_size=bs, sync_dist=True
                )

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def configure_optimizers(self):
        h = self.hparams
        params = [p for p in self.model.predictor.parameters() if p.requires_grad]
        return adamw_with_schedule(params, self.trainer, lr=h.lr, weight_decay=h.weight_decay,
                                   lr_schedule=h.lr_schedule, warmup_steps=h.warmup_steps)  # fmt: skip
