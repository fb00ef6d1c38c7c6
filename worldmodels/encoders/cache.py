"""Feature cache: encode every frame of a dataset once with a frozen encoder.

Stored beside the dataset as derived arrays named ``features/<encoder name>-<weights hash>-<img size>``
(float16), one per episode, each written atomically; a re-run skips finished episodes (resumable).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from tqdm.auto import tqdm

from worldmodels.data.store import EpisodeStore
from worldmodels.encoders.base import Encoder


def cache_key(encoder: Encoder, img_size: int) -> str:
    """The derived-array name of ``encoder``'s features at ``img_size``."""
    return f"features/{encoder.name}-{encoder.weights_hash}-{img_size}"


def prepare_frames(pixels: np.ndarray | torch.Tensor, img_size: int | None) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(T, 3, S, S)`` uint8 channel-first, resized (antialiased) to ``img_size``."""
    x = rearrange(torch.as_tensor(np.array(pixels)), "t h w c -> t c h w")
    if img_size is not None and x.shape[-1] != img_size:
        x = F.interpolate(x.float(), size=(img_size, img_size), mode="bilinear", antialias=True)
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x


@torch.inference_mode()
def build_feature_cache(
    store: EpisodeStore, encoder: Encoder, img_size: int, batch_size: int = 256, progress: bool = True
) -> str:
    """Encode every frame of ``store`` with ``encoder`` (eval mode); returns the cache key."""
    if "pixels" not in store.keys:
        raise ValueError(
            f"{store.root}: key 'pixels' is not in the dataset {store.keys}; a visual encoder needs it"
        )
    key = cache_key(encoder, img_size)
    todo = [e for e in range(len(store)) if not store.has_derived(key, e)]
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    meta = {"encoder": encoder.name, "weights_hash": encoder.weights_hash, "img_size": img_size}
    for e in tqdm(todo, desc=f"cache {key}", unit="ep", disable=not progress or not todo):
        frames = prepare_frames(store.read(e, "pixels"), img_size)
        chunks = [
            encoder(frames[i : i + batch_size][None].to(device))[0] for i in range(0, len(frames), batch_size)
        ]
        store.write_derived(key, e, torch.cat(chunks).to(torch.float16).cpu().numpy(), meta=meta)
    encoder.train(was_training)
    return key
