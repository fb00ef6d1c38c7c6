"""Encoder probe: does an encoder's token space carry the state well enough to plan with?

Two numbers per (env, encoder), measured on frames of a dataset with a ``state`` key (our collectors store
``get_state()`` with every frame) and held-out episodes:

* ``spearman``: Spearman rank correlation, over random pairs of frames, between the latent goal distance the
  planners use (mean squared difference of the patch tokens, the visual term of the cost) and the true
  distance between the frames' *visible* states (:func:`probe_state`, each dimension standardised). 1 means
  "closer in latent space" always means "closer in the world", which is what a visual goal cost needs.
* ``r2``: a linear (ridge) probe from the flattened tokens to the visible state, fitted on the frames of
  some episodes and scored on the frames of the others (held-out coefficient of determination, mean over
  the state dimensions).

The visible state drops what one frame cannot show (velocities) and what the task does not need:

=============================  =============================================================================
env                            visible state
=============================  =============================================================================
``Wall``                       agent ``(x, y)``
``WallRandom``                 agent ``(x, y)`` and layout ``(wall_x, door_center, door_height)``
``PointMaze*``                 ball ``(x, y)``
``Reacher``                    link directions ``(cos q0, sin q0, cos(q0+q1), sin(q0+q1))`` (the fingertip
                               is a linear function of them)
``PushT``                      agent ``(x, y)``, block ``(x, y)``, block angle as ``(cos, sin)``
=============================  =============================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from worldmodels.data.store import EpisodeStore
from worldmodels.encoders.base import Encoder
from worldmodels.encoders.cache import prepare_frames


def _reacher(s: np.ndarray) -> np.ndarray:
    q0, q01 = s[:, 0], s[:, 0] + s[:, 1]
    return np.stack([np.cos(q0), np.sin(q0), np.cos(q01), np.sin(q01)], 1)


def _pusht(s: np.ndarray) -> np.ndarray:
    return np.concatenate([s[:, [0, 1, 4, 5]], np.cos(s[:, 6:7]), np.sin(s[:, 6:7])], 1)


#: env id -> (visible-state function of ``(N, state_dim)`` states, names of its dimensions)
PROBE_STATES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[str, ...]]] = {
    "worldmodels/Wall-v0": (lambda s: s[:, :2], ("x", "y")),
    "worldmodels/WallRandom-v0": (lambda s: s[:, :5], ("x", "y", "wall_x", "door_center", "door_height")),
    "worldmodels/PointMazeUMaze-v0": (lambda s: s[:, :2], ("x", "y")),
    "worldmodels/PointMazeMedium-v0": (lambda s: s[:, :2], ("x", "y")),
    "worldmodels/Reacher-v0": (_reacher, ("cos_q0", "sin_q0", "cos_q01", "sin_q01")),
    "worldmodels/PushT-v0": (_pusht, ("agent_x", "agent_y", "block_x", "block_y", "cos_a", "sin_a")),
}


def probe_state(env_id: str, states: np.ndarray) -> np.ndarray:
    """The visible state ``(N, k)`` float64 of ``(N, state_dim)`` simulator states of ``env_id``."""
    if env_id not in PROBE_STATES:
        raise ValueError(f"env {env_id!r} has no visible-state definition; known: {sorted(PROBE_STATES)}")
    states = np.asarray(states, np.float64)
    if states.ndim != 2:
        raise ValueError(f"states must be (N, state_dim), got shape {states.shape}")
    return PROBE_STATES[env_id][0](states)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks ``0..n-1`` with ties given their mean rank."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    sorted_x = x[order]
    # average the ranks of tied runs
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for a, b in zip(starts, ends, strict=True):
        if b - a > 1:
            ranks[order[a:b]] = (a + b - 1) / 2.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two 1-D arrays (0.0 when either is constant)."""
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def _ridge_dual(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Dual ridge weights ``(n, k)`` on centred ``x`` ``(n, f)``: predictions are ``x_new @ x.T @ w``."""
    gram = x @ x.T
    return np.linalg.solve(gram + alpha * np.eye(len(x)), y)


def r2_score(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-dimension coefficient of determination ``(k,)``."""
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    return 1.0 - ss_res / np.maximum(ss_tot, 1e-12)


def ridge_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Fit ridge ``x -> y`` (alpha chosen on a 20% split of the training rows) and return the held-out
    per-dimension R^2 and the chosen alpha."""
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    y_train, y_test = np.asarray(y_train, np.float64), np.asarray(y_test, np.float64)
    mx, my = x_train.mean(0), y_train.mean(0)
    xc, yc = x_train - mx, y_train - my
    scale = float(np.einsum("ij,ij->", xc, xc) / len(xc)) or 1.0
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(xc))
    n_val = max(1, len(xc) // 5)
    val, fit = perm[:n_val], perm[n_val:]
    best, best_alpha = -np.inf, scale
    for rel in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0):
        alpha = rel * scale
        xf = xc[fit] - xc[fit].mean(0)
        w = _ridge_dual(xf, yc[fit] - yc[fit].mean(0), alpha)
        pred = (xc[val] - xc[fit].mean(0)) @ xf.T @ w + yc[fit].mean(0)
        score = float(r2_score(yc[val], pred).mean())
        if score > best:
            best, best_alpha = score, alpha
    w = _ridge_dual(xc, yc, best_alpha)
    pred = (x_test - mx) @ xc.T @ w + my
    return r2_score(y_test, pred), best_alpha


def probe_tokens(
    tokens: np.ndarray | torch.Tensor,
    visible: np.ndarray,
    test_mask: np.ndarray,
    *,
    pairs: int = 4000,
    seed: int = 0,
) -> dict:
    """The probe on precomputed tokens ``(N, P, D)`` and visible states ``(N, k)``.

    ``test_mask`` ``(N,)`` bool marks the held-out rows (other episodes than the training rows); the rank
    correlation uses pairs drawn among the held-out rows.
    """
    tokens = torch.as_tensor(tokens).double().numpy()
    visible = np.asarray(visible, np.float64)
    test_mask = np.asarray(test_mask, bool)
    if tokens.ndim != 3 or len(tokens) != len(visible) or len(test_mask) != len(visible):
        raise ValueError(
            f"tokens (N, P, D) {tokens.shape}, visible (N, k) {visible.shape} and test_mask (N,) "
            f"{test_mask.shape} must agree"
        )
    if test_mask.sum() < 2 or (~test_mask).sum() < 5:
        raise ValueError(
            f"need >= 2 held-out and >= 5 training rows, got {test_mask.sum()} / {(~test_mask).sum()}"
        )
    std = visible.std(0)
    vis = (visible - visible.mean(0)) / np.where(std > 0, std, 1.0)
    rng = np.random.default_rng(seed)
    test = np.flatnonzero(test_mask)
    i, j = rng.choice(test, pairs), rng.choice(test, pairs)
    keep = i != j
    i, j = i[keep], j[keep]
    latent_d = ((tokens[i] - tokens[j]) ** 2).mean((1, 2))
    state_d = np.linalg.norm(vis[i] - vis[j], axis=1)
    flat = tokens.reshape(len(tokens), -1)
    r2, alpha = ridge_probe(flat[~test_mask], vis[~test_mask], flat[test_mask], vis[test_mask], seed)
    return {
        "spearman": spearman(latent_d, state_d),
        "r2": float(r2.mean()),
        "r2_per_dim": [float(v) for v in r2],
        "ridge_alpha": alpha,
        "pairs": len(i),
        "train_rows": int((~test_mask).sum()),
        "test_rows": int(test_mask.sum()),
    }


def sample_frames(
    store: EpisodeStore, frames: int, *, test_fraction: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames`` random frames of ``store``: pixels ``(N, H, W, 3)`` uint8, states ``(N, state_dim)``,
    and a held-out mask ``(N,)`` (the last ``test_fraction`` of a random episode order)."""
    for key in ("pixels", "state"):
        if key not in store.keys:
            raise ValueError(f"{store.root}: key {key!r} is not in the dataset {store.keys}")
    if len(store) < 2:
        raise ValueError(f"{store.root}: the probe needs >= 2 episodes, got {len(store)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(store))
    n_test = min(len(store) - 1, max(1, round(test_fraction * len(store))))
    test_eps = set(order[len(store) - n_test :].tolist())
    lengths = store.episode_lengths
    eps = rng.integers(0, len(store), frames)
    idx = np.array([rng.integers(0, lengths[e] + 1) for e in eps])
    pixels = np.stack([store.read(int(e), "pixels", int(t)) for e, t in zip(eps, idx, strict=True)])
    states = np.stack([store.read(int(e), "state", int(t)) for e, t in zip(eps, idx, strict=True)])
    return pixels, states, np.array([int(e) in test_eps for e in eps])


@torch.inference_mode()
def encode_pixels(encoder: Encoder, pixels: np.ndarray, img_size: int | None, batch: int = 256) -> np.ndarray:
    """Tokens ``(N, P, D)`` float32 of ``(N, H, W, 3)`` uint8 frames (encoder in eval mode)."""
    was = encoder.training
    encoder.eval()
    x = prepare_frames(pixels, img_size)
    out = [encoder(x[i : i + batch][None])[0].float().cpu() for i in range(0, len(x), batch)]
    encoder.train(was)
    return torch.cat(out).numpy()


def probe_encoder(
    encoder: Encoder,
    store: EpisodeStore,
    *,
    frames: int = 2000,
    pairs: int = 4000,
    img_size: int | None = None,
    seed: int = 0,
) -> dict:
    """:func:`probe_tokens` on ``frames`` random frames of ``store`` encoded by ``encoder``."""
    pixels, states, test_mask = sample_frames(store, frames, seed=seed)
    tokens = encode_pixels(encoder, pixels, img_size)
    out = probe_tokens(tokens, probe_state(store.env_id, states), test_mask, pairs=pairs, seed=seed)
    return {"env": store.env_id, "encoder": encoder.name, "frames": frames, **out}
