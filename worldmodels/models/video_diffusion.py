"""Action-conditioned video-diffusion world model (DIAMOND, Alonso et al. 2024; UniSim-style imagination).

The model denoises the next frame with a diffusers ``UNet2DModel``: the past ``num_hist`` frames are
concatenated on channels with the noisy next frame; the past ``num_hist`` actions (and the proprio of the
context frames) are embedded, added to the embedding of the context-noise level and handed to the UNet as
its ``class_labels`` (``class_embed_type="identity"``), where they join the noise-level embedding and reach
every ResNet block through adaptive group norm (``resnet_time_scale_shift="scale_shift"``), as DIAMOND's
``AdaGroupNorm``. Training and sampling go through :mod:`worldmodels.models.edm` (EDM preconditioning with
``sigma_data``, log-normal training noise, Euler with few steps: DIAMOND uses 3).

A small convolutional head reads the proprio of the next frame off the last context frame and the next
frame (trained on real frames, applied to imagined ones), so rollouts return proprio for planning
objectives and the next step's conditioning.

Departures from DIAMOND:

* Context-noise augmentation (GameNGen; DIAMOND's paper discusses drift): during training each sample's
  context frames get Gaussian noise of a random level in ``[0, context_noise_max]`` whose level is embedded
  too; rollouts condition on ``rollout_context_noise``. This makes autoregressive rollouts robust to the
  model's own small errors.
* The noise level enters the UNet's sinusoidal timestep embedding as ``1000 * c_noise`` (DIAMOND: random
  Fourier features of ``c_noise``).
* CPU profile: fewer channels at full resolution and one ResNet block per level (``configs/video/*.yaml``);
  the ``*_gpu.yaml`` configs use DIAMOND's sizes (64 channels x 4 levels, 2 blocks per level).

Implements :class:`worldmodels.api.StochasticWorldModel`: ``encode`` context frames, batched autoregressive
``rollout(state, actions, generator=...)`` returning frames, proprio and the planning features
(``visual``: average-pooled pixels, or the tokens of a project encoder applied to the frames), plus
``decode`` (the imagined frames) for videos. Saves and loads through :mod:`worldmodels.pretrained`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from diffusers.models.embeddings import Timesteps
from einops import rearrange
from torch import Tensor, nn

from worldmodels.encoders.base import Encoder
from worldmodels.models import check_action_sizes
from worldmodels.models.edm import EDM, SamplerConfig
from worldmodels.pretrained import Pretrained, check_kwargs

FEATURES = ("pixels", "encoder")


@dataclass
class VideoState:
    """Frames of a video-model history or rollout.

    Attributes:
        frames: ``(B, T, 3, H, W)`` float in [-1, 1].
        proprio: normalised proprio ``(B, T, P)`` or ``None``.
        visual: planning features ``(B, T, N, D)`` (what :class:`planners.objectives.GoalDistance` compares).
        past_actions: normalised planning actions between the frames ``(B, T-1, A)`` or ``None`` (zeros).
    """

    frames: Tensor
    proprio: Tensor | None = None
    visual: Tensor | None = None
    past_actions: Tensor | None = field(default=None)

    def __getitem__(self, index) -> VideoState:
        pick = lambda x: None if x is None else x[index]  # noqa: E731
        return VideoState(pick(self.frames), pick(self.proprio), pick(self.visual), pick(self.past_actions))

    @property
    def batch_size(self) -> int:
        return self.frames.shape[0]


class FrameDenoiser(nn.Module):
    """``F(x_in, c_noise; context, actions, proprio, context_sigma)``: EDM's raw network for the next frame.

    Args:
        img_size: frame size ``S`` (frames are ``(3, S, S)``).
        num_hist: context frames concatenated on channels.
        action_dim: planning action dimension ``A``.
        proprio_dim: proprio dimension ``P`` (0: no proprio conditioning).
        channels: UNet channels per level (DIAMOND: 64, 64, 64, 64).
        layers_per_block: ResNet blocks per level (DIAMOND: 2).
        mid_attention: self-attention in the middle block (DIAMOND: yes, only there).
        cond_dim: width of the action / proprio / context-noise embedding (the UNet's time embedding width
            is ``4 * channels[0]``; the embedding is projected to it).
        norm_groups: group-norm groups (each level's channels must be divisible by it).
        patch: space-to-depth factor: frames ``(3, S, S)`` enter the UNet as ``(3 patch^2, S / patch,
            S / patch)`` (``pixel_unshuffle``) and its output is shuffled back, so a UNet at ``S / patch``
            resolution denoises the full ``S x S`` frame (1: DIAMOND, the UNet at full resolution).
    """

    def __init__(
        self,
        img_size: int,
        num_hist: int,
        action_dim: int,
        proprio_dim: int = 0,
        channels: tuple[int, ...] = (64, 64, 64, 64),
        layers_per_block: int = 2,
        mid_attention: bool = True,
        cond_dim: int = 256,
        norm_groups: int = 32,
        patch: int = 1,
    ):
        super().__init__()
        if patch < 1 or img_size % (patch * 2 ** (len(channels) - 1)):
            raise ValueError(f"img_size={img_size} must be divisible by patch={patch} x 2^(levels - 1)")
        self.num_hist, self.action_dim, self.proprio_dim, self.patch = (
            num_hist,
            action_dim,
            proprio_dim,
            patch,
        )
        levels, c = len(channels), 3 * patch**2
        self.unet = UNet2DModel(
            sample_size=img_size // patch, in_channels=c * (num_hist + 1), out_channels=c,
            block_out_channels=tuple(channels), layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * levels, up_block_types=("UpBlock2D",) * levels,
            add_attention=mid_attention, attention_head_dim=8, norm_num_groups=norm_groups,
            resnet_time_scale_shift="scale_shift", class_embed_type="identity",
        )  # fmt: skip
        temb = 4 * channels[0]
        self.ctx_noise_proj = Timesteps(cond_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        in_dim = num_hist * (action_dim + proprio_dim)
        self.cond_in = nn.Linear(in_dim, cond_dim)
        self.cond_mlp = nn.Sequential(
            nn.SiLU(), nn.Linear(cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, temb)
        )

    def forward(
        self, x_in: Tensor, c_noise: Tensor, *, context: Tensor, actions: Tensor,
        proprio: Tensor | None = None, context_sigma: Tensor | None = None,
    ) -> Tensor:  # fmt: skip
        """``x_in (B, 3, S, S)`` scaled noisy next frame, ``c_noise (B,)``, ``context (B, num_hist, 3, S, S)``
        in [-1, 1] (noise-augmented), ``actions (B, num_hist, A)``, ``proprio (B, num_hist, P)``,
        ``context_sigma (B,)`` the context-noise level (default 0) -> ``F (B, 3, S, S)``."""
        b = x_in.shape[0]
        cond = [actions.reshape(b, -1)]
        if self.proprio_dim:
            cond.append(proprio.reshape(b, -1))
        if context_sigma is None:
            context_sigma = x_in.new_zeros(b)
        emb = self.cond_in(torch.cat(cond, -1).to(x_in.dtype))
        emb = emb + self.ctx_noise_proj(1000 * context_sigma).to(emb.dtype)
        labels = self.cond_mlp(emb)
        p = self.patch
        ctx = rearrange(context.to(x_in.dtype), "b t c (h p) (w q) -> b (t c p q) h w", p=p, q=p)
        x = torch.cat(
            [ctx, F.pixel_unshuffle(x_in, p)], 1
        )  # pixel_unshuffle: channel order (c, p, q) as above
        return F.pixel_shuffle(self.unet(x, 1000 * c_noise, class_labels=labels).sample, p)


class ProprioHead(nn.Module):
    """Next proprio from the last context frame, the next frame, the actions and the context proprio.

    ``(B, 3, S, S)`` x 2 in [-1, 1], ``actions (B, num_hist, A)``, ``proprio (B, num_hist, P)`` -> ``(B, P)``.
    Strided convolutions down to ``4 x 4``, flattened (position stays), then an MLP.
    """

    def __init__(self, img_size: int, num_hist: int, action_dim: int, proprio_dim: int, width: int = 32):
        super().__init__()
        layers, c, s = [], 6, img_size
        while s > 4:
            layers += [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.SiLU()]
            c, s = width, s // 2
        self.conv = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            nn.Linear(c * s * s + num_hist * (action_dim + proprio_dim), 256), nn.SiLU(),
            nn.Linear(256, proprio_dim),
        )  # fmt: skip

    def forward(self, last: Tensor, nxt: Tensor, actions: Tensor, proprio: Tensor) -> Tensor:
        b = last.shape[0]
        h = self.conv(torch.cat([last, nxt], 1)).reshape(b, -1)
        extra = torch.cat([actions.reshape(b, -1), proprio.reshape(b, -1)], -1)
        return proprio[:, -1] + self.mlp(torch.cat([h, extra.to(h.dtype)], -1))


class VideoWorldModel(Pretrained, nn.Module):
    """Next-frame EDM denoiser + proprio head + normalisation statistics (see the module docstring).

    Args:
        img_size: frame size ``S``.
        num_hist: context frames (DIAMOND: 4).
        action_dim: planning action dimension (``env_action_dim * frameskip``).
        proprio_dim: proprio dimension (0: none).
        frameskip: env steps per model step.
        denoiser: keyword arguments of :class:`FrameDenoiser` besides the shapes (``channels``,
            ``layers_per_block``, ``mid_attention``, ``cond_dim``, ``norm_groups``).
        edm: keyword arguments of :class:`~worldmodels.models.edm.EDM` (``sigma_data``, ``p_mean``, ...).
        sampler: keyword arguments of :class:`~worldmodels.models.edm.SamplerConfig` used by ``rollout``.
        rollout_context_noise: context-noise level the rollout conditions on.
        residual: diffuse the change from the last context frame ``x_next - x_last`` instead of the frame
            (set ``edm.sigma_data`` to the change's standard deviation): an untrained model then copies the last
            frame, and most of a static scene is exactly zero.
        features: planning features ``visual``: ``pixels`` (average-pooled by ``feature_pool``) or
            ``encoder`` (the tokens of ``encoder`` applied to the frames).
        feature_pool: average-pooling factor of the ``pixels`` features.
        encoder: the project encoder for ``features="encoder"`` (frozen; saved with the model).
        encoder_config: ``{"name": ..., "config": {...}}`` to rebuild it.
        stats: ``proprio_mean/std (P,)`` and ``action_mean/std (A,)``; default zeros / ones.
        env_id: the environment the data came from.
        env_action_low / env_action_high: env action bounds ``(A / frameskip,)``.
    """

    model_type = "VideoWorldModel"

    def __init__(
        self,
        img_size: int,
        num_hist: int,
        action_dim: int,
        proprio_dim: int = 0,
        frameskip: int = 1,
        denoiser: dict[str, Any] | None = None,
        edm: dict[str, Any] | None = None,
        sampler: dict[str, Any] | None = None,
        rollout_context_noise: float = 0.0,
        residual: bool = False,
        features: str = "pixels",
        feature_pool: int = 4,
        encoder: Encoder | None = None,
        encoder_config: dict[str, Any] | None = None,
        stats: dict[str, Tensor] | None = None,
        env_id: str = "",
        env_action_low: list[float] | None = None,
        env_action_high: list[float] | None = None,
    ):
        super().__init__()
        for name, value in (("img_size", img_size), ("num_hist", num_hist), ("action_dim", action_dim),
                            ("frameskip", frameskip), ("feature_pool", feature_pool)):  # fmt: skip
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        if action_dim % frameskip:
            raise ValueError(f"action_dim={action_dim} is not a multiple of frameskip={frameskip}")
        if features not in FEATURES:
            raise ValueError(f"features={features!r}; allowed values: {FEATURES}")
        if features == "encoder" and encoder is None:
            raise ValueError("features='encoder' needs an encoder (and its encoder_config)")
        if img_size % feature_pool:
            raise ValueError(f"img_size={img_size} is not divisible by feature_pool={feature_pool}")
        self.img_size, self.num_hist, self.action_dim, self.proprio_dim = (
            img_size,
            num_hist,
            action_dim,
            proprio_dim,
        )
        self.frameskip, self.env_id, self.features, self.feature_pool = (
            frameskip,
            env_id,
            features,
            feature_pool,
        )
        self.denoiser_config, self.edm_config = dict(denoiser or {}), dict(edm or {})
        if "channels" in self.denoiser_config:  # JSON form: a list
            self.denoiser_config["channels"] = [int(c) for c in self.denoiser_config["channels"]]
        self.sampler_config = dict(sampler or {})
        self.rollout_context_noise, self.residual = float(rollout_context_noise), bool(residual)
        self.edm = EDM(**self.edm_config)
        self.sampler = SamplerConfig(**self.sampler_config)
        self.net = FrameDenoiser(img_size, num_hist, action_dim, proprio_dim, **self.denoiser_config)
        self.proprio_head = ProprioHead(img_size, num_hist, action_dim, proprio_dim) if proprio_dim else None
        self.encoder = None if encoder is None else encoder.requires_grad_(False).eval()
        self.encoder_config = encoder_config
        check_action_sizes(action_dim, frameskip, env_action_low, env_action_high)
        env_dim = action_dim // frameskip
        low = env_action_low if env_action_low is not None else [-1.0] * env_dim
        high = env_action_high if env_action_high is not None else [1.0] * env_dim
        self.register_buffer("env_action_low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("env_action_high", torch.as_tensor(high, dtype=torch.float32))
        stats = stats or {}
        defaults = {"proprio_mean": torch.zeros(proprio_dim), "proprio_std": torch.ones(proprio_dim),
                    "action_mean": torch.zeros(action_dim), "action_std": torch.ones(action_dim)}  # fmt: skip
        for key, default in defaults.items():
            value = torch.as_tensor(stats.get(key, default), dtype=torch.float32).clone()
            if value.shape != default.shape:
                raise ValueError(
                    f"stats[{key!r}] has shape {tuple(value.shape)}, expected {tuple(default.shape)}"
                )
            self.register_buffer(key, value)

    def train(self, mode: bool = True) -> VideoWorldModel:
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()  # frozen
        return self

    # ------------------------------------------------------------------ normalisation and action space
    def normalize_proprio(self, proprio: Tensor) -> Tensor:
        return (proprio - self.proprio_mean) / self.proprio_std

    def normalize_action(self, actions: Tensor) -> Tensor:
        """Env actions grouped per model step ``(..., A)`` -> planning actions."""
        return (actions - self.action_mean) / self.action_std

    def action_bounds(self) -> tuple[Tensor, Tensor]:
        """Planning-action bounds ``(A,)`` from the env's action space."""
        low = self.normalize_action(self.env_action_low.repeat(self.frameskip))
        high = self.normalize_action(self.env_action_high.repeat(self.frameskip))
        return low, high

    def to_env_actions(self, actions: Tensor) -> Tensor:
        """Planning actions ``(H, A)`` -> env actions ``(H * frameskip, A / frameskip)``, clamped."""
        env = actions * self.action_std + self.action_mean
        env = rearrange(env, "h (s a) -> (h s) a", s=self.frameskip)
        return torch.maximum(torch.minimum(env, self.env_action_high), self.env_action_low)

    # ------------------------------------------------------------------ features
    def planning_features(self, frames: Tensor) -> Tensor:
        """``frames (B, T, 3, S, S)`` in [-1, 1] -> ``visual (B, T, N, D)``: pooled pixels ``(N = (S/pool)^2,
        D = 3)`` or the encoder's tokens."""
        if self.features == "encoder":
            return self.encoder(((frames.float() + 1) / 2).clamp(0, 1))
        b = frames.shape[0]
        pooled = F.avg_pool2d(rearrange(frames.float(), "b t c h w -> (b t) c h w"), self.feature_pool)
        return rearrange(pooled, "(b t) c h w -> b t (h w) c", b=b)

    # ------------------------------------------------------------------ the API
    def _check_actions(self, actions: Tensor, name: str = "actions") -> None:
        if actions.ndim != 3 or actions.shape[-1] != self.action_dim:
            raise ValueError(
                f"{name} has shape {tuple(actions.shape)}, expected (B, horizon, {self.action_dim}) (action_dim "
                f"= env action dim x frameskip {self.frameskip})"
            )

    @torch.no_grad()
    def encode(self, obs: dict[str, Tensor], past_actions: Tensor | None = None) -> VideoState:
        """Observations -> the context of a rollout (the last ``num_hist`` frames).

        Args:
            obs: ``pixels`` uint8 ``(B, T, 3, S, S)`` with ``T >= num_hist``, raw ``proprio (B, T, P)`` when the
                model has proprio.
            past_actions: normalised planning actions between the frames, ``(B, T-1, A)`` (default zeros).
        """
        pixels = obs["pixels"]
        s = self.img_size
        if pixels.ndim != 5 or pixels.shape[1] < self.num_hist or tuple(pixels.shape[2:]) != (3, s, s):
            raise ValueError(
                f"obs['pixels'] has shape {tuple(pixels.shape)}, expected (B, T >= num_hist={self.num_hist}, "
                f"3, {s}, {s})"
            )
        frames = pixels[:, -self.num_hist :].float() / 127.5 - 1
        proprio = None
        if self.proprio_dim:
            if "proprio" not in obs:
                raise ValueError(
                    f"obs has no 'proprio'; the model expects proprio (B, T, {self.proprio_dim})"
                )
            p = obs["proprio"]
            if p.ndim != 3 or p.shape[-1] != self.proprio_dim or p.shape[1] != pixels.shape[1]:
                raise ValueError(
                    f"obs['proprio'] has shape {tuple(p.shape)}, expected (B, {pixels.shape[1]}, {self.proprio_dim})"
                )
            proprio = self.normalize_proprio(p[:, -self.num_hist :].float())
        if past_actions is not None:
            self._check_actions(past_actions, "past_actions")
            past_actions = past_actions[:, -(self.num_hist - 1) :] if self.num_hist > 1 else None
        return VideoState(frames, proprio, self.planning_features(frames), past_actions)

    def _context_actions(self, state: VideoState, b: int) -> Tensor:
        """``(B, num_hist - 1, A)`` actions before the current one (zeros where unknown)."""
        k = self.num_hist - 1
        past = state.frames.new_zeros(state.batch_size, k, self.action_dim)
        if k and state.past_actions is not None:
            n = min(k, state.past_actions.shape[1])
            past[:, k - n :] = state.past_actions[:, -n:]
        return past.expand(b, -1, -1)

    def predict_next(
        self, context: Tensor, actions: Tensor, proprio: Tensor | None,
        generator: torch.Generator | None = None, sampler: SamplerConfig | None = None,
    ) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """One imagined step for a batch: ``context (B, num_hist, 3, S, S)`` in [-1, 1], ``actions
        (B, num_hist, A)`` (the last one is taken at the last context frame), ``proprio (B, num_hist, P)`` ->
        next frame ``(B, 3, S, S)`` in [-1, 1] and next normalised proprio ``(B, P)``."""
        b = context.shape[0]
        sigma_ctx = self.rollout_context_noise
        cond = {"context": context, "actions": actions, "proprio": proprio,
                "context_sigma": context.new_full((b,), sigma_ctx, dtype=torch.float32)}  # fmt: skip
        shape = (b, 3, self.img_size, self.img_size)
        nxt = self.edm.sample(self.net, shape, sampler or self.sampler, generator, device=context.device,
                              dtype=context.dtype, **cond)  # fmt: skip
        nxt = (context[:, -1] + nxt if self.residual else nxt).clamp(-1, 1)
        p_next = None
        if self.proprio_head is not None:
            p_next = self.proprio_head(context[:, -1], nxt, actions, proprio).to(proprio.dtype)
        return nxt, p_next

    @torch.no_grad()
    def rollout(
        self, state: VideoState, actions: Tensor, *, generator: torch.Generator | None = None,
        sampler: SamplerConfig | None = None,
    ) -> VideoState:  # fmt: skip
        """Imagine ``H`` frames autoregressively for each of ``B`` action sequences.

        Args:
            state: ``encode`` of the context (batch 1 is broadcast to ``B``).
            actions: normalised planning actions ``(B, H, A)``; ``actions[:, 0]`` is taken at the last context
                frame.
            generator: the source of every sampled noise (same generator state: same rollout).
            sampler: override the model's sampler (steps, solver) for this call.

        Returns:
            :class:`VideoState` of the ``H`` imagined frames: ``frames (B, H, 3, S, S)``, ``proprio (B, H, P)``,
            ``visual (B, H, N, D)``.
        """
        self._check_actions(actions)
        b, horizon, _ = actions.shape
        if state.batch_size not in (1, b):
            raise ValueError(f"state has batch {state.batch_size}, expected 1 or the actions' batch {b}")
        ctx = state.frames.to(actions.dtype).expand(b, -1, -1, -1, -1)
        prop = None if state.proprio is None else state.proprio.to(actions.dtype).expand(b, -1, -1)
        acts = torch.cat([self._context_actions(state, b).to(actions.dtype), actions], 1)
        out_f, out_p = [], []
        for h in range(horizon):
            a = acts[:, h : h + self.num_hist]
            nxt, p_next = self.predict_next(ctx, a, prop, generator, sampler)
            out_f.append(nxt)
            ctx = torch.cat([ctx[:, 1:], nxt[:, None]], 1)
            if p_next is not None:
                out_p.append(p_next)
                prop = torch.cat([prop[:, 1:], p_next[:, None]], 1)
        frames = torch.stack(out_f, 1)
        proprio = torch.stack(out_p, 1) if out_p else None
        return VideoState(frames, proprio, self.planning_features(frames))

    @torch.no_grad()
    def decode(self, state: VideoState) -> Tensor:
        """Images ``(B, T, 3, S, S)`` in [0, 1] of a state's frames."""
        return ((state.frames.float() + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ training
    def losses(
        self, frames: Tensor, actions: Tensor, proprio: Tensor | None, generator: torch.Generator | None = None,
        context_noise_max: float = 0.0,
    ) -> dict[str, Tensor]:  # fmt: skip
        """Training losses on a window: ``frames (B, num_hist + 1, 3, S, S)`` in [-1, 1], normalised
        ``actions (B, num_hist, A)`` (taken at the context frames) and ``proprio (B, num_hist + 1, P)``.

        Returns ``denoise`` (EDM's eq. 8 on the last frame, or its change with ``residual``; the context noise-augmented with a level drawn
        uniformly in ``[0, context_noise_max]``), ``proprio`` (MSE of the head on the real frames) and
        ``loss`` (their sum).
        """
        from worldmodels.models.edm import randn

        b = frames.shape[0]
        context, target = frames[:, : self.num_hist], frames[:, self.num_hist]
        x0 = target - context[:, -1] if self.residual else target
        ctx_p = None if proprio is None else proprio[:, : self.num_hist]
        u = torch.rand(b, generator=generator, device=generator.device if generator else None).to(
            frames.device
        )
        sigma_ctx = u * context_noise_max
        noisy_ctx = context + sigma_ctx.view(b, 1, 1, 1, 1) * randn(
            tuple(context.shape), generator, frames.device
        )
        out = {"denoise": self.edm.loss(self.net, x0, generator, context=noisy_ctx, actions=actions,
                                        proprio=ctx_p, context_sigma=sigma_ctx)}  # fmt: skip
        if self.proprio_head is not None:
            pred = self.proprio_head(noisy_ctx[:, -1], target, actions, ctx_p)
            out["proprio"] = F.mse_loss(pred.float(), proprio[:, self.num_hist].float())
        out["loss"] = out["denoise"] + out.get("proprio", 0.0)
        return out

    # ------------------------------------------------------------------ save / load (worldmodels.pretrained)
    def get_config(self) -> dict[str, Any]:
        return {
            "img_size": self.img_size, "num_hist": self.num_hist, "action_dim": self.action_dim,
            "proprio_dim": self.proprio_dim, "frameskip": self.frameskip, "denoiser": self.denoiser_config,
            "edm": self.edm_config, "sampler": self.sampler_config,
            "rollout_context_noise": self.rollout_context_noise, "residual": self.residual,
            "features": self.features,
            "feature_pool": self.feature_pool,
            "encoder_config": None if self.encoder is None
            else {**self.encoder_config, "display_name": self.encoder.name},
            "env_id": self.env_id, "env_action_low": self.env_action_low.tolist(),
            "env_action_high": self.env_action_high.tolist(),
        }  # fmt: skip

    @classmethod
    def from_config(
        cls, config: dict[str, Any], source: str | os.PathLike = "config.json"
    ) -> VideoWorldModel:
        """Rebuild the architecture (the encoder's too; every tensor is then loaded from the weights)."""
        kwargs = check_kwargs(cls, config, source)
        shapes = {"img_size": 1, "num_hist": 1, "action_dim": 1}  # given by the model, not in ``denoiser``
        den = check_kwargs(FrameDenoiser, {**shapes, **(kwargs.get("denoiser") or {})}, source, "denoiser.")
        kwargs["denoiser"] = {k: v for k, v in den.items() if k not in shapes}
        for key, target in (("edm", EDM), ("sampler", SamplerConfig)):
            kwargs[key] = check_kwargs(target, kwargs.get(key) or {}, source, prefix=f"{key}.")
        try:
            enc_cfg = kwargs.get("encoder_config")
            if enc_cfg is not None:
                from worldmodels.models.latent_world_model import _encoder_from_config

                kwargs["encoder"] = _encoder_from_config(enc_cfg, source)
                kwargs["encoder_config"] = {k: v for k, v in enc_cfg.items() if k != "display_name"}
            return cls(**kwargs)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{source}: {err}") from None
