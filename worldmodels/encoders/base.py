"""The visual-encoder interface: images ``(B, T, 3, H, W)`` in [0, 1] -> tokens ``(B, T, N, D)``."""

from __future__ import annotations

import hashlib

import torch
from einops import rearrange
from torch import nn


class Encoder(nn.Module):
    """Base class of every visual encoder.

    Subclasses implement :meth:`encode_frames` on ``(B, 3, H, W)`` images in [0, 1] (they apply their
    own normalisation) and set ``patch_size``, ``embed_dim`` and ``name``.
    """

    patch_size: int
    embed_dim: int
    name: str

    def num_patches(self, height: int, width: int) -> int:
        """Tokens per frame for an ``height x width`` image."""
        self.check_size(height, width)
        return (height // self.patch_size) * (width // self.patch_size)

    def check_size(self, height: int, width: int) -> None:
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"{self.name}: image size {height}x{width} is not divisible by the patch size {self.patch_size}"
            )

    def encode_frames(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, N, D)``."""
        raise TypeError(f"{type(self).__name__} must implement encode_frames")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` float in [0, 1] (or uint8 in [0, 255]) -> ``(B, T, N, D)``."""
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        b = images.shape[0]
        self.check_size(*images.shape[-2:])
        tokens = self.encode_frames(rearrange(images, "b t c h w -> (b t) c h w"))
        return rearrange(tokens, "(b t) n d -> b t n d", b=b)

    @property
    def weights_hash(self) -> str:
        """Short sha256 over the weights (names, shapes, bytes): the feature-cache key."""
        h = hashlib.sha256()
        for k, v in sorted(self.state_dict().items()):
            h.update(k.encode())
            h.update(str(tuple(v.shape)).encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:12]
