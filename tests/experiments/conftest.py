"""The experiments are scripts, not a package: ``experiment(folder, name)`` loads
``experiments/<folder>/<name>.py`` as a module (registered in ``sys.modules`` under its name, since process
pools pickle its functions by module name)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


@pytest.fixture(scope="module")
def experiment():
    threads = torch.get_num_threads()  # the scripts' main() runs single-threaded; restored after the module
    loaded: list[str] = []

    def load(folder: str, name: str):
        spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    yield load
    torch.set_num_threads(threads)
    for name in loaded:
        sys.modules.pop(name, None)
