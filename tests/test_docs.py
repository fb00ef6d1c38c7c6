"""The user documents stay usable: README.md is short, every relative link in README.md and docs/ points at
a file of this repository, and the Python examples of README.md and docs/bring_your_own_env.md run."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from pathlib import Path

import gymnasium as gym
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
#: the README's hard cap (the target is about 200 lines)
README_MAX_LINES = 220
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the cap is {README_MAX_LINES}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    targets = [t for t in LINK.findall(doc.read_text()) if not re.match(r"[a-z]+:|#", t)]
    assert targets or doc != README, "README.md links to nothing"
    for target in targets:
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO), f"{doc.name}: link {target!r} leaves the repository"
        assert path.exists(), f"{doc.name}: link {target!r} points at a missing file"


def test_bring_your_own_env_example_keeps_the_env_contract(tmp_path: Path, monkeypatch) -> None:
    """The example env of docs/bring_your_own_env.md passes every check of tests/envs/test_env_contract.py
    and can be collected from."""
    from worldmodels.data.collect import collect
    from worldmodels.data.store import EpisodeStore

    (tmp_path / "dot_env.py").write_text(python_blocks(REPO / "docs/bring_your_own_env.md")[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(REPO / "tests/envs"))
    try:
        importlib.import_module("dot_env")
        contract = importlib.import_module("test_env_contract")
        checks = [
            fn
            for name, fn in inspect.getmembers(contract, inspect.isfunction)
            if name.startswith("test_") and list(inspect.signature(fn).parameters) == ["env_id"]
        ]
        assert len(checks) >= 10
        for check in checks:
            check("mydots/Dot-v0")
        collect(
            "mydots/Dot-v0",
            policy="noisy-expert+sticky-random",
            episodes=2,
            out=tmp_path / "data",
            progress=False,
        )
        store = EpisodeStore.open(tmp_path / "data")
        assert len(store) == 2 and store.read(0, "pixels").shape == (51, 64, 64, 3)
    finally:
        gym.registry.pop("mydots/Dot-v0", None)
        sys.modules.pop("dot_env", None)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch) -> None:
    """README's Python block, at a tiny scale, on a small random Wall model saved where the block loads it."""
    sys.path.insert(0, str(REPO / "tests/planners"))
    try:
        from planners_testing import tiny_wall_latent_model
    finally:
        sys.path.remove(str(REPO / "tests/planners"))
    (block,) = [b for b in python_blocks(README) if "load_pretrained(" in b]
    model_dir = re.search(r'load_pretrained\("([^"]+)"\)', block).group(1)
    tiny_wall_latent_model().save_pretrained(tmp_path / model_dir)
    small, n1 = re.subn(r"samples=\d+, topk=\d+, iterations=\d+", "samples=8, topk=2, iterations=2", block)
    small, n2 = re.subn(
        r'"samples": \d+, "topk": \d+, "iterations": \d+', '"samples": 8, "topk": 2, "iterations": 2', small
    )
    small, n3 = re.subn(r"pairs=\d+", "pairs=1", small)
    assert (n1, n2, n3) == (1, 1, 1), "the sizes in README's Python block moved; update this test's shrinking"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(small, "README.md", "exec"), namespace)
    assert namespace["result"].success_rate in (0.0, 1.0)
