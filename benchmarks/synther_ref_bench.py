"""SynthER training step and sampler network: ours vs the reference code, interleaved in one process.

    git --git-dir=<bare clone of github.com/conglu1997/SynthER> archive HEAD synther | tar -x -C REF
    python benchmarks/synther_ref_bench.py --reference-src REF     # 1 torch thread (the machine is shared)
    python benchmarks/synther_ref_bench.py                         # ours only (no reference source)

The reference code (``synther/diffusion/denoiser_network.py``: ``ResidualMLPDenoiser``;
``synther/diffusion/elucidated_diffusion.py``: ``ElucidatedDiffusion``, its EDM loss and stochastic Heun
sampler; ``synther/diffusion/norm.py``: its z-score normaliser) is imported from ``--reference-src`` and run
only for timing; nothing of it is copied into this project. Its imports that are only decoration or belong to
code paths not timed here (``gin``, ``wandb``, ``accelerate``, ``ema_pytorch``, ``torchdiffeq``,
``redq``, ``synther.online.utils``) are replaced by stub modules when they are not installed
(:func:`load_reference`); ``gin.configurable`` becomes the identity, so the classes are the reference's own.

Both networks are built at the same width, blocks, ``dim_t`` (128) and 16 random Fourier features, for a
transition of ``--dim`` columns (42: HalfCheetah / Walker2d with the terminal); the reference as its
``config/resmlp_denoiser.gin`` builds it (``layer_norm False``) and, as a second row, with
``layer_norm True``, the variant whose layers are exactly ours (the parameter counts show it). Timed, in
turns A B A B ... (``--reps`` rounds after ``--warmup`` untimed rounds, the order of each pair alternating):

* **training step** at ``--batch`` (256, SynthER's batch below 800k transitions): EDM loss, backward,
  gradient clipping at 1, AdamW (lr 3e-4; the reference's betas 0.9/0.99 and parameter groups),
  ``zero_grad``, as each code's training loop does it (the reference normalises inside its ``forward``;
  ours gets rows normalised once by the data module). Not timed: the EMA update (both; the reference's
  every 10 steps through ``ema_pytorch``, ours every step) and logging.
* **network evaluation**: one preconditioned denoiser call ``D(x; sigma)`` without gradients at
  ``--eval-batch`` (what the samplers repeat);
* **sampler**: the reference's ``ElucidatedDiffusion.sample`` (stochastic Heun, churn 80) and ours
  (:meth:`worldmodels.models.edm.EDM.sample` with the same settings) at ``--sampler-steps`` steps and
  ``--sampler-batch`` rows (``--sampler-reps 0`` skips it).

Reports medians, their ratio (ours / reference; below 1 is faster) and every timing, as JSON (atomically)
to ``--out`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import statistics
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from synth.model import REFERENCE_SAMPLER, SynthER
from worldmodels.benchmarking import interleave
from worldmodels.io import atomic_write_text
from worldmodels.models.edm import SamplerConfig

#: modules the reference imports that this benchmark does not need; stubbed when not installed
STUBBED = ("gin", "wandb", "accelerate", "ema_pytorch", "torchdiffeq", "redq", "redq.algos", "redq.algos.core",
           "synther.online.utils")  # fmt: skip


def _stub(name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__["__stub__"] = True

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{name} is a stub in synther_ref_bench (not installed); this path is not timed")

    if name == "gin":
        mod.configurable = lambda fn=None, *a, **k: fn if fn is not None else (lambda f: f)  # identity

    def getattr_(attr: str) -> Any:  # Accelerator, EMA, odeint, ReplayBuffer, wandb.log, ...
        if attr.startswith("__"):
            raise AttributeError(attr)
        return unavailable

    mod.__getattr__ = getattr_
    return mod


def load_reference(src: str | Path) -> dict[str, types.ModuleType]:
    """Import the reference's denoiser, diffusion and normaliser modules from the checkout ``src`` (a folder
    holding ``synther/diffusion/``), stubbing :data:`STUBBED` modules that are not installed. Returns
    ``{"denoiser": ..., "diffusion": ..., "norm": ..., "stubbed": [names]}``."""
    src = Path(src).resolve()
    if not (src / "synther" / "diffusion" / "elucidated_diffusion.py").exists():
        raise ValueError(f"--reference-src {src}: no synther/diffusion/elucidated_diffusion.py there")
    stubbed = []
    for name in STUBBED:
        if name in sys.modules:
            continue
        if not name.startswith("synther."):
            try:
                importlib.import_module(name)
                continue
            except Exception:  # missing or broken: stub it
                pass
        sys.modules[name] = _stub(name)
        stubbed.append(name)
    sys.path.insert(0, str(src))
    try:
        mods = {
            "denoiser": importlib.import_module("synther.diffusion.denoiser_network"),
            "diffusion": importlib.import_module("synther.diffusion.elucidated_diffusion"),
            "norm": importlib.import_module("synther.diffusion.norm"),
        }
    finally:
        sys.path.remove(str(src))
    for m in mods.values():
        if not str(Path(m.__file__).resolve()).startswith(str(src)):
            raise RuntimeError(f"{m.__name__} was imported from {m.__file__}, not from {src}")
    return {**mods, "stubbed": stubbed}


def reference_model(ref: dict, dim: int, width: int, blocks: int, layer_norm: bool, seed: int = 0):
    """The reference's ``ElucidatedDiffusion`` over ``dim`` columns with its gin settings
    (``config/resmlp_denoiser.gin``; ``construct_diffusion_model``: standard normaliser, terminal column
    not normalised), and its ``Trainer``'s AdamW (parameter groups, betas 0.9/0.99, lr 3e-4, weight decay 0)."""
    torch.manual_seed(seed)
    net = ref["denoiser"].ResidualMLPDenoiser(
        d_in=dim, dim_t=128, mlp_width=width, num_layers=blocks, learned_sinusoidal_cond=False,
        random_fourier_features=True, learned_sinusoidal_dim=16, activation="relu", layer_norm=layer_norm,
    )  # fmt: skip
    fit_rows = torch.randn(1000, dim, generator=torch.Generator().manual_seed(seed))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its means and stds
        normalizer = ref["norm"].normalizer_factory("standard", fit_rows, skip_dims=[dim - 1])
    diffusion = ref["diffusion"].ElucidatedDiffusion(
        net=net, normalizer=normalizer, event_shape=[dim], num_sample_steps=128, sigma_data=1.0, S_churn=80,
        S_tmin=0.05, S_tmax=50, S_noise=1.003,
    )  # fmt: skip
    no_decay = ["bias", "LayerNorm.weight", "norm.weight", ".g"]
    groups = [
        {"params": [p for n, p in diffusion.named_parameters() if not any(nd in n for nd in no_decay)],
         "weight_decay": 0.0},
        {"params": [p for n, p in diffusion.named_parameters() if any(nd in n for nd in no_decay)],
         "weight_decay": 0.0},
    ]  # fmt: skip
    opt = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.99))
    return diffusion, opt


def our_model(dim: int, width: int, blocks: int, seed: int = 0):
    """Our :class:`SynthER` (``obs_dim`` chosen so that ``2 O + A + 2 = dim`` with ``A = 6``) and the
    training module's AdamW (lr 3e-4, weight decay 0)."""
    torch.manual_seed(seed)
    action_dim = 6
    obs_dim = (dim - action_dim - 2) // 2
    if 2 * obs_dim + action_dim + 2 != dim:
        raise ValueError(f"--dim {dim}: need 2 O + 6 + 2 columns (an even number >= 10)")
    model = SynthER(obs_dim, action_dim, denoiser={"width": width, "blocks": blocks})
    opt = torch.optim.AdamW(model.denoiser.parameters(), lr=3e-4, weight_decay=0.0)
    return model, opt


def count(module: torch.nn.Module) -> dict[str, int]:
    ps = list(module.parameters())
    return {
        "parameters": sum(p.numel() for p in ps),
        "trainable": sum(p.numel() for p in ps if p.requires_grad),
    }


def train_step_fns(dim: int, width: int, blocks: int, batch: int, ref: dict | None, layer_norms: list[bool]):
    """``{name: (step_fn, parameter counts)}``: ours and, with ``ref``, the reference per ``layer_norm``."""
    g = torch.Generator().manual_seed(1)
    data = torch.randn(batch, dim, generator=g)
    fns: dict[str, tuple[Callable[[], float], dict[str, int]]] = {}
    model, opt = our_model(dim, width, blocks)
    net = model.denoiser
    gen = torch.Generator().manual_seed(2)

    def ours() -> float:
        loss = model.loss(data, gen, net=net)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return loss.item()

    fns["ours"] = (ours, count(net))
    for ln in layer_norms if ref is not None else []:
        diffusion, ropt = reference_model(ref, dim, width, blocks, ln)

        def reference(diffusion=diffusion, ropt=ropt) -> float:  # the body of Trainer.train, EMA/wandb aside
            loss = diffusion(data)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
            ropt.step()
            ropt.zero_grad()
            return loss.item()

        fns[f"reference (layer_norm {ln})"] = (reference, count(diffusion.net))
    return fns


def eval_fns(dim: int, width: int, blocks: int, batch: int, ref: dict | None, layer_norms: list[bool]):
    """One preconditioned denoiser evaluation ``D(x; sigma)`` without gradients, per network."""
    x = torch.randn(batch, dim, generator=torch.Generator().manual_seed(3)) * 2.0
    sigma = torch.full((batch,), 2.0)
    model, _ = our_model(dim, width, blocks)
    fns: dict[str, Callable[[], Any]] = {}

    @torch.no_grad()
    def ours():
        return model.edm.precondition(model.denoiser, x, sigma)

    fns["ours"] = ours
    for ln in layer_norms if ref is not None else []:
        diffusion, _ = reference_model(ref, dim, width, blocks, ln)

        @torch.no_grad()
        def reference(diffusion=diffusion):
            return diffusion.preconditioned_network_forward(x, sigma)

        fns[f"reference (layer_norm {ln})"] = reference
    return fns


def sampler_fns(
    dim: int, width: int, blocks: int, batch: int, steps: int, ref: dict | None, layer_norm: bool
):
    """The whole sampler (stochastic Heun, churn 80, ``steps`` steps) per code, same network size."""
    model, _ = our_model(dim, width, blocks)
    model.eval()
    cfg = SamplerConfig(**{**REFERENCE_SAMPLER.__dict__, "steps": steps})
    g = torch.Generator().manual_seed(4)
    fns: dict[str, Callable[[], Any]] = {
        "ours": lambda: model.edm.sample(model.denoiser, (batch, dim), cfg, g),
    }
    if ref is not None:
        diffusion, _ = reference_model(ref, dim, width, blocks, layer_norm)
        diffusion.eval()
        fns[f"reference (layer_norm {layer_norm})"] = lambda: diffusion.sample(
            batch_size=batch, num_sample_steps=steps, clamp=False, disable_tqdm=True
        )
    return fns, cfg.nfe


def summarise(times: dict[str, list[float]]) -> dict[str, Any]:
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {"median_s": med, "times_s": times}
    refs = [k for k in med if k.startswith("reference")]
    out["ours_over_reference"] = {k: med["ours"] / med[k] for k in refs}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    ref = load_reference(args.reference_src) if args.reference_src else None
    lns = [False, True]
    result: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(), "threads": args.threads, "torch": torch.__version__,
        "dim": args.dim, "width": args.width, "blocks": args.blocks, "batch": args.batch,
        "reference_src": str(args.reference_src) if args.reference_src else None,
        "stubbed": ref["stubbed"] if ref else [], "loadavg_start": list(os.getloadavg()),
    }  # fmt: skip
    fns = train_step_fns(args.dim, args.width, args.blocks, args.batch, ref, lns)
    result["parameters"] = {k: v[1] for k, v in fns.items()}
    result["train_step"] = summarise(interleave({k: v[0] for k, v in fns.items()}, args.reps, args.warmup))
    del fns
    evals = eval_fns(args.dim, args.width, args.blocks, args.eval_batch, ref, lns)
    result["network_eval"] = {"batch": args.eval_batch,
                              **summarise(interleave(evals, args.eval_reps, args.warmup))}  # fmt: skip
    del evals
    if args.sampler_reps > 0:
        sfns, nfe = sampler_fns(args.dim, args.width, args.blocks, args.sampler_batch, args.sampler_steps, ref,
                                layer_norm=True)  # fmt: skip
        result["sampler"] = {"batch": args.sampler_batch, "steps": args.sampler_steps, "nfe": nfe, "s_churn": 80,
                             **summarise(interleave(sfns, args.sampler_reps, 1))}  # fmt: skip
    result["loadavg_end"] = list(os.getloadavg())
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"width {result['width']} x {result['blocks']} blocks, dim {result['dim']}, threads "
             f"{result['threads']}, load {result['loadavg_start']} -> {result['loadavg_end']}", "",
             "| code | parameters | training step, batch "
             f"{result['batch']} (s, median) | ours / this | network eval, batch "
             f"{result['network_eval']['batch']} (ms) | ours / this |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    tr, ev = result["train_step"], result["network_eval"]
    for name, med in tr["median_s"].items():
        r1 = tr["ours_over_reference"].get(name, 1.0)
        r2 = ev["ours_over_reference"].get(name, 1.0)
        lines.append(f"| {name} | {result['parameters'][name]['parameters']:,} | {med:.3f} | {r1:.2f} | "
                     f"{1000 * ev['median_s'][name]:.1f} | {r2:.2f} |")  # fmt: skip
    if "sampler" in result:
        s = result["sampler"]
        lines += ["", f"sampler: stochastic Heun {s['steps']} steps, churn 80 ({s['nfe']} NFE), batch {s['batch']}",
                  "", "| code | seconds (median) | ours / this |", "|---|---:|---:|"]  # fmt: skip
        for name, med in s["median_s"].items():
            lines.append(f"| {name} | {med:.3f} | {s['ours_over_reference'].get(name, 1.0):.2f} |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference-src", default=None, help="checkout of conglu1997/SynthER (holds synther/)")
    p.add_argument("--dim", type=int, default=42, help="transition columns (42: HalfCheetah, Walker2d)")
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--batch", type=int, default=256, help="training batch")
    p.add_argument("--reps", type=int, default=10, help="timed training rounds")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    p.add_argument("--eval-batch", type=int, default=1024)
    p.add_argument("--eval-reps", type=int, default=10)
    p.add_argument("--sampler-steps", type=int, default=16)
    p.add_argument("--sampler-batch", type=int, default=64)
    p.add_argument("--sampler-reps", type=int, default=3, help="0: no sampler rows")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/synther_ref_bench.json")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    result = run(args)
    atomic_write_text(args.out, json.dumps(result, indent=1))
    print(table(result))
    return result


if __name__ == "__main__":
    main()
