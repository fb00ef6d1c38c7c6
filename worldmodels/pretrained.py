"""One save/load layer for every trained object: a directory with ``config.json`` + ``model.safetensors``.

``config.json`` holds a ``type`` field and the constructor arguments (JSON); ``model.safetensors`` holds
the ``state_dict`` (tensors only, read without pickle). :func:`load_pretrained` reads the ``type``, finds the
class in the registry and rebuilds it, so command-line tools never name a model class::

    model = worldmodels.load_pretrained("runs/demo/fit/model")   # LatentWorldModel, ConvAEEncoder, ...

A class joins by subclassing :class:`Pretrained` (an ``nn.Module`` mix-in) and registering its ``type``:

* built in: an entry in :data:`BUILTIN_TYPES` (``type -> "module:Class"``, imported lazily);
* at run time: ``@register("MyModel")`` on the class;
* from another package: an entry point in the group ``worldmodels.models`` (``MyModel = "pkg.mod:MyModel"``),
  so a directory saved by a plug-in loads in any process where the plug-in is installed.

Writing is atomic file by file (:mod:`worldmodels.io`), weights first and ``config.json`` last: a directory
with a ``config.json`` has complete weights, and an interrupted save of a new directory leaves none. Loading
validates everything and fails with one line naming the file and the field: a missing or unreadable file, an
unknown ``type``, a missing, unknown or mistyped constructor argument, a tensor missing, unexpected or of the
wrong shape.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import json
import os
import types
import typing
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from worldmodels.io import atomic_write_bytes, atomic_write_text

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ENTRY_POINT_GROUP = "worldmodels.models"

#: ``type`` -> ``"module:Class"`` for the classes this package ships (imported on first use)
BUILTIN_TYPES: dict[str, str] = {
    "LatentWorldModel": "worldmodels.models.latent_world_model:LatentWorldModel",
    "conv_ae": "worldmodels.encoders.conv_ae:ConvAEEncoder",
    "EnsembleDynamics": "worldmodels.models.ensemble_dynamics:EnsembleDynamics",
    "state_ae": "worldmodels.encoders.state_ae:StateAEEncoder",
    "MLPPolicy": "worldmodels.data.policies:MLPPolicy",
    "TanhGaussianActor": "worldmodels.rl.networks:TanhGaussianActor",
    "VectorizedCritic": "worldmodels.rl.networks:VectorizedCritic",
    "VideoWorldModel": "worldmodels.models.video_diffusion:VideoWorldModel",
    "synther": "synth.model:SynthER",
}

_RUNTIME_TYPES: dict[str, type] = {}


def register(type_name: str):
    """Class decorator: register a :class:`Pretrained` subclass under ``type_name`` for this process."""

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Pretrained)):
            raise TypeError(f"register({type_name!r}): {cls!r} is not a subclass of Pretrained")
        known = _RUNTIME_TYPES.get(type_name)
        if (type_name in BUILTIN_TYPES or known is not None) and known is not cls:
            if f"{cls.__module__}:{cls.__qualname__}" != BUILTIN_TYPES.get(type_name):
                raise ValueError(f"register({type_name!r}): the type is already taken by another class")
        cls.model_type = type_name
        _RUNTIME_TYPES[type_name] = cls
        return cls

    return wrap


def _plugin_types() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_types() -> list[str]:
    """Every ``type`` :func:`load_pretrained` can rebuild in this process, sorted."""
    return sorted(set(BUILTIN_TYPES) | set(_RUNTIME_TYPES) | set(_plugin_types()))


def resolve_type(type_name: str) -> type[Pretrained]:
    """The class registered under ``type_name``; ``KeyError`` when there is none."""
    if type_name in _RUNTIME_TYPES:
        return _RUNTIME_TYPES[type_name]
    if type_name in BUILTIN_TYPES:
        module, _, name = BUILTIN_TYPES[type_name].partition(":")
        return getattr(importlib.import_module(module), name)
    plugin = _plugin_types().get(type_name)
    if plugin is not None:
        return plugin.load()
    raise KeyError(type_name)


# ---------------------------------------------------------------------------- config validation
def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (only the shapes JSON can take are checked; anything else
    passes and is left to the constructor)."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if origin in (types.UnionType, typing.Union):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple) or origin in (list, tuple, collections.abc.Sequence):
        return isinstance(value, list | tuple)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True


def check_kwargs(fn: Any, config: dict[str, Any], source: str | os.PathLike, prefix: str = "") -> dict:
    """Validate ``config`` as keyword arguments of ``fn`` (a class or function) and return them, lists turned
    into tuples where the signature asks for a tuple.

    Raises ``ValueError`` naming ``source`` and the field (``prefix`` + name) for an unknown field, a missing
    required one, or a value whose JSON type does not fit the annotation.
    """
    target = fn.__init__ if isinstance(fn, type) else fn
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: check names only
        hints = {}
    params = {
        n: p
        for n, p in sig.parameters.items()
        if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    name = getattr(fn, "__name__", str(fn))
    unknown = sorted(set(config) - set(params))
    if unknown and not takes_any:
        raise ValueError(
            f"{source}: unknown field {prefix + unknown[0]!r} for {name}; its fields are {sorted(params)}"
        )
    missing = [n for n, p in params.items() if p.default is p.empty and n not in config]
    if missing:
        raise ValueError(f"{source}: field {prefix + missing[0]!r} is missing (required by {name})")
    out = dict(config)
    for key, value in config.items():
        hint = hints.get(key, inspect.Parameter.empty)
        if not _matches(value, hint):
            hint_name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            raise ValueError(
                f"{source}: field {prefix + key!r} is {value!r} ({type(value).__name__}), expected {hint_name}"
            )
        if isinstance(value, list) and (hint is tuple or typing.get_origin(hint) is tuple):
            out[key] = tuple(value)
    return out


# ---------------------------------------------------------------------------- the mix-in
class Pretrained:
    """Mix-in for ``nn.Module`` subclasses saved as ``config.json`` + ``model.safetensors``.

    Subclasses set :attr:`model_type` (or use :func:`register`) and return their constructor arguments
    from :meth:`get_config`; the default :meth:`from_config` calls ``cls(**config)`` after
    :func:`check_kwargs`. Classes whose constructor takes objects (an encoder, tensors) override
    :meth:`from_config` to rebuild them from the JSON config; the weights are then loaded over them.
    """

    model_type: ClassVar[str]

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (default: the ``config`` attribute)."""
        config = getattr(self, "config", None)
        if not isinstance(config, dict):
            raise TypeError(f"{type(self).__name__} must define get_config() or a dict attribute 'config'")
        return dict(config)

    @classmethod
    def from_config(cls, config: dict[str, Any], source: str | os.PathLike = CONFIG_NAME) -> Self:
        """Build an untrained instance from a config written by :meth:`get_config`; errors name ``source``."""
        kwargs = check_kwargs(cls, config, source)
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{source}: {err}") from None

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` under ``directory`` (created) and return it."""
        if not getattr(type(self), "model_type", None):
            raise TypeError(f"{type(self).__name__} has no model_type: register it with @register(...)")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        config = {"type": self.model_type, **self.get_config()}
        text = json.dumps(config, indent=1)  # before any write: a config that is not JSON fails here
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        atomic_write_bytes(d / WEIGHTS_NAME, save(tensors))
        atomic_write_text(d / CONFIG_NAME, text)
        return d

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> Self:
        """Load a saved directory whose ``type`` is this class (or a subclass); see :func:`load_pretrained`."""
        model = load_pretrained(directory, map_location=map_location)
        if not isinstance(model, cls):
            raise ValueError(
                f"{Path(directory) / CONFIG_NAME}: type {model.model_type!r} is a {type(model).__name__}, "
                f"not a {cls.__name__}"
            )
        return model


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``config.json`` of a saved directory (``type`` included), validated as a JSON object with a
    ``type``; one-line errors name the path and the known types."""
    d = Path(directory)
    path = d / CONFIG_NAME
    if not d.is_dir():
        raise FileNotFoundError(
            f"{d}: no such model directory (a saved model is a directory with {CONFIG_NAME})"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{d}: no {CONFIG_NAME} here, so not a saved model (known types: {', '.join(known_types())})"
        )
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if "type" not in config:
        raise ValueError(f"{path}: field 'type' is missing; known types: {', '.join(known_types())}")
    return config


def load_pretrained(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Rebuild whatever :meth:`Pretrained.save_pretrained` wrote in ``directory``, on ``map_location``, in
    eval mode. The class comes from the ``type`` field (see the module docstring for the registry)."""
    d = Path(directory)
    config = read_config(d)
    type_name = config.pop("type")
    cfg_path, weights_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    try:
        cls = resolve_type(type_name)
    except KeyError:
        raise ValueError(
            f"{cfg_path}: type {type_name!r} is not known; known types: {', '.join(known_types())}"
        ) from None
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: missing (the weights of the {type_name} in {d})")
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{weights_path}: not a readable safetensors file ({err})") from None
    model = cls.from_config(config, source=cfg_path)
    load_state_dict_checked(model, tensors, weights_path)
    model.pretrained_path = str(d)  # where it came from, for messages that name the model
    return model.to(map_location).eval()


def load_state_dict_checked(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """``model.load_state_dict(tensors)`` with one-line errors naming ``source`` and the first bad tensor."""
    own = model.state_dict()
    missing = [k for k in own if k not in tensors]
    if missing:
        raise ValueError(
            f"{source}: tensor {missing[0]!r} is missing ({len(missing)} missing); the weights do not match "
            f"the architecture in {CONFIG_NAME}"
        )
    unexpected = [k for k in tensors if k not in own]
    if unexpected:
        raise ValueError(
            f"{source}: unexpected tensor {unexpected[0]!r} ({len(unexpected)} unexpected); the weights do not "
            f"match the architecture in {CONFIG_NAME}"
        )
    for k, v in own.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise ValueError(
                f"{source}: tensor {k!r} has shape {tuple(tensors[k].shape)}, the architecture in "
                f"{CONFIG_NAME} expects {tuple(v.shape)}"
            )
    model.load_state_dict(tensors, strict=True)
