"""Visual encoders with one interface (images -> patch tokens), chosen explicitly by name.

* ``conv_ae``: the offline encoder this project pre-trains on a dataset's own frames
  (``worldmodels pretrain-encoder``), used by the CPU profiles.
* ``dinov2``: DINOv2 through timm, weights from a local file or the HF cache (GPU profiles, DINO-WM).

The feature cache (:mod:`worldmodels.encoders.cache`) runs a frozen encoder once per frame.
"""

from __future__ import annotations

from typing import Any

from worldmodels.encoders.base import Encoder

ENCODERS = ("conv_ae", "dinov2")


def build_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build an encoder by name. ``conv_ae`` with ``path=DIR`` loads a pre-trained one."""
    if name == "conv_ae":
        from worldmodels.encoders.conv_ae import ConvAEEncoder

        path = kwargs.pop("path", None)
        return ConvAEEncoder.from_pretrained(path) if path else ConvAEEncoder(**kwargs)
    if name == "dinov2":
        from worldmodels.encoders.dinov2 import DinoV2Encoder

        return DinoV2Encoder(**kwargs)
    raise ValueError(f"encoder {name!r} is not known; allowed values: {ENCODERS}")


__all__ = ["ENCODERS", "Encoder", "build_encoder"]
