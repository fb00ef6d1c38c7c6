"""Visual encoders with one interface (images -> patch tokens), chosen explicitly by name.

* ``conv_ae``: the offline encoder this project pre-trains on a dataset's own frames
  (``worldmodels pretrain-encoder``), used by the CPU profiles.
* ``state_ae``: ``conv_ae`` plus a state code on every token, trained with the dataset's simulator state as
  an auxiliary target (the offline encoder whose latent distance tracks the state; docs/encoders.md).
* ``dinov2``: DINOv2 through timm, weights from a local file or the HF cache (GPU profiles, DINO-WM).

The feature cache (:mod:`worldmodels.encoders.cache`) runs a frozen encoder once per frame.
"""

from __future__ import annotations

from typing import Any

from worldmodels.encoders.base import Encoder

ENCODERS = ("conv_ae", "state_ae", "dinov2")
#: encoders trained by this project (``worldmodels pretrain-encoder``), loaded from a directory
OFFLINE_ENCODERS = ("conv_ae", "state_ae")


def build_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build an encoder by name. ``conv_ae`` / ``state_ae`` with ``path=DIR`` load a pre-trained one."""
    if name in OFFLINE_ENCODERS:
        cls = offline_encoder_class(name)
        path = kwargs.pop("path", None)
        return cls.from_pretrained(path) if path else cls(**kwargs)
    if name == "dinov2":
        from worldmodels.encoders.dinov2 import DinoV2Encoder

        return DinoV2Encoder(**kwargs)
    raise ValueError(f"encoder {name!r} is not known; allowed values: {ENCODERS}")


def offline_encoder_class(name: str) -> type:
    """The class of an offline encoder (``conv_ae`` or ``state_ae``)."""
    if name == "conv_ae":
        from worldmodels.encoders.conv_ae import ConvAEEncoder

        return ConvAEEncoder
    if name == "state_ae":
        from worldmodels.encoders.state_ae import StateAEEncoder

        return StateAEEncoder
    raise ValueError(f"offline encoder {name!r} is not known; allowed values: {OFFLINE_ENCODERS}")


__all__ = ["ENCODERS", "OFFLINE_ENCODERS", "Encoder", "build_encoder", "offline_encoder_class"]
