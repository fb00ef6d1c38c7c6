"""DINOv2 patch (or CLS) tokens through timm, with weights from a local file or the HF cache, offline.

``weights`` is one of:

* a path to a state dict (``.safetensors``, or a ``torch.save`` file loaded with ``weights_only=True``)
  in timm's layout or the official DINOv2 layout (converted with timm's own filter);
* ``"hf-cache"``: timm's pretrained weights from the local Hugging Face cache, looked up locally and loaded
  from the file (no network call ever; a missing cache entry fails at once, :func:`hf_cached_weights`);
* ``"random"``: random initialisation, only when asked for by name (the encoder's ``name`` says so).
"""

from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from timm.models.vision_transformer import checkpoint_filter_fn

from worldmodels.encoders.base import Encoder

MEAN = STD = (0.5, 0.5, 0.5)  # DINO-WM's normalisation


def _how_to_provide(model_name: str) -> str:
    return (
        f"provide DINOv2 weights for {model_name!r} as weights=PATH (a timm or official DINOv2 state dict, "
        f".safetensors or .pth), or put timm's weights into the Hugging Face cache (HF_HOME) and pass "
        f"weights='hf-cache', or pass weights='random' to use random weights on purpose"
    )


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``, never unpickled)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "teacher"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    return sd


def hf_cached_weights(model_name: str) -> str:
    """The path of timm's weights for ``model_name`` in the local Hugging Face cache, found without any network
    call (``huggingface_hub.try_to_load_from_cache``); ``FileNotFoundError`` at once when they are not there.

    (Setting ``HF_HUB_OFFLINE`` here would come too late: ``huggingface_hub`` reads it when first imported,
    and timm imports it, so a hub lookup would retry the network for about a minute before failing.)"""
    from huggingface_hub import try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    if cfg is None or not cfg.hf_hub_id:
        raise FileNotFoundError(
            f"{model_name!r} has no Hugging Face hub entry in timm; {_how_to_provide(model_name)}"
        )
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    for name in names:
        path = try_to_load_from_cache(cfg.hf_hub_id, name)
        if isinstance(path, str):
            return path
    raise FileNotFoundError(
        f"DINOv2 weights not in the local HF cache (no {' or '.join(names)} of {cfg.hf_hub_id}); "
        f"{_how_to_provide(model_name)}"
    )


class DinoV2Encoder(Encoder):
    """Frozen-by-default DINOv2 ViT through timm.

    Args:
        model_name: timm model name (``vit_small_patch14_dinov2``, ``vit_base_patch14_dinov2``, ...).
        weights: path, ``"hf-cache"`` or ``"random"`` (see the module docstring).
        img_size: input size (a multiple of 14; DINO-WM uses 224).
        output: ``"patch"`` (``(N, D)`` normalised patch tokens, default) or ``"cls"`` (``(1, D)``).
    """

    def __init__(
        self,
        model_name: str = "vit_small_patch14_dinov2",
        weights: str = "hf-cache",
        img_size: int = 224,
        output: str = "patch",
    ):
        super().__init__()
        if output not in ("patch", "cls"):
            raise ValueError(f"output={output!r}; allowed values: 'patch', 'cls'")
        if img_size % 14:
            raise ValueError(f"img_size={img_size} is not divisible by the DINOv2 patch size 14")
        self.config = {
            "model_name": model_name,
            "weights": str(weights),
            "img_size": img_size,
            "output": output,
        }
        kwargs = {"img_size": img_size, "num_classes": 0}
        if weights == "hf-cache":
            cached = hf_cached_weights(model_name)  # local lookup only: a missing entry fails at once
            self.vit = timm.create_model(
                model_name, pretrained=True, pretrained_cfg_overlay={"file": cached}, **kwargs
            )
        else:
            self.vit = timm.create_model(model_name, pretrained=False, **kwargs)
            if weights != "random":
                if not Path(weights).is_file():
                    raise FileNotFoundError(
                        f"weights={weights!r}: no such file; {_how_to_provide(model_name)}"
                    )
                sd = load_state_dict_file(weights)
                sd = checkpoint_filter_fn(sd, self.vit)
                missing, unexpected = self.vit.load_state_dict(sd, strict=False)
                missing = [k for k in missing if not k.startswith("head")]
                if missing or unexpected:
                    raise ValueError(
                        f"{weights}: not a {model_name} state dict (missing {missing[:3]}, unexpected {unexpected[:3]})"
                    )
        self.patch_size = self.vit.patch_embed.patch_size[0]
        self.embed_dim = self.vit.embed_dim
        self.output = output
        tag = "random-weights" if weights == "random" else "pretrained"
        self.name = f"dinov2-{model_name}-{output}-{tag}"
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def num_patches(self, height: int, width: int) -> int:
        return 1 if self.output == "cls" else super().num_patches(height, width)

    def encode_frames(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, N, D)`` normalised patch tokens (or ``(B, 1, D)`` CLS)."""
        tokens = self.vit.forward_features((images - self.mean) / self.std)
        prefix = self.vit.num_prefix_tokens
        return tokens[:, :1] if self.output == "cls" else tokens[:, prefix:]
