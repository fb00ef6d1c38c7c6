"""The latent world model (DINO-WM): frozen visual encoder + block-causal ViT predictor.

Implements :class:`worldmodels.api.WorldModel`: ``encode`` observations once, ``rollout`` many candidate
action sequences with a KV cache, ``action_bounds`` / ``to_env_actions`` for planners, ``decode`` for
looking at imagined frames. Saves and loads through :mod:`worldmodels.pretrained` (``config.json`` +
``model.safetensors``; ``worldmodels.load_pretrained(dir)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import nn

from worldmodels.encoders.base import Encoder
from worldmodels.models import check_action_sizes
from worldmodels.models.latent_predictor import KVCache, LatentPredictor
from worldmodels.pretrained import Pretrained, check_kwargs


@dataclass
class LatentState:
    """Latent frames: ``visual (B, T, N, D)``, normalised ``proprio (B, T, P)`` (or None), and the
    normalised actions taken between the frames, ``past_actions (B, T-1, A)`` (or None: zeros)."""

    visual: torch.Tensor
    proprio: torch.Tensor | None = None
    past_actions: torch.Tensor | None = None

    def __getitem__(self, index) -> LatentState:
        pick = lambda x: None if x is None else x[index]  # noqa: E731
        return LatentState(pick(self.visual), pick(self.proprio), pick(self.past_actions))

    @property
    def batch_size(self) -> int:
        return self.visual.shape[0]


def _encoder_from_config(cfg: dict[str, Any], source: str | os.PathLike = "config.json") -> Encoder:
    """The encoder's architecture from ``config.json``'s ``encoder`` field (its weights are the model's)."""
    if cfg["name"] in ("conv_ae", "state_ae"):
        from worldmodels.encoders import offline_encoder_class

        cls = offline_encoder_class(cfg["name"])
        return cls(**check_kwargs(cls, cfg["config"], source, prefix="encoder.config."))
    if cfg["name"] == "dinov2":
        from worldmodels.encoders.dinov2 import DinoV2Encoder

        kwargs = check_kwargs(DinoV2Encoder, cfg["config"], source, prefix="encoder.config.")
        enc = DinoV2Encoder(**{**kwargs, "weights": "random"})  # weights: model.safetensors
        enc.name = cfg.get("display_name", enc.name)  # the recorded name (which weights were loaded)
        return enc
    raise ValueError(f"{source}: encoder {cfg['name']!r} is not known; allowed: conv_ae, state_ae, dinov2")


class LatentWorldModel(Pretrained, nn.Module):
    """Encoder + predictor + normalisation statistics.

    Args:
        encoder: the (frozen) visual encoder.
        encoder_config: ``{"name": ..., "config": {...}}`` to rebuild the encoder's architecture.
        predictor_config: keyword arguments of :class:`LatentPredictor`.
        stats: ``proprio_mean/std (P,)`` and ``action_mean/std (A * frameskip,)``.
        frameskip: env steps per model step.
        num_hist: history frames the model was trained with (minimum context for planning).
        img_size: image size the encoder expects.
        env_id: the environment the data came from.
        env_action_low / env_action_high: env action bounds ``(A,)``.
    """

    model_type = "LatentWorldModel"

    def __init__(
        self,
        encoder: Encoder,
        encoder_config: dict[str, Any],
        predictor_config: dict[str, Any],
        stats: dict[str, torch.Tensor],
        frameskip: int,
        num_hist: int,
        img_size: int,
        env_id: str = "",
        env_action_low: list[float] | None = None,
        env_action_high: list[float] | None = None,
    ):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.predictor = LatentPredictor(**predictor_config)
        self.encoder_config, self.predictor_config = encoder_config, dict(predictor_config)
        self.frameskip, self.num_hist, self.img_size, self.env_id = frameskip, num_hist, img_size, env_id
        self.action_dim = predictor_config["action_dim"]
        check_action_sizes(
            self.action_dim, frameskip, env_action_low, env_action_high, "predictor.action_dim"
        )
        patches = encoder.num_patches(img_size, img_size)
        if patches != predictor_config["num_patches"]:
            raise ValueError(
                f"img_size={img_size} gives {patches} patches with the encoder, predictor.num_patches is "
                f"{predictor_config['num_patches']}"
            )
        env_dim = self.action_dim // frameskip
        low = torch.as_tensor(
            env_action_low if env_action_low is not None else [-1.0] * env_dim, dtype=torch.float32
        )
        high = torch.as_tensor(
            env_action_high if env_action_high is not None else [1.0] * env_dim, dtype=torch.float32
        )
        self.register_buffer("env_action_low", low)
        self.register_buffer("env_action_high", high)
        for key in ("proprio_mean", "proprio_std", "action_mean", "action_std"):
            self.register_buffer(key, torch.as_tensor(stats[key], dtype=torch.float32).clone())

    def train(self, mode: bool = True) -> LatentWorldModel:
        super().train(mode)
        self.encoder.eval()  # frozen
        return self

    # ------------------------------------------------------------------ normalisation
    def normalize_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        return (proprio - self.proprio_mean) / self.proprio_std

    def normalize_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Env actions grouped per model step ``(..., A * frameskip)`` -> planning actions."""
        return (actions - self.action_mean) / self.action_std

    def action_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Planning-action bounds ``(A * frameskip,)`` from the env's action space."""
        low = self.normalize_action(self.env_action_low.repeat(self.frameskip))
        high = self.normalize_action(self.env_action_high.repeat(self.frameskip))
        return low, high

    def to_env_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Planning actions ``(H, A * frameskip)`` -> env actions ``(H * frameskip, A)``, clamped."""
        env = actions * self.action_std + self.action_mean
        env = rearrange(env, "h (s a) -> (h s) a", s=self.frameskip)
        return torch.maximum(torch.minimum(env, self.env_action_high), self.env_action_low)

    # ------------------------------------------------------------------ the API
    @torch.no_grad()
    def encode(self, obs: dict[str, torch.Tensor], past_actions: torch.Tensor | None = None) -> LatentState:
        """Observations -> latent state.

        Args:
            obs: ``pixels`` uint8 ``(B, T, 3, H, W)`` (or ``features (B, T, N, D)`` from a feature cache)
                and raw ``proprio (B, T, P)``.
            past_actions: normalised actions between the T frames, ``(B, T-1, A * frameskip)``.
        """
        if "features" in obs:
            visual = obs["features"].float()
        else:
            pixels = obs["pixels"]
            if pixels.shape[-1] != self.img_size:
                raise ValueError(
                    f"obs['pixels'] has size {tuple(pixels.shape[-2:])}, the model expects {self.img_size}"
                )
            visual = self.encoder(pixels)
        proprio = self.normalize_proprio(obs["proprio"].float()) if self.predictor.P else None
        return LatentState(visual, proprio, past_actions)

    def rollout(self, state: LatentState, actions: torch.Tensor) -> LatentState:
        """Imagine ``H`` frames for each of ``B`` action sequences, with a KV cache.

        Args:
            state: history of ``T`` frames; batch 1 is broadcast to ``B`` (encoded once, never copied).
            actions: normalised planning actions ``(B, H, A * frameskip)``; ``actions[:, 0]`` is taken at the
                last history frame.

        Returns:
            ``LatentState`` with the ``H`` predicted frames (``visual (B, H, N, D)``, ``proprio (B, H, P)``).
        """
        b, horizon, _ = actions.shape
        t_hist = state.visual.shape[1]
        max_frames = self.predictor.max_frames
        if t_hist > max_frames:  # keep the newest max_frames frames of a long history
            state = LatentState(
                state.visual[:, -max_frames:],
                None if state.proprio is None else state.proprio[:, -max_frames:],
                None if state.past_actions is None else state.past_actions[:, -(max_frames - 1) :],
            )
            t_hist = max_frames
        past = state.past_actions
        if past is None:
            past = actions.new_zeros(state.batch_size, t_hist - 1, self.action_dim)
        cache: KVCache | None = None
        room = min(max_frames, t_hist + horizon - 1)  # frames in the context at the last imagined step
        if t_hist > 1:  # history except its last frame: independent of the candidates, at the state's batch
            _, _, cache = self.predictor.step(
                state.visual[:, :-1],
                None if state.proprio is None else state.proprio[:, :-1],
                past,
                None,
                capacity=room if state.batch_size == b else 0,
            )
        # the whole sequence so far (for sliding when the context outgrows max_frames)
        seq_v = list(state.visual.unbind(1))
        seq_p = None if state.proprio is None else list(state.proprio.unbind(1))
        seq_a = list(past.unbind(1))
        vis = state.visual[:, -1:].expand(b, -1, -1, -1)
        prop = None if state.proprio is None else state.proprio[:, -1:].expand(b, -1, -1)
        out_v, out_p = [], []
        for h in range(horizon):
            act = actions[:, h : h + 1]
            if cache is not None and cache.num_frames + 1 > max_frames:
                # slide: recompute the last max_frames - 1 frames (exact under the sliding semantics)
                keep = max_frames - 1
                v_ctx = torch.stack([x.expand(b, *x.shape[1:]) for x in seq_v[-keep - 1 : -1]], 1)
                p_ctx = (
                    None
                    if seq_p is None
                    else torch.stack([x.expand(b, -1) for x in seq_p[-keep - 1 : -1]], 1)
                )
                a_ctx = torch.stack([x.expand(b, -1) for x in seq_a[-keep:]], 1)
                _, _, cache = self.predictor.step(v_ctx, p_ctx, a_ctx, None, capacity=max_frames)
            pv, pp, cache = self.predictor.step(vis, prop, act, cache, capacity=room)
            out_v.append(pv[:, 0])
            seq_a.append(act[:, 0])
            seq_v.append(pv[:, 0])
            if pp is not None:
                out_p.append(pp[:, 0])
                seq_p.append(pp[:, 0])
            vis, prop = pv, pp
        return LatentState(torch.stack(out_v, 1), torch.stack(out_p, 1) if out_p else None)

    def rollout_bytes_per_sample(self, state: LatentState, horizon: int, itemsize: int = 4) -> int:
        """Memory one candidate's :meth:`rollout` of ``horizon`` steps from ``state`` holds at its peak: its
        KV cache (keys and values of every layer for the whole context it grows to), the largest per-step
        activations and the predicted frames; for choosing a chunk size from a memory budget
        (:func:`planners.objectives.make_cost_fn` ``chunk_size="auto"``)."""
        pc = self.predictor_config
        n, width = self.predictor.N, pc.get("width", 256)
        heads, head_dim, mlp = pc.get("heads", 8), pc.get("head_dim", 32), pc.get("mlp_dim", 512)
        frames = min(self.predictor.max_frames, state.visual.shape[1] + horizon - 1)
        cache = len(self.predictor.blocks) * 2 * heads * head_dim * frames * n
        step = n * (3 * heads * head_dim + mlp + 4 * width)
        out = horizon * n * (self.predictor.D + self.predictor.P)
        return (cache + step + out) * itemsize

    def rollout_naive(self, state: LatentState, actions: torch.Tensor) -> LatentState:
        """Reference rollout: recompute the whole sequence with the full forward at every imagined step
        (what DINO-WM's planner does), attention through the explicit block-causal mask. Same semantics as
        :meth:`rollout`, for tests and benchmarks."""
        b, horizon, _ = actions.shape
        max_frames = self.predictor.max_frames
        v = state.visual.expand(b, -1, -1, -1)
        p = None if state.proprio is None else state.proprio.expand(b, -1, -1)
        t_hist = v.shape[1]
        past = state.past_actions
        if past is None:
            past = actions.new_zeros(1, t_hist - 1, self.action_dim)
        a = past.expand(b, -1, -1)
        out_v, out_p = [], []
        for h in range(horizon):
            a = torch.cat([a, actions[:, h : h + 1]], 1)
            s = slice(-max_frames, None)
            pv, pp = self.predictor(v[:, s], None if p is None else p[:, s], a[:, s], reference=True)
            out_v.append(pv[:, -1])
            v = torch.cat([v, pv[:, -1:]], 1)
            if pp is not None:
                out_p.append(pp[:, -1])
                p = torch.cat([p, pp[:, -1:]], 1)
        return LatentState(torch.stack(out_v, 1), torch.stack(out_p, 1) if out_p else None)

    @torch.no_grad()
    def decode(self, state: LatentState) -> torch.Tensor | None:
        """Images ``(B, T, 3, H, W)`` in [0, 1] from latent frames, when the encoder has a decoder."""
        if not hasattr(self.encoder, "decode_tokens"):
            return None
        return self.encoder.decode_tokens(state.visual.float()).clamp(0, 1)

    # ------------------------------------------------------------------ save / load (worldmodels.pretrained)
    def get_config(self) -> dict[str, Any]:
        return {
            "encoder": {**self.encoder_config, "display_name": self.encoder.name},
            "predictor": self.predictor_config,
            "frameskip": self.frameskip,
            "num_hist": self.num_hist,
            "img_size": self.img_size,
            "env_id": self.env_id,
            "env_action_low": self.env_action_low.tolist(),
            "env_action_high": self.env_action_high.tolist(),
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], source: str | os.PathLike = "config.json"
    ) -> LatentWorldModel:
        """Rebuild the architecture (encoder included; its weights come with the model's) with placeholder
        statistics: :func:`worldmodels.load_pretrained` then loads every tensor over them."""
        fields = {"encoder": dict, "predictor": dict, "frameskip": int, "num_hist": int, "img_size": int}
        for key, kind in fields.items():
            if key not in config:
                raise ValueError(f"{source}: field {key!r} is missing (required by {cls.__name__})")
            if not isinstance(config[key], kind) or isinstance(config[key], bool):
                raise ValueError(f"{source}: field {key!r} is {config[key]!r}, expected {kind.__name__}")
        known = {*fields, "env_id", "env_action_low", "env_action_high"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown field {unknown[0]!r} for {cls.__name__}; its fields are {sorted(known)}"
            )
        enc_cfg = config["encoder"]
        if not isinstance(enc_cfg.get("config"), dict) or "name" not in enc_cfg:
            raise ValueError(f"{source}: field 'encoder' needs 'name' and a 'config' object, got {enc_cfg!r}")
        predictor = check_kwargs(LatentPredictor, config["predictor"], source, prefix="predictor.")
        try:
            encoder = _encoder_from_config(enc_cfg, source)
            p_dim, a_dim = predictor.get("proprio_dim", 0), predictor["action_dim"]
            stats = {
                "proprio_mean": torch.zeros(p_dim), "proprio_std": torch.ones(p_dim),
                "action_mean": torch.zeros(a_dim), "action_std": torch.ones(a_dim),
            }  # fmt: skip
            return cls(
                encoder, {k: v for k, v in enc_cfg.items() if k != "display_name"}, predictor, stats,
                config["frameskip"], config["num_hist"], config["img_size"], config.get("env_id", ""),
                config.get("env_action_low"), config.get("env_action_high"),
            )  # fmt: skip
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{source}: {err}") from None
