"""``worldmodels evaluate-rollouts``: open-loop video prediction quality on held-out episodes.

    worldmodels evaluate-rollouts --model runs/video/wall/fit/model --data runs/data/wall --horizon 16 \\
        [--latent runs/demo/fit/model] [--episodes 32] [--videos 4] --out runs/video/wall/eval

Protocol. The held-out episodes are the validation split of training (``split_episodes(n, 0.1, 0)``, the
DataModule's default). In each, a window starts at a seeded random step ``t0``: the model sees the
``num_hist`` frames ``t0, t0 + fs, ...`` (``fs`` the model's frameskip) with their proprio and the actions
between them, then imagines ``horizon`` frames autoregressively from the recorded actions. Per horizon step
``h`` (env time ``h * fs`` after the last context frame), against the real frame:

* PSNR (dB, images in [0, 1]) and SSIM (torchmetrics, Gaussian window 11, images in [0, 1]);
* feature distance: mean squared difference of the project encoder's tokens (the latent model's encoder
  when ``--latent`` is given, else ``--encoder``) of the imagined and the real frame;
* for the video model, the copy-last-frame baseline (the last context frame), and, with ``--latent``, the
  latent world model's decoded rollout from the same env time at its own frameskip (filled in at the steps
  whose env time it reaches: a latent model with frameskip 5 beside a video model with frameskip 2 lands
  on steps 5, 10, 15).

Action sensitivity: the same context with the actions of another held-out episode (episode ``i`` gets the
actions of episode ``i + 1``). The simulator is reset to the recorded state of the last context frame and
replays those actions, so each window has two real futures (recorded actions ``a``, swapped actions
``b``) and two imagined ones. The check passes when the imagined futures follow their own actions: the
imagined ``b`` future is closer (PSNR) to the real ``b`` future than to the real ``a`` one, on average over
windows and steps and at the last step in most windows; the table also reports how much the two real and
the two imagined futures differ.

Writes ``results.json``, ``table.md``, ``plot.png`` and ``videos/episode_XXX.mp4`` (real | imagined
[| latent]) under ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from worldmodels.io import atomic_path, atomic_write_text


def psnr01(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR (dB) of images in [0, 1]: ``(B, 3, H, W)`` x 2 -> ``(B,)``."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def ssim01(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM of images in [0, 1] (torchmetrics, Gaussian window 11, sigma 1.5): ``(B, 3, H, W)`` -> ``(B,)``."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(pred.float(), target.float(), data_range=1.0, reduction="none")


def to01(pixels: np.ndarray | Tensor) -> Tensor:
    """uint8 ``(..., H, W, 3)`` -> float ``(..., 3, H, W)`` in [0, 1]."""
    return rearrange(torch.as_tensor(np.asarray(pixels)), "... h w c -> ... c h w").float() / 255.0


class Windows:
    """The evaluation windows of one model: context, actions and real futures read from the store.

    Attributes (batch ``B`` = windows): ``pixels`` uint8 ``(B, num_hist, 3, S, S)``, ``proprio (B, num_hist,
    P)``, ``past`` env actions ``(B, num_hist - 1, fs * A)``, ``future`` env actions ``(B, H, fs * A)``,
    ``real`` ``(B, H, 3, S, S)`` in [0, 1], ``t_last`` (env step of the last context frame) and ``state``
    (the simulator state there) per window.
    """

    def __init__(self, store, episodes: list[int], starts: list[int], num_hist: int, fs: int, horizon: int):
        pixels, proprio, past, future, real, self.t_last, self.state = [], [], [], [], [], [], []
        for ep, t0 in zip(episodes, starts, strict=True):
            ctx = t0 + fs * np.arange(num_hist)
            t_last = int(ctx[-1])
            fut = t_last + fs * np.arange(1, horizon + 1)
            pixels.append(np.asarray(store.read(ep, "pixels", ctx)))
            proprio.append(np.asarray(store.read(ep, "proprio", ctx), dtype=np.float32))
            acts = np.asarray(store.read(ep, "action", slice(t0, t_last + fs * horizon)), dtype=np.float32)
            acts = acts.reshape(num_hist - 1 + horizon, fs * acts.shape[-1])
            past.append(acts[: num_hist - 1])
            future.append(acts[num_hist - 1 :])
            real.append(np.asarray(store.read(ep, "pixels", fut)))
            self.t_last.append(t_last)
            self.state.append(
                np.asarray(store.read(ep, "state", [t_last]))[0] if "state" in store.keys else None
            )
        self.pixels = rearrange(torch.as_tensor(np.stack(pixels)), "b t h w c -> b t c h w")
        self.proprio = torch.as_tensor(np.stack(proprio))
        self.past, self.future = torch.as_tensor(np.stack(past)), torch.as_tensor(np.stack(future))
        self.real = to01(np.stack(real))


def pick_windows(store, num_hist: int, fs: int, horizon: int, episodes: int, seed: int) -> tuple[list, list]:
    """``episodes`` windows: held-out episodes (the DataModule's validation split) long enough for the window,
    each once (cycled when there are fewer), and a seeded start in each; raises ``ValueError`` when none fits."""
    from worldmodels.data.datamodules import split_episodes

    _, val = split_episodes(len(store), 0.1, 0)
    span = (num_hist - 1 + horizon) * fs + 1
    fits = [int(e) for e in val if store.episode_lengths[e] >= span]
    if not fits:
        raise ValueError(
            f"{store.root}: no held-out episode has the {span} steps of (num_hist={num_hist} - 1 + horizon="
            f"{horizon}) x frameskip={fs} + 1 (longest: {int(store.episode_lengths.max())}); lower --horizon"
        )
    rng = np.random.default_rng(seed)
    chosen = [
        fits[i % len(fits)] for i in range(episodes)
    ]  # fewer episodes than windows: several starts each
    starts = [int(rng.integers(0, int(store.episode_lengths[e]) - span + 1)) for e in chosen]
    return chosen, starts


def video_rollout(model, win: Windows, future_env: Tensor, seed: int, batch: int) -> Tensor:
    """Imagined frames ``(B, H, 3, S, S)`` in [0, 1] of the video model from the windows' contexts under env
    actions ``future_env (B, H, fs * A)``, ``batch`` windows per call, seeded."""
    out = []
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, len(win.pixels), batch):
        sl = slice(i, i + batch)
        past = model.normalize_action(win.past[sl]) if model.num_hist > 1 else None
        with torch.inference_mode():
            state = model.encode({"pixels": win.pixels[sl], "proprio": win.proprio[sl]}, past_actions=past)
            pred = model.rollout(state, model.normalize_action(future_env[sl]), generator=gen)
        out.append(model.decode(pred))
    return torch.cat(out)


def latent_rollout(latent, store, episodes, t_lasts, fs_video: int, horizon: int) -> dict[int, Tensor]:
    """Decoded latent-model frames at the video-model steps ``h`` whose env time ``h * fs_video`` is a multiple
    of the latent model's frameskip and inside the episode: ``{h: (B, 3, S, S) in [0, 1]}``."""
    fs = latent.frameskip
    steps = [h for h in range(1, horizon + 1) if (h * fs_video) % fs == 0]
    if not steps or latent.num_hist != 1:
        return {}
    n_lat = max(h * fs_video // fs for h in steps)
    lengths = [int(store.episode_lengths[e]) - t for e, t in zip(episodes, t_lasts, strict=True)]
    n_lat = min(n_lat, (min(lengths) - 1) // fs)
    steps = [h for h in steps if h * fs_video // fs <= n_lat]
    if not steps:
        return {}
    pixels, proprio, actions = [], [], []
    for ep, t in zip(episodes, t_lasts, strict=True):
        pixels.append(np.asarray(store.read(ep, "pixels", [t])))
        proprio.append(np.asarray(store.read(ep, "proprio", [t]), dtype=np.float32))
        acts = np.asarray(store.read(ep, "action", slice(t, t + fs * n_lat)), dtype=np.float32)
        actions.append(acts.reshape(n_lat, -1))
    obs = {"pixels": rearrange(torch.as_tensor(np.stack(pixels)), "b t h w c -> b t c h w"),
           "proprio": torch.as_tensor(np.stack(proprio))}  # fmt: skip
    with torch.inference_mode():
        pred = latent.rollout(latent.encode(obs), latent.normalize_action(torch.as_tensor(np.stack(actions))))
        images = latent.decode(pred)
    if images is None:
        return {}
    return {h: images[:, h * fs_video // fs - 1].float() for h in steps}


def replay(env_id: str, env_kwargs: dict, states: list, env_actions: Tensor, fs: int) -> Tensor:
    """Real frames ``(B, H, 3, S, S)`` in [0, 1]: the simulator reset to each state, then ``env_actions
    (B, H, fs * A)`` executed; one frame every ``fs`` steps."""
    import gymnasium as gym

    import worldmodels.envs  # noqa: F401  (registers the ids)

    env = gym.make(env_id, **env_kwargs)
    out = []
    for state, acts in zip(states, env_actions, strict=True):
        env.reset(options={"state": state})
        flat = acts.reshape(-1, acts.shape[-1] // fs).numpy()
        frames = []
        for k, a in enumerate(flat):
            obs, *_ = env.step(a)
            if (k + 1) % fs == 0:
                frames.append(obs["pixels"])
        out.append(np.stack(frames))
    env.close()
    return to01(np.stack(out))


def features(encoder, images: Tensor, batch: int = 64) -> Tensor:
    """Encoder tokens ``(B, N, D)`` of images ``(B, 3, S, S)`` in [0, 1]."""
    with torch.inference_mode():
        return torch.cat([encoder(images[i : i + batch, None])[:, 0] for i in range(0, len(images), batch)])


def per_step(pred: Tensor, real: Tensor, encoder) -> dict[str, Tensor]:
    """Metrics ``(B,)`` of one horizon step: ``psnr``, ``ssim``, ``feat`` (``None`` without an encoder)."""
    out = {"psnr": psnr01(pred, real), "ssim": ssim01(pred, real)}
    if encoder is not None:
        out["feat"] = (features(encoder, pred) - features(encoder, real)).pow(2).mean((-1, -2))
    return out


def evaluate_rollouts(
    model_dir: str, data: str, horizon: int = 16, latent_dir: str | None = None, encoder_dir: str | None = None,
    episodes: int = 32, videos: int = 4, out: str | None = None, seed: int = 0, batch: int = 16,
) -> dict[str, Any]:  # fmt: skip
    """Run the protocol of the module docstring; returns what ``results.json`` holds."""
    from worldmodels import load_pretrained
    from worldmodels.data.store import EpisodeStore
    from worldmodels.models.video_diffusion import VideoWorldModel

    if horizon < 1:
        raise ValueError(f"--horizon {horizon} must be >= 1")
    model = load_pretrained(model_dir)
    if not isinstance(model, VideoWorldModel):
        raise ValueError(f"{model_dir}: a {type(model).__name__}, not a VideoWorldModel")
    store = EpisodeStore.open(data)
    if store.env_id and model.env_id and store.env_id != model.env_id:
        raise ValueError(f"{data}: env {store.env_id!r}, but the model was trained on {model.env_id!r}")
    fs, k = model.frameskip, model.num_hist
    eps, starts = pick_windows(store, k, fs, horizon, episodes, seed)
    win = Windows(store, eps, starts, k, fs, horizon)
    latent = load_pretrained(latent_dir) if latent_dir else None
    encoder = (
        latent.encoder if latent is not None else (load_pretrained(encoder_dir) if encoder_dir else None)
    )

    imagined = video_rollout(model, win, win.future, seed, batch)
    copy_last = to01(rearrange(win.pixels[:, -1], "b c h w -> b h w c"))
    lat = latent_rollout(latent, store, eps, win.t_last, fs, horizon) if latent is not None else {}
    rows = []
    for h in range(horizon):
        row: dict[str, Any] = {"step": h + 1, "env_steps": (h + 1) * fs}
        for name, pred in (("video", imagined[:, h]), ("copy_last", copy_last), ("latent", lat.get(h + 1))):
            if pred is None:
                continue
            for metric, values in per_step(pred, win.real[:, h], encoder).items():
                row[f"{name}_{metric}"] = float(values.mean())
        rows.append(row)

    # action sensitivity: the actions of the next held-out window, replayed in the simulator from the state
    sens: dict[str, Any] = {}
    if len(eps) > 1 and all(s is not None for s in win.state):
        swapped = torch.roll(win.future, 1, dims=0)
        real_b = replay(store.env_id, store.manifest.get("env_kwargs", {}), win.state, swapped, fs)
        imagined_b = video_rollout(model, win, swapped, seed + 1, batch)
        flat = lambda x: rearrange(x, "b t c h w -> (b t) c h w")  # noqa: E731
        own = psnr01(flat(imagined_b), flat(real_b)).view(len(eps), horizon)
        other = psnr01(flat(imagined_b), flat(win.real)).view(len(eps), horizon)
        real_gap = (real_b - win.real).abs().mean((2, 3, 4))
        imagined_gap = (imagined_b - imagined).abs().mean((2, 3, 4))
        sens = {
            "psnr_own_actions": float(own.mean()), "psnr_other_actions": float(other.mean()),
            "advantage_db": float((own - other).mean()),
            "last_step_fraction_closer_to_own": float((own[:, -1] > other[:, -1]).float().mean()),
            "real_futures_mean_abs_diff": float(real_gap.mean()),
            "imagined_futures_mean_abs_diff": float(imagined_gap.mean()),
            "gap_correlation": float(np.corrcoef(real_gap.flatten().numpy(), imagined_gap.flatten().numpy())[0, 1]),
        }  # fmt: skip
        sens["passed"] = sens["advantage_db"] > 0 and sens["last_step_fraction_closer_to_own"] > 0.5
    result = {
        "model": model_dir, "data": data, "latent": latent_dir, "horizon": horizon, "frameskip": fs,
        "num_hist": k, "episodes": eps, "starts": starts, "seed": seed, "sampler": model.sampler_config,
        "feature_encoder": None if encoder is None else getattr(encoder, "name", type(encoder).__name__),
        "latent_frameskip": None if latent is None else latent.frameskip, "per_step": rows,
        "video_above_copy_last_every_step": all(r["video_psnr"] > r["copy_last_psnr"] for r in rows),
        "action_sensitivity": sens,
    }  # fmt: skip
    table = markdown_table(result)
    print(table)
    if out:
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / "results.json", json.dumps(result, indent=1))
        atomic_write_text(d / "table.md", table + "\n")
        write_plot(d / "plot.png", result)
        if videos:
            write_videos(
                d / "videos", win.real[:videos], imagined[:videos], {h: v[:videos] for h, v in lat.items()}
            )
    return result


def markdown_table(result: dict[str, Any]) -> str:
    """Per-step PSNR / SSIM / feature distance of every model, and the action-sensitivity line."""
    rows = result["per_step"]
    has_lat = any("latent_psnr" in r for r in rows)
    has_feat = "video_feat" in rows[0]
    names = ["video", "copy_last"] + (["latent"] if has_lat else [])
    metrics = ["psnr", "ssim"] + (["feat"] if has_feat else [])
    head = ["step", "env steps"] + [f"{n} {m}" for m in metrics for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        cells = [str(r["step"]), str(r["env_steps"])]
        for m in metrics:
            for n in names:
                v = r.get(f"{n}_{m}")
                cells.append("" if v is None else (f"{v:.2f}" if m == "psnr" else f"{v:.4f}"))
        lines.append("| " + " | ".join(cells) + " |")
    n_ep = len(result["episodes"])
    lines.append("")
    lines.append(f"{n_ep} held-out windows; video PSNR above copy-last-frame at every step: "
                 f"{result['video_above_copy_last_every_step']}")  # fmt: skip
    s = result["action_sensitivity"]
    if s:
        lines.append(
            f"action sensitivity: imagined futures under swapped actions are {s['advantage_db']:+.2f} dB closer to "
            f"the real future under those actions than to the original one ({s['psnr_own_actions']:.2f} vs "
            f"{s['psnr_other_actions']:.2f} dB); closer at the last step in "
            f"{100 * s['last_step_fraction_closer_to_own']:.0f}% of windows; mean |difference| between the two "
            f"futures: real {s['real_futures_mean_abs_diff']:.4f}, imagined {s['imagined_futures_mean_abs_diff']:.4f} "
            f"(correlation {s['gap_correlation']:.2f}); passed: {s['passed']}"
        )
    return "\n".join(lines)


def write_plot(path: Path, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["per_step"]
    metrics = [m for m in ("psnr", "ssim", "feat") if f"video_{m}" in rows[0]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
    for ax, m in zip(np.atleast_1d(axes), metrics, strict=True):
        for name, style in (("video", "-o"), ("copy_last", "--"), ("latent", "s")):
            pts = [(r["step"], r[f"{name}_{m}"]) for r in rows if f"{name}_{m}" in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=name, ms=4)
        ax.set(xlabel=f"imagined step (x{result['frameskip']} env steps)", title=m)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_videos(d: Path, real: Tensor, imagined: Tensor, latent: dict[int, Tensor]) -> None:
    """One mp4 per window: real | imagined [| latent, black where it has no frame], 4x upscaled."""
    import imageio.v2 as imageio

    d.mkdir(parents=True, exist_ok=True)
    for i in range(len(real)):
        frames = []
        for h in range(real.shape[1]):
            panels = [real[i, h], imagined[i, h]]
            if latent:
                panels.append(latent[h + 1][i] if h + 1 in latent else torch.zeros_like(real[i, h]))
            img = rearrange(torch.cat(panels, -1), "c h w -> h w c").clamp(0, 1) * 255
            img = img.round().to(torch.uint8).numpy()
            frames.append(np.repeat(np.repeat(img, 4, 0), 4, 1))
        with atomic_path(d / f"episode_{i:03d}.mp4", suffix=".mp4") as tmp:
            imageio.mimwrite(tmp, frames, fps=4, macro_block_size=16)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="worldmodels evaluate-rollouts", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="saved VideoWorldModel directory")
    p.add_argument("--data", required=True, help="dataset directory (its held-out split is evaluated)")
    p.add_argument("--horizon", type=int, default=16, help="imagined steps (default: 16)")
    p.add_argument("--latent", default=None, help="a saved LatentWorldModel to compare (its encoder also gives "
                   "the feature distance)")  # fmt: skip
    p.add_argument("--encoder", default=None, help="a saved project encoder for the feature distance")
    p.add_argument("--episodes", type=int, default=32, help="held-out windows, one per episode while there are "
                   "enough (default: 32)")  # fmt: skip
    p.add_argument("--videos", type=int, default=4, help="side-by-side videos (default: 4)")
    p.add_argument("--batch", type=int, default=16, help="windows per rollout call (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="window starts and sampling noise (default: 0)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="directory for results.json, table.md, plot.png, videos/")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # user errors (ValueError, FileNotFoundError) become one line in worldmodels.errors.run_command
    evaluate_rollouts(args.model, args.data, args.horizon, args.latent, args.encoder, args.episodes,
                      args.videos, args.out, args.seed, args.batch)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
