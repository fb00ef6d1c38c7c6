"""LightningModule for the video-diffusion world model, fed by :class:`FrameWindowDataModule`.

Each window of ``num_hist + num_pred`` frames gives ``num_pred`` training samples (context = the
``num_hist`` frames before, target = the next frame). Shapes and statistics come from the DataModule in
``setup``, where the model is built, so ``fit``, ``validate``, ``test`` and checkpoint resume share one config.
Validation also samples the next frame with the model's sampler and logs its PSNR beside copying the last
context frame (``val/psnr``, ``val/psnr_copy_last``).
"""

from __future__ import annotations

import lightning as L
import torch
from einops import rearrange

from worldmodels.models.video_diffusion import FEATURES, VideoWorldModel
from worldmodels.training.optim import adamw_with_schedule, check_schedule


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1] (peak-to-peak 2): ``(B, ...) -> (B,)``."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(4.0 / mse)


class VideoWorldModelModule(L.LightningModule):
    """EDM training of the next-frame denoiser (and the proprio head) on frame windows.

    Args:
        channels: UNet channels per level (DIAMOND: 64, 64, 64, 64).
        layers_per_block: ResNet blocks per level (DIAMOND: 2).
        mid_attention: self-attention in the UNet's middle block (DIAMOND: yes).
        cond_dim: width of the action / proprio / context-noise embedding (DIAMOND: 256).
        norm_groups: group-norm groups.
        patch: space-to-depth factor of the UNet's input (1: full resolution, DIAMOND; 4: a 64 x 64 frame is
            denoised by a UNet at 16 x 16 with 48 channels per frame, about 3x cheaper on a CPU at width 64).
        sigma_data: EDM's data standard deviation (DIAMOND: 0.5; frames are in [-1, 1]).
        p_mean: mean of the log training noise (DIAMOND: -0.4).
        p_std: std of the log training noise (DIAMOND: 1.2).
        sigma_min_train: lower clip of the training noise (DIAMOND: 2e-3).
        sigma_max_train: upper clip of the training noise (DIAMOND: 20).
        sampler_steps: denoising steps of the rollout sampler (DIAMOND: 3).
        sampler_solver: ``euler`` (DIAMOND), ``heun`` or ``dpmsolver++``.
        sampler_sigma_min: smallest sampling noise level (DIAMOND: 2e-3).
        sampler_sigma_max: largest sampling noise level (DIAMOND: 5).
        sampler_rho: Karras schedule exponent (7).
        context_noise_max: training context-noise augmentation: a level drawn uniformly in ``[0, max]`` per
            sample (0: off).
        rollout_context_noise: the context-noise level rollouts condition on.
        residual: diffuse the change from the last context frame (set ``sigma_data`` to its std, ``p_mean``
            and ``sampler_sigma_max`` to its scale); see :class:`VideoWorldModel`.
        use_proprio: condition on the context proprio and train the proprio head (when the data has proprio).
        features: planning features of rollouts: ``pixels`` (average-pooled) or ``encoder``.
        feature_pool: pooling factor of the ``pixels`` features.
        encoder_path: a saved project encoder (``conv_ae``) for ``features="encoder"``.
        lr: AdamW learning rate (DIAMOND: 1e-4).
        weight_decay: AdamW weight decay.
        lr_schedule: ``constant`` or ``cosine`` (linear warm-up over ``warmup_steps``, then cosine to 0).
        warmup_steps: warm-up length.
        val_sample_batches: validation batches on which the next frame is sampled for ``val/psnr``.
        seed: seed of the module's generator (training noise, context noise, validation samples).
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        mid_attention: bool = True,
        cond_dim: int = 128,
        norm_groups: int = 16,
        patch: int = 1,
        sigma_data: float = 0.5,
        p_mean: float = -0.4,
        p_std: float = 1.2,
        sigma_min_train: float | None = 2e-3,
        sigma_max_train: float | None = 20.0,
        sampler_steps: int = 3,
        sampler_solver: str = "euler",
        sampler_sigma_min: float = 2e-3,
        sampler_sigma_max: float = 5.0,
        sampler_rho: float = 7.0,
        context_noise_max: float = 0.3,
        rollout_context_noise: float = 0.1,
        residual: bool = False,
        use_proprio: bool = True,
        features: str = "pixels",
        feature_pool: int = 4,
        encoder_path: str | None = None,
        lr: float = 1e-4,
        weight_decay: float = 1e-2,
        lr_schedule: str = "constant",
        warmup_steps: int = 0,
        val_sample_batches: int = 2,
        seed: int = 0,
    ):
        super().__init__()
        check_schedule(lr_schedule, warmup_steps)
        if features not in FEATURES:
            raise ValueError(f"features={features!r}; allowed values: {FEATURES}")
        if features == "encoder" and not encoder_path:
            raise ValueError("encoder_path is required for features='encoder' (a saved conv_ae encoder)")
        if context_noise_max < 0 or rollout_context_noise < 0:
            raise ValueError(f"context_noise_max={context_noise_max} and rollout_context_noise="
                             f"{rollout_context_noise} must be >= 0")  # fmt: skip
        self.save_hyperparameters()
        self.model: VideoWorldModel | None = None
        self._generator: torch.Generator | None = None

    @property
    def generator(self) -> torch.Generator:
        """The module's generator (on the CPU; :func:`worldmodels.models.edm.randn` moves the noise)."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.hparams.seed + self.global_rank)
        return self._generator

    def setup(self, stage: str) -> None:
        if self.model is not None:
            return
        dm = self.trainer.datamodule
        store = dm.store
        if "pixels" not in store.keys or "pixels" not in dm.keys:
            raise ValueError(f"{store.root}: key 'pixels' is missing; the video world model needs frames")
        dm.setup(stage)
        h = self.hparams
        stats = dm.stats
        use_proprio = h.use_proprio and "proprio" in dm.keys and "proprio_mean" in stats
        space = store.manifest.get("action_space", {})
        env_dim = stats["action_mean"].numel() // dm.frameskip
        img_size = dm.img_size or int(store.manifest["observation_space"]["spaces"]["pixels"]["shape"][0])
        encoder, enc_cfg = None, None
        if h.features == "encoder":
            from worldmodels.encoders import build_encoder

            encoder = build_encoder("conv_ae", path=h.encoder_path)
            enc_cfg = {"name": "conv_ae", "config": dict(encoder.config)}
        self.model = VideoWorldModel(
            img_size=img_size, num_hist=dm.num_hist, action_dim=int(stats["action_mean"].numel()),
            proprio_dim=int(stats["proprio_mean"].numel()) if use_proprio else 0, frameskip=dm.frameskip,
            denoiser={"channels": list(h.channels), "layers_per_block": h.layers_per_block,
                      "mid_attention": h.mid_attention, "cond_dim": h.cond_dim, "norm_groups": h.norm_groups,
                      "patch": h.patch},
            edm={"sigma_data": h.sigma_data, "p_mean": h.p_mean, "p_std": h.p_std,
                 "sigma_min_train": h.sigma_min_train, "sigma_max_train": h.sigma_max_train},
            sampler={"steps": h.sampler_steps, "solver": h.sampler_solver, "sigma_min": h.sampler_sigma_min,
                     "sigma_max": h.sampler_sigma_max, "rho": h.sampler_rho},
            rollout_context_noise=h.rollout_context_noise, residual=h.residual, features=h.features, feature_pool=h.feature_pool,
            encoder=encoder, encoder_config=enc_cfg,
            stats={k: v for k, v in stats.items() if k.startswith("action") or (use_proprio and k.startswith("proprio"))},
            env_id=store.env_id, env_action_low=[float(space.get("low", -1.0))] * env_dim,
            env_action_high=[float(space.get("high", 1.0))] * env_dim,
        )  # fmt: skip

    def _windows(self, batch: dict[str, torch.Tensor]):
        """Fold the ``num_pred`` targets of each window into the batch: frames ``(B * num_pred, num_hist + 1,
        3, S, S)`` in [-1, 1], actions ``(B * num_pred, num_hist, A)``, proprio ``(B * num_pred, num_hist + 1,
        P)`` or ``None``."""
        k = self.model.num_hist
        px = batch["pixels"].float() / 127.5 - 1
        n_pred = px.shape[1] - k

        def stack(x: torch.Tensor, n: int) -> torch.Tensor:
            windows = torch.stack([x[:, i : i + n] for i in range(n_pred)], 1)
            return rearrange(windows, "b p ... -> (b p) ...")

        frames, actions = stack(px, k + 1), stack(batch["action"], k)
        proprio = stack(batch["proprio"], k + 1) if self.model.proprio_dim else None
        return frames, actions, proprio

    def training_step(self, batch, batch_idx):
        frames, actions, proprio = self._windows(batch)
        out = self.model.losses(frames, actions, proprio, self.generator, self.hparams.context_noise_max)
        bs = frames.shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        self.log("train/denoise", out["denoise"], batch_size=bs)
        if "proprio" in out:
            self.log("train/proprio", out["proprio"], batch_size=bs)
        return out["loss"]

    def _eval_step(self, batch, batch_idx: int, prefix: str) -> None:
        frames, actions, proprio = self._windows(batch)
        gen = torch.Generator().manual_seed(self.hparams.seed + batch_idx)  # the same noise every epoch
        out = self.model.losses(frames, actions, proprio, gen, self.hparams.context_noise_max)
        bs = frames.shape[0]
        for key, value in out.items():
            self.log(f"{prefix}/{key}", value, batch_size=bs, sync_dist=True, prog_bar=key == "loss")
        if batch_idx < self.hparams.val_sample_batches:
            k = self.model.num_hist
            ctx_p = None if proprio is None else proprio[:, :k]
            nxt, _ = self.model.predict_next(frames[:, :k], actions, ctx_p, gen)
            self.log(
                f"{prefix}/psnr", psnr(nxt, frames[:, k]).mean(), batch_size=bs, sync_dist=True, prog_bar=True
            )
            copy = psnr(frames[:, k - 1], frames[:, k]).mean()
            self.log(f"{prefix}/psnr_copy_last", copy, batch_size=bs, sync_dist=True)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, batch_idx, "test")

    def configure_optimizers(self):
        params = [
            p for n, p in self.model.named_parameters() if p.requires_grad and not n.startswith("encoder.")
        ]
        h = self.hparams
        return adamw_with_schedule(params, self.trainer, lr=h.lr, weight_decay=h.weight_decay,
                                   lr_schedule=h.lr_schedule, warmup_steps=h.warmup_steps)  # fmt: skip
