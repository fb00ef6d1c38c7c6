"""``worldmodels pretrain-encoder`` and ``worldmodels cache-features``.

worldmodels pretrain-encoder --data data/wall --encoder conv_ae --out runs/encoder [--steps 1500]
worldmodels pretrain-encoder --data data/wall --encoder state_ae --out runs/encoder   # needs the 'state' key
worldmodels cache-features --data data/wall --encoder conv_ae --path runs/encoder
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from worldmodels.data.store import EpisodeStore
from worldmodels.devices import resolve_device
from worldmodels.encoders.cache import build_feature_cache, prepare_frames


def _weighted_recon(recon: torch.Tensor, x: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Per-pixel MSE re-weighted towards pixels that differ from the dataset's median frame."""
    weight = 1.0 + 20.0 * (x - background).abs().amax(dim=1, keepdim=True)
    return (weight * (recon - x) ** 2).mean()


def _median_frame(
    store: EpisodeStore, rng: np.random.Generator, img_size: int | None, device
) -> torch.Tensor:
    sample = prepare_frames(
        np.stack([store.read(int(e), "pixels", 0) for e in rng.integers(0, len(store), 64)]), img_size
    )
    return sample.float().median(dim=0).values.to(device) / 255.0


def pretrain_conv_ae(
    store: EpisodeStore,
    *,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 1e-3,
    embed_dim: int = 64,
    num_down: int = 3,
    img_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """Train a :class:`ConvAEEncoder` (patch size ``2 ** num_down``) to reconstruct random frames of ``store`` on ``device``; returns it
    (eval mode, on the CPU).

    The reconstruction loss is a per-pixel MSE re-weighted towards pixels that differ from the dataset's
    median frame, so that small moving objects (the Wall agent is a few pixels) are not ignored.
    """
    from worldmodels.encoders.conv_ae import ConvAEEncoder

    if "pixels" not in store.keys:
        raise ValueError(f"{store.root}: key 'pixels' is not in the dataset {store.keys}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    enc = ConvAEEncoder(embed_dim=embed_dim, num_down=num_down).to(device)
    background = _median_frame(store, rng, img_size, device)

    def step(x, eps, idx):
        recon = enc.decode_tokens(enc.encode_frames(x))
        loss = _weighted_recon(recon, x, background)
        return loss, {"loss": f"{loss.item():.4f}", "mse": f"{F.mse_loss(recon, x).item():.5f}"}

    _train_on_frames(enc, store, rng, step, steps=steps, batch_size=batch_size, lr=lr, img_size=img_size,
                     device=device, desc="pretrain conv_ae", progress=progress)  # fmt: skip
    return enc.cpu().eval()


def _train_on_frames(
    enc, store, rng, step, *, steps, batch_size, lr, img_size, device, desc, progress
) -> None:
    """The pre-training loop the offline encoders share: AdamW + cosine schedule over ``steps`` batches of
    random frames (episode, then time, drawn from ``rng``); ``step(x, eps, idx) -> (loss, postfix)`` is the
    encoder's loss on frames ``x`` (float in [0, 1]) of episodes ``eps`` at times ``idx``."""
    lengths = store.episode_lengths
    opt = torch.optim.AdamW(enc.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    for _ in bar:
        eps = rng.integers(0, len(store), batch_size)
        idx = [int(rng.integers(0, lengths[e] + 1)) for e in eps]
        frames = [store.read(int(e), "pixels", t) for e, t in zip(eps, idx, strict=True)]
        x = prepare_frames(np.stack(frames), img_size).to(device).float() / 255.0
        loss, postfix = step(x, eps, idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(**postfix)


def pretrain_state_ae(
    store: EpisodeStore,
    *,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 1e-3,
    embed_dim: int = 64,
    num_down: int = 3,
    img_size: int | None = None,
    state_weight: float = 1.0,
    code_scale: float = 2.0,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """Train a :class:`StateAEEncoder` on random frames of ``store``: the weighted reconstruction loss of
    :func:`pretrain_conv_ae` plus ``state_weight`` x the MSE between the state code and the frame's
    standardised visible state (:func:`worldmodels.encoders.probe.probe_state`; the dataset needs the
    ``state`` key our collectors store). Returns the encoder (eval mode, on the CPU)."""
    from worldmodels.encoders.probe import probe_state
    from worldmodels.encoders.state_ae import StateAEEncoder

    for key in ("pixels", "state"):
        if key not in store.keys:
            raise ValueError(f"{store.root}: key {key!r} is not in the dataset {store.keys}")
    if not state_weight >= 0:
        raise ValueError(f"state_weight={state_weight} must be >= 0")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    env_id = store.env_id
    ref = np.concatenate([store.read(int(e), "state") for e in rng.integers(0, len(store), 64)])
    ref = probe_state(env_id, ref)
    mean, std = ref.mean(0), ref.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    size = img_size or store.read(0, "pixels", 0).shape[0]
    enc = StateAEEncoder(
        code_dim=ref.shape[1], embed_dim=embed_dim, num_down=num_down, img_size=size, code_scale=code_scale
    )
    enc = enc.to(device)
    background = _median_frame(store, rng, img_size, device)

    def step(x, eps, idx):
        states = np.stack([store.read(int(e), "state", t) for e, t in zip(eps, idx, strict=True)])
        target = torch.as_tensor(
            (probe_state(env_id, states) - mean) / std, dtype=torch.float32, device=device
        )
        tokens, code = enc.encode_with_code(x)
        recon = enc.decode_tokens(tokens)
        rec_loss, state_loss = _weighted_recon(recon, x, background), F.mse_loss(code, target)
        return rec_loss + state_weight * state_loss, {"recon": f"{rec_loss.item():.4f}",
                                                      "state": f"{state_loss.item():.4f}"}  # fmt: skip

    _train_on_frames(enc, store, rng, step, steps=steps, batch_size=batch_size, lr=lr, img_size=img_size,
                     device=device, desc="pretrain state_ae", progress=progress)  # fmt: skip
    return enc.cpu().eval()


def pretrain_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="worldmodels pretrain-encoder", description="Pre-train an offline encoder."
    )
    p.add_argument("--data", required=True, help="dataset directory (with pixels)")
    p.add_argument(
        "--encoder", default="conv_ae", choices=("conv_ae", "state_ae"),
        help="offline encoder to train (state_ae: needs the dataset's 'state' key, see docs/encoders.md)",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output directory (config.json + model.safetensors)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument(
        "--num-down", type=int, default=3,
        help="stride-2 stages: patches of 2**num_down pixels (default 3: 8 x 8 tokens at 64 px; 4: 4 x 4)",
    )  # fmt: skip
    p.add_argument("--img-size", type=int, default=None, help="resize frames (default: dataset size)")
    p.add_argument("--state-weight", type=float, default=1.0, help="state_ae: weight of the state loss")
    p.add_argument("--code-scale", type=float, default=2.0, help="state_ae: code multiplier in the tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device", default="auto", help="torch device (default: auto = the GPU when there is one)"
    )
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    store = EpisodeStore.open(args.data)
    t0 = time.perf_counter()
    if args.num_down < 1:
        p.error(f"--num-down {args.num_down}: must be >= 1")
    common = dict(steps=args.steps, batch_size=args.batch_size, lr=args.lr, embed_dim=args.embed_dim,
                  num_down=args.num_down, img_size=args.img_size, seed=args.seed, device=device)  # fmt: skip
    if args.encoder == "state_ae":
        enc = pretrain_state_ae(store, state_weight=args.state_weight, code_scale=args.code_scale, **common)
    else:
        enc = pretrain_conv_ae(store, **common)
    enc.save_pretrained(args.out)
    print(f"saved {enc.name} to {args.out} ({time.perf_counter() - t0:.0f} s on {device})")
    return 0


def cache_main(argv: list[str]) -> int:
    from worldmodels.encoders import build_encoder

    p = argparse.ArgumentParser(
        prog="worldmodels cache-features", description="Encode a dataset's frames once."
    )
    p.add_argument("--data", required=True)
    p.add_argument("--encoder", required=True, choices=("conv_ae", "state_ae", "dinov2"))
    p.add_argument("--path", default=None, help="conv_ae / state_ae: pre-trained encoder directory")
    p.add_argument("--weights", default="hf-cache", help="dinov2: weights file, 'hf-cache' or 'random'")
    p.add_argument("--model-name", default="vit_small_patch14_dinov2")
    p.add_argument("--img-size", type=int, default=None)
    p.add_argument(
        "--device", default="auto", help="torch device (default: auto = the GPU when there is one)"
    )
    args = p.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        p.error(str(err))
    store = EpisodeStore.open(args.data)
    if args.encoder != "dinov2":
        if args.path is None:
            p.error(f"--path is required for --encoder {args.encoder}")
        enc = build_encoder(args.encoder, path=args.path)
        img_size = args.img_size or store.read(0, "pixels").shape[1]
    else:
        img_size = args.img_size or 224
        enc = build_encoder("dinov2", model_name=args.model_name, weights=args.weights, img_size=img_size)
    key = build_feature_cache(store, enc.to(device), img_size)
    print(json.dumps({"feature_key": key, "episodes": len(store)}))
    return 0
