"""``conv_ae``: a small convolutional encoder pre-trained as an autoencoder on the dataset's own frames.

The offline encoder of the CPU profile (no model hub here): stride-2 convolutions turn a 64 px image into
an 8 x 8 grid of ``embed_dim``-dim patch tokens (patch size 8); a mirrored transposed-conv decoder
reconstructs the image and doubles as the decoder for looking at imagined frames.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from worldmodels.encoders.base import Encoder
from worldmodels.pretrained import Pretrained


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.GroupNorm(8, cout), nn.SiLU()
    )


class ConvAEEncoder(Pretrained, Encoder):
    """Convolutional autoencoder with a patch-token interface.

    Args:
        embed_dim: token dimension ``D`` (default 64).
        width: channels of the first conv (doubled once; default 32).
        num_down: stride-2 stages; the patch size is ``2 ** num_down`` (default 3 -> patch 8).
    """

    model_type = "conv_ae"

    def __init__(self, embed_dim: int = 64, width: int = 32, num_down: int = 3):
        super().__init__()
        if num_down < 1 or embed_dim < 8 or width < 8:
            raise ValueError(
                f"num_down={num_down} must be >= 1, embed_dim={embed_dim} and width={width} >= 8"
            )
        self.config = {"embed_dim": embed_dim, "width": width, "num_down": num_down}
        self.patch_size, self.embed_dim = 2**num_down, embed_dim
        chans = [width * min(2**i, 2) for i in range(num_down)]
        enc, cin = [], 3
        for c in chans:
            enc.append(_down(cin, c))
            cin = c
        self.enc = nn.Sequential(*enc, nn.Conv2d(cin, embed_dim, 1))
        dec, cin = [nn.Conv2d(embed_dim, chans[-1], 1), nn.SiLU()], chans[-1]
        for c in reversed(chans):
            dec.append(_up(cin, c))
            cin = c
        self.dec = nn.Sequential(*dec, nn.Conv2d(cin, 3, 3, padding=1))
        self.name = f"conv_ae-d{embed_dim}" + (f"-p{self.patch_size}" if num_down != 3 else "")

    def encode_frames(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, (H/p)*(W/p), D)``."""
        return rearrange(self.enc(images * 2.0 - 1.0), "b d h w -> b (h w) d")

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(..., N, D)`` with a square grid of ``N`` -> images ``(..., 3, H, W)`` in [0, 1]."""
        lead, (n, d) = tokens.shape[:-2], tokens.shape[-2:]
        side = round(n**0.5)
        if side * side != n:
            raise ValueError(f"decode_tokens: {n} tokens do not form a square grid")
        x = rearrange(tokens.reshape(-1, n, d), "b (h w) d -> b d h w", h=side)
        img = (self.dec(x) + 1.0) * 0.5
        return img.reshape(*lead, *img.shape[1:])
