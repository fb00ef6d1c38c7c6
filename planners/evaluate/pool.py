"""Pairs over worker processes, and resume: with an output directory each finished pair is saved to
``out/pairs/pair_XXX.json`` (atomically) beside a resume key (the config without ``pairs``, plus the
model's weights fingerprint); a re-run with the same key keeps those pairs and evaluates only the rest."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from planners.evaluate.episode import PairJob
from planners.evaluate.report import PairResult, write_json


def fingerprint(model: Any) -> str:
    """CRC32 over the model's parameters and buffers (``nn.Module``), so saved pairs are only reused for the
    same weights; other models: their class name."""
    if not isinstance(model, torch.nn.Module):
        return type(model).__name__
    crc = 0
    for name, t in sorted(model.state_dict().items()):
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes(), crc)
    return f"{type(model).__name__}:{crc:08x}"


def resume_key(config: dict[str, Any], model: Any) -> Any:
    """What a saved pair must match to be reused: the config but ``pairs``, and the weights' fingerprint
    (JSON round-tripped, so it compares equal to what was saved)."""
    key = {k: v for k, v in config.items() if k != "pairs"} | {"weights": fingerprint(model)}
    return json.loads(json.dumps(key, default=str))


def _pair_path(out_dir: Path, index: int) -> Path:
    return out_dir / "pairs" / f"pair_{index:03d}.json"


def load_pairs(out_dir: Path, pairs: int, key: Any) -> dict[int, PairResult]:
    """The pairs among ``range(pairs)`` saved under ``out_dir`` with this resume ``key``."""
    (out_dir / "pairs").mkdir(parents=True, exist_ok=True)
    done = {}
    for i in range(pairs):
        path = _pair_path(out_dir, i)
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("config") == key:
                done[i] = PairResult(**saved["result"])
    return done


def save_pair(out_dir: Path, pair: PairResult, key: Any) -> None:
    write_json(_pair_path(out_dir, pair.index), {"config": key, "result": asdict(pair)})


_WORKER: dict[str, Any] = {}


def _worker_init(job: PairJob) -> None:
    torch.set_num_threads(1)
    _WORKER["job"], _WORKER["env"] = job, job.make_env()


def _worker_pair(i: int) -> PairResult:
    return _WORKER["job"].run_pair(_WORKER["env"], i)


def run_pairs(job: PairJob, todo: Iterable[int], workers: int, record: Callable[[PairResult], None]) -> None:
    """Evaluate the pairs ``todo``, calling ``record`` on each as it finishes: in this process, or in
    ``workers`` spawned processes (one torch thread each; the job is sent to each once), finished pairs
    arriving in any order."""
    todo = list(todo)
    if workers == 1 or len(todo) <= 1:
        env = job.make_env()
        for i in todo:
            record(job.run_pair(env, i))
        env.close()
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(min(workers, len(todo)), initializer=_worker_init, initargs=(job,)) as pool:
        for pair in pool.imap_unordered(_worker_pair, todo):
            record(pair)
