"""``state_ae``: a convolutional autoencoder whose tokens carry the state (a state-aware auxiliary loss).

Why: with ``conv_ae`` the latent goal distance barely tracks the true distance once the agent's old and new
positions stop overlapping (a few-pixel dot changes the same few tokens wherever it goes), so visual-only
planning fails and a layout or a pushed block that only the pixels show is invisible to the cost (see
docs/encoders.md, the probe table). ``state_ae`` adds a global *state code* to every patch token:

* a conv trunk as ``conv_ae`` (stride-2 convolutions, 64 px -> 8 x 8 patches) gives ``embed_dim - code_dim``
  local channels per patch;
* a head (flatten -> MLP) gives a ``code_dim`` vector trained offline to regress the frame's *visible*
  state (:func:`worldmodels.encoders.probe.probe_state`, standardised; e.g. the agent position, the wall
  layout, the block pose), scaled by ``code_scale`` and appended to every patch token;
* a transposed-conv decoder reconstructs the image from the tokens (both parts), so the imagined frames
  of the plan videos are drawn from the code too.

The state is used only to train the encoder (an auxiliary target, like the reconstruction); planning sees
images only. Training: :func:`worldmodels.encoders.cli.pretrain_state_ae` (``worldmodels pretrain-encoder
--encoder state_ae``).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import nn

from worldmodels.encoders.base import Encoder
from worldmodels.encoders.conv_ae import _down, _up
from worldmodels.pretrained import Pretrained


class StateAEEncoder(Pretrained, Encoder):
    """Autoencoder with a state code appended to every patch token.

    Args:
        code_dim: state-code dimension (the visible state's dimension of the env it is trained on).
        embed_dim: token dimension ``D`` (local channels ``D - code_dim`` + the code; default 64).
        width: channels of the first conv (doubled once; default 32).
        num_down: stride-2 stages; the patch size is ``2 ** num_down`` (default 3 -> patch 8).
        img_size: the square image size the code head is built for (default 64).
        code_scale: multiplier of the code inside the tokens (its weight in the latent distance).
        hidden: hidden size of the code head.
        decoder_code_scale: the code multiplier the decoder was trained with (default: ``code_scale``).
            Tokens are rescaled to it before decoding, so ``code_scale`` of a trained encoder can be changed
            afterwards (:meth:`with_code_scale`) without retraining the decoder.
    """

    model_type = "state_ae"

    def __init__(
        self,
        code_dim: int,
        embed_dim: int = 64,
        width: int = 32,
        num_down: int = 3,
        img_size: int = 64,
        code_scale: float = 2.0,
        hidden: int = 256,
        decoder_code_scale: float | None = None,
    ):
        super().__init__()
        if code_dim < 1 or embed_dim - code_dim < 8 or width < 8 or num_down < 1 or hidden < 1:
            raise ValueError(
                f"code_dim={code_dim} must be >= 1 and leave >= 8 local channels of embed_dim={embed_dim}; "
                f"width={width} >= 8, num_down={num_down} >= 1, hidden={hidden} >= 1"
            )
        if img_size % 2**num_down:
            raise ValueError(f"img_size={img_size} is not divisible by the patch size {2**num_down}")
        decoder_code_scale = code_scale if decoder_code_scale is None else decoder_code_scale
        if not (code_scale > 0 and decoder_code_scale > 0):
            raise ValueError(
                f"code_scale={code_scale} and decoder_code_scale={decoder_code_scale} must be > 0"
            )
        self.config = {"code_dim": code_dim, "embed_dim": embed_dim, "width": width, "num_down": num_down,
                       "img_size": img_size, "code_scale": code_scale, "hidden": hidden,
                       "decoder_code_scale": decoder_code_scale}  # fmt: skip
        self.decoder_code_scale = float(decoder_code_scale)
        self.patch_size, self.embed_dim, self.code_dim = 2**num_down, embed_dim, code_dim
        self.grid = img_size // self.patch_size
        self.code_scale = float(code_scale)
        chans = [width * min(2**i, 2) for i in range(num_down)]
        enc, cin = [], 3
        for c in chans:
            enc.append(_down(cin, c))
            cin = c
        self.trunk = nn.Sequential(*enc)
        self.local = nn.Conv2d(cin, embed_dim - code_dim, 1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * self.grid**2, hidden), nn.SiLU(), nn.Linear(hidden, code_dim)
        )
        dec, cin = [nn.Conv2d(embed_dim, chans[-1], 1), nn.SiLU()], chans[-1]
        for c in reversed(chans):
            dec.append(_up(cin, c))
            cin = c
        self.dec = nn.Sequential(*dec, nn.Conv2d(cin, 3, 3, padding=1))
        # the scale is not in the weights: it must be in the name (the feature-cache key)
        self.name = f"state_ae-d{embed_dim}-c{code_dim}-s{code_scale:g}" + (
            f"-p{self.patch_size}" if num_down != 3 else ""
        )

    def check_size(self, height: int, width: int) -> None:
        super().check_size(height, width)
        if height != self.grid * self.patch_size or width != height:
            size = self.grid * self.patch_size
            raise ValueError(f"{self.name}: built for {size}x{size} images, got {height}x{width}")

    def with_code_scale(self, code_scale: float) -> StateAEEncoder:
        """A copy whose tokens carry the code times ``code_scale`` (same weights and decoded images)."""
        out = type(self)(**{**self.config, "code_scale": code_scale})
        out.load_state_dict(self.state_dict())
        return out.train(self.training)

    def encode_with_code(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> tokens ``(B, N, D)`` and the unscaled state code ``(B, code_dim)``."""
        h = self.trunk(images * 2.0 - 1.0)
        code = self.head(h)
        local = rearrange(self.local(h), "b d h w -> b (h w) d")
        tiled = repeat(code * self.code_scale, "b c -> b n c", n=local.shape[1])
        return torch.cat([local, tiled], -1), code

    def encode_frames(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, (H/p)*(W/p), D)``."""
        return self.encode_with_code(images)[0]

    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(..., N, D)`` with a square grid of ``N`` -> images ``(..., 3, H, W)`` in [0, 1]."""
        lead, (n, d) = tokens.shape[:-2], tokens.shape[-2:]
        side = round(n**0.5)
        if side * side != n:
            raise ValueError(f"decode_tokens: {n} tokens do not form a square grid")
        tokens = tokens.reshape(-1, n, d)
        factor = self.decoder_code_scale / self.code_scale
        if factor != 1.0:
            tokens = torch.cat([tokens[..., : -self.code_dim], tokens[..., -self.code_dim :] * factor], -1)
        x = rearrange(tokens, "b (h w) d -> b d h w", h=side)
        img = (self.dec(x) + 1.0) * 0.5
        return img.reshape(*lead, *img.shape[1:])
