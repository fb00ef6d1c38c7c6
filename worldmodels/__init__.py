"""worldmodels: learn world models from offline data and use them.

Subpackages: ``envs`` (Gymnasium environments), ``data`` (episode store, collectors, adapters,
DataModules), ``encoders`` (visual encoders + feature cache), ``models`` (world models), ``training``
(LightningModules and the Lightning CLI). ``planners`` and ``synth`` build on this package.

``worldmodels.load_pretrained(dir)`` rebuilds any saved model from its directory (see
:mod:`worldmodels.pretrained`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_pretrained(directory: Any, map_location: Any = "cpu") -> Any:
    """Rebuild the model saved in ``directory`` (``config.json`` + ``model.safetensors``); the class comes
    from its ``type`` field. See :func:`worldmodels.pretrained.load_pretrained`."""
    from worldmodels.pretrained import load_pretrained as _load

    return _load(directory, map_location=map_location)


__all__ = ["__version__", "load_pretrained"]
